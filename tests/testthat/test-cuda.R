# The CUDA backend: what runs everywhere (diagnostics, generated source,
# NVRTC compilation without a GPU) and, on a GPU machine, GPU against CPU.

test_that("keops_info() reports driver, GPUs, NVRTC and cache", {
  info <- keops_info()
  expect_s3_class(info, "keopsr_info")
  expect_type(info$driver, "logical")
  expect_s3_class(info$gpus, "data.frame")
  expect_named(info$gpus, c("ordinal", "name", "compute_capability", "memory_gib"))
  expect_true(nzchar(info$cache_dir))
  expect_output(print(info), "CUDA driver")
  if (!info$usable) {
    expect_error(keops_options(backend = "gpu"), class = "keopsr_backend_error")
    expect_warning(old <- rkeops_use_gpu(), "no GPU is usable", class = "keopsr_backend_warning")
    expect_equal(keops_options()$backend, "cpu")
    keops_options(old)
    expect_equal(keops_options()$backend, "auto")
  }
  expect_error(keops_options(devices = -1), class = "keopsr_option_error")
  expect_error(keops_options(nvrtc = 3), class = "keopsr_option_error")
})

test_that("the generated kernel is CUDA C built from the operation tables", {
  f <- "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)"
  a <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)")
  src <- keops_cuda_source(f, a)
  expect_match(src, "__global__ void keopsr_reduce", fixed = TRUE)
  expect_match(src, "typedef double T;", fixed = TRUE)
  expect_match(src, "exp(", fixed = TRUE)
  old <- keops_options(precision = "float32")
  on.exit(keops_options(old))
  expect_match(keops_cuda_source(f, a), "expf(", fixed = TRUE)
  expect_error(keops_cuda_source("Sum_Reduction(Foo(x), 1)", "x = Vi(1)"), class = "keopsr_formula_error")
})

test_that("kernels compile with NVRTC without a GPU (operations, reductions, gradients)", {
  nvrtc_or_skip()
  a <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "p = Pm(1)")
  formulas <- c(
    "Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)",
    "KMin_ArgKMin_Reduction(SqDist(x, y), 5, 1)",
    "LogSumExp_Reduction(-SqDist(x, y), 0, b)",
    "SumSoftMaxWeight_Reduction(-SqDist(x, y), 1, y)",
    "Sum_Reduction(Grad(Exp(-SqDist(x, y)) * b, x, p), 1)",
    "Sum_Reduction(Grad(Grad(Exp(-SqDist(x, y)), x, b), x, y), 1)",
    "Min_ArgMin_Reduction(IfElse(x - y, Clamp(x, -1, 1), Mod(y, 2, 0)) + OneHot(Elem(x, 0), 3), 0)"
  )
  for (f in formulas) {
    for (arch in c("sm_80", "compute_90")) {
      res <- keops_cuda_compile(f, a, arch)
      expect_gt(res$bytes, 1000)
      expect_equal(res$format, if (startsWith(arch, "sm_")) "cubin" else "ptx")
    }
  }
  expect_error(keops_cuda_compile(formulas[1], a, "ampere"), class = "keopsr_option_error")
  # keops_grad() operators run the same gradient formulas on a GPU.
  op <- keops_kernel(formulas[1], a)
  expect_match(keops_grad(op, "x")()$formula, "Sum_Reduction", fixed = TRUE)
})

test_that("GPU results equal CPU results (GPU machines only)", {
  skip_if_not(keops_info()$usable, "no usable GPU")
  set.seed(3)
  run <- function(backend, precision, f) {
    old <- keops_options(backend = backend, precision = precision)
    on.exit(keops_options(old))
    f()
  }
  for (n in c(1, 2, 191, 193, 1e5 + 7)) {
    x <- matrix(rnorm(n * 3), n, 3); y <- matrix(rnorm(193 * 3), 193, 3); b <- rnorm(193)
    cases <- list(
      function() sum(exp(-sqdist(Vi(x), Vj(y))) * Vj(b), index = "j"),
      function() argKmin(sqdist(Vi(x), Vj(y)), 3, index = "j"),
      function() logsumexp(-sqdist(Vi(x), Vj(y)), index = "i"),
      function() grad(exp(-sqdist(Vi(x), Vj(y))), rep(1, n), "Sum", Vj(y), "j")
    )
    for (f in cases) {
      expect_close(run("gpu", "float64", f), run("cpu", "float64", f), 1e-12)
      expect_close(run("gpu", "float32", f), run("cpu", "float32", f), 1e-5)
    }
  }
  # Large dimensions.
  for (d in c(500, 2000)) {
    x <- matrix(rnorm(300 * d), 300, d); y <- matrix(rnorm(400 * d), 400, d)
    f <- function() sum(sqdist(Vi(x), Vj(y)), index = "j")
    expect_close(run("gpu", "float64", f), run("cpu", "float64", f), 1e-12)
  }
  # Large outputs (computed in chunks of components): a kernel times weights
  # of dimension 500, and a softmax over them.
  x <- matrix(rnorm(300 * 3), 300, 3); y <- matrix(rnorm(400 * 3), 400, 3)
  w <- matrix(rnorm(400 * 500), 400, 500)
  for (f in list(function() sum(exp(-sqdist(Vi(x), Vj(y))) * Vj(w), index = "j"),
                 function() sumsoftmaxweight(-sqdist(Vi(x), Vj(y)), "j", Vj(w)))) {
    expect_close(run("gpu", "float64", f), run("cpu", "float64", f), 1e-12)
    expect_close(run("gpu", "float32", f), run("cpu", "float32", f), 1e-5)
  }
  # An iterative solve keeps the kernel's data on the GPU between iterations
  # (only the unknown is uploaded each time): the same solution as the CPU.
  x <- matrix(runif(2000 * 2), 2000, 2); b <- sin(5 * x[, 1])
  f <- function() solve(exp(-sqdist(Vi(x), Vj(x)) / 0.05), b, alpha = 0.1, tol = 1e-10)
  expect_close(run("gpu", "float64", f), run("cpu", "float64", f), 1e-8)
})
