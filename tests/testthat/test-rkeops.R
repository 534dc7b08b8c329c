# rkeops 2.x compatibility: set-up calls, options, aliases, predicates,
# generic builders, argument orders and shapes.

set.seed(13)
x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(36), 12, 3); w <- rnorm(12)
x_i <- Vi(x); y_j <- Vj(y); w_j <- Vj(w)

test_that("set-up calls say something useful", {
  expect_true(suppressMessages(check_rkeops()))
  expect_message(check_rkeops(), "self-test")
  expect_message(expect_true(install_rkeops()), "nothing installed")
  expect_output(helloWorld(), "Hello user of KeOps")
})

test_that("rkeops options are keops_options() under rkeops' names", {
  old <- keops_options()
  on.exit(keops_options(old))
  all <- get_rkeops_options()
  expect_s3_class(all, "rkeops_options")
  expect_setequal(names(all), c("backend", "device_id", "precision", "verbosity", "debug", "cache_dir"))
  set_rkeops_options(list(precision = "float32", verbosity = TRUE))
  expect_equal(keops_options()$precision, "float32")
  expect_equal(get_rkeops_options("precision"), "float32")
  expect_equal(get_rkeops_options(c("backend", "verbosity")), list(backend = "CPU", verbosity = 1L))
  rkeops_disable_verbosity()
  expect_equal(keops_options()$verbosity, 0L)
  rkeops_enable_verbosity()
  expect_equal(get_rkeops_options("verbosity"), 1L)
  rkeops_use_float64()
  expect_equal(get_rkeops_options("precision"), "float64")
  rkeops_use_cpu(1)
  expect_equal(keops_options()$threads, 1L)
  expect_equal(get_rkeops_options("backend"), "CPU")
  set_rkeops_options()
  expect_equal(keops_options()$threads, 0L)
  expect_equal(keops_options()$precision, "float64")
  expect_error(set_rkeops_options("backend"), class = "keopsr_option_error")
  expect_error(set_rkeops_options(list(foo = 1)), class = "keopsr_option_error")
  expect_error(get_rkeops_options("foo"), class = "keopsr_option_error")
  expect_error(rkeops_use_gpu(device = "0"), class = "keopsr_option_error")
  expect_error(rkeops_use_cpu(ncore = "0"), class = "keopsr_option_error")
  # rkeops 1.x names, still in rkeops' vignette
  use_cpu(1)
  expect_equal(keops_options()$threads, 1L)
  expect_error(use_gpu(device = "0"), class = "keopsr_option_error")
  if (!keops_info()$usable) expect_warning(use_gpu(), class = "keopsr_backend_warning")
  use_cpu(0)
  if (!keops_info()$usable) {
    expect_warning(set_rkeops_options(list(backend = "GPU")), class = "keopsr_backend_warning")
    expect_equal(get_rkeops_options("backend"), "CPU")
  }
})

test_that("the cache functions handle the kernel cache folder", {
  dir <- tempfile("rkeops-cache")
  old <- keops_options()
  on.exit({
    keops_options(old)
    unlink(dir, recursive = TRUE)
  })
  expect_message(set_rkeops_cache_dir(dir), "cache folder")
  expect_equal(get_rkeops_cache_dir(), dir)
  expect_true(dir.exists(dir))
  expect_equal(get_rkeops_options("cache_dir"), dir)
  expect_type(suppressMessages(stat_rkeops_cache_dir()), "character")
  file.create(file.path(dir, "0123.ptx"))
  expect_equal(clean_rkeops(verbose = FALSE), 1)
  clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE)
  expect_false(dir.exists(dir))
  set_rkeops_cache_dir(verbose = FALSE)
  expect_equal(get_rkeops_cache_dir(), keopsr:::default_cache_dir())
})

test_that("the *_reduction aliases equal their targets", {
  D <- sqdist(x_i, y_j)
  expect_identical(sum_reduction(D, "j"), sum(D, index = "j"))
  expect_identical(min_reduction(D, "i"), min(D, index = "i"))
  expect_identical(max_reduction(D, "j"), max(D, index = "j"))
  expect_identical(argmin_reduction(D, "j"), argmin(D, "j"))
  expect_identical(argmax_reduction(D, "i"), argmax(D, "i"))
  expect_identical(min_argmin_reduction(D, "j"), min_argmin(D, "j"))
  expect_identical(max_argmax_reduction(D, "j"), max_argmax(D, "j"))
  expect_identical(Kmin_reduction(D, 3, "j"), Kmin(D, 3, "j"))
  expect_identical(argKmin_reduction(D, 3, "i"), argKmin(D, 3, "i"))
  expect_identical(Kmin_argKmin_reduction(D, 2, "j"), Kmin_argKmin(D, 2, "j"))
  expect_identical(logsumexp_reduction(-D, "j"), logsumexp(-D, "j"))
  expect_identical(logsumexp_reduction(-D, "j", w_j), logsumexp(-D, "j", w_j))
  expect_identical(sumsoftmaxweight_reduction(-D, "j", y_j), sumsoftmaxweight(-D, "j", y_j))
})

test_that("sumsoftmaxweight() takes rkeops' order (x, index, weight)", {
  F <- -sqdist(x_i, y_j)
  E <- exp(-dense_sqdist(x, y))
  expect_close(sumsoftmaxweight(F, "j", y_j), (E %*% y) / rowSums(E))
  expect_close(sumsoftmaxweight(F, "i", x_i), (t(E) %*% x) / colSums(E))
})

test_that("predicates tell what a LazyTensor is made of", {
  z <- complex(real = 1, imaginary = 2)
  expect_true(is.LazyMatrix(x_i))
  expect_false(is.LazyMatrix(Pm(2)))
  expect_false(is.LazyMatrix(x_i + y_j))
  expect_true(is.LazyVector(Pm(c(1, 2))))
  expect_true(is.LazyVector(LazyTensor(3)))
  expect_true(is.LazyVector(LazyTensor(z)))
  expect_false(is.LazyVector(x_i))
  expect_true(is.LazyParameter(Pm(2)))
  expect_false(is.LazyParameter(Pm(c(1, 2))))
  expect_false(is.LazyParameter(LazyTensor(z)))
  expect_true(is.ComplexLazyParameter(LazyTensor(z)))
  expect_false(is.ComplexLazyParameter(Pm(2)))
  expect_true(is.ComplexLazyTensor(LazyTensor(z)))
  expect_false(is.ComplexLazyTensor(x_i))
  expect_false(is.ComplexLazyTensor(3))
  expect_error(is.LazyVector(3), "must be a LazyTensor", class = "keopsr_input_error")
  expect_error(is.LazyParameter(x), "must be a LazyTensor", class = "keopsr_input_error")
  expect_true(is.int(3))
  expect_false(is.int(3.5))
  expect_false(is.int(c(1, 2)))
  expect_false(is.int(LazyTensor(4)))
})

test_that("unaryop, binaryop and ternaryop build operations by name", {
  expect_close(sum(unaryop.LazyTensor(x_i - y_j, "Square"), index = "j"), sum((x_i - y_j)^2, index = "j"))
  expect_close(sum(unaryop.LazyTensor(x_i - y_j, "Pow", opt_arg = 3), index = "j"), sum((x_i - y_j)^3, index = "j"))
  expect_close(sum(binaryop.LazyTensor(x_i, y_j, "-", is_operator = TRUE), index = "j"), sum(x_i - y_j, index = "j"))
  expect_close(sum(binaryop.LazyTensor(abs(x_i), 3.9, "Powf") * w_j, index = "j"), abs(x)^3.9 * sum(w))
  expect_close(sum(ternaryop.LazyTensor(x_i - y_j, x_i, 7, "IfElse"), index = "j"),
    sum(ifelse(x_i - y_j, x_i, 7), index = "j"))
  expect_equal(binaryop.LazyTensor(x_i, y_j, "SqDist", dim_res = 1)$dimres, 1L)
  expect_s3_class(binaryop.LazyTensor(Vi(x + 1i), Vj(y + 0i), "+", is_operator = TRUE, res_type = "ComplexLazyTensor"), "ComplexLazyTensor")
  expect_error(unaryop.LazyTensor(x, "Exp"), "convert it to LazyTensor first", class = "keopsr_input_error")
  expect_error(binaryop.LazyTensor(x_i, y_j, "SqDist", dim_res = 3.14), "Received 3.14", class = "keopsr_input_error")
  expect_error(binaryop.LazyTensor(x_i, y_j, "SqDist", dim_res = 2), class = "keopsr_dimension_error")
})

test_that("operations KeOps does not define on complex numbers are errors, not wrong numbers", {
  z_i <- Vi(matrix(complex(real = rnorm(6), imaginary = 1), 3, 2))
  for (f in list(square, rsqrt, inv, xlogx, sinxdivx, step, relu, normalize, sqrt, log, cos,
                 function(z) clamp(z, 0, 1), function(z) elem(z, 0), function(z) ifelse(z, 1, 0),
                 function(z) z^2, real2complex, exp1j, function(z) min(z))) {
    expect_error(f(z_i), class = "keopsr_formula_error")
  }
  expect_s3_class(exp(z_i) * 2 + Conj(z_i), "ComplexLazyTensor")
})

test_that("keops_kernel operators take inner_dim = \"row\" (one point per column)", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
  expect_identical(op(list(t(x), t(y), w), inner_dim = "row"), op(list(x, y, w)))
  expect_true(all(c("formula", "args", "args_info", "sum_scheme") %in% names(op())))
  g <- keops_grad(op, "x")
  e <- rnorm(10)
  expect_identical(g(list(t(x), t(y), w, e), inner_dim = "row"), g(list(x, y, w, e)))
  expect_error(op(list(x, y, w), inner_dim = "rows"), class = "keopsr_input_error")
})

test_that("a matrix given where a LazyTensor belongs is an error saying so", {
  expect_error(x %*% y_j, "convert it to LazyTensor first", class = "keopsr_input_error")
  expect_error(x_i + x, "convert it to LazyTensor first", class = "keopsr_input_error")
  expect_error(sum_reduction(x, "j"), "should be a LazyTensor or a ComplexLazyTensor", class = "keopsr_input_error")
  expect_error(Kmin(sqdist(x_i, y_j), 2.5, "j"), "`K` input argument should be an integer", class = "keopsr_reduction_error")
  expect_error(sum_reduction(sqdist(x_i, y_j), "k"), "either 'i' or 'j'", class = "keopsr_reduction_error")
})

test_that("round() takes digits as base R does", {
  v <- c(1.234567, -2.71828, 1e-3)
  for (d in c(3.14, 3.6, -0.6, 2)) {
    expect_close(sum(round(Vi(v), d) + 0 * Vj(w), index = "j"), 12 * round(v, d))
  }
  expect_error(round(x_i, x), "should be a scalar", class = "keopsr_formula_error")
  expect_error(round(x_i, 2i), "should be a scalar", class = "keopsr_formula_error")
})

test_that("formula strings take rkeops' and pykeops' spellings", {
  a <- c("x = Vi(3)", "y = Vj(3)", "e = Vi(1)", "w = Vj(1)")
  e <- rnorm(10)
  grad_op <- keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * w, 1), x, e)", a)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * w, 1)", c("x = Vi(3)", "y = Vj(3)", "w = Vj(1)"))
  expect_close(grad_op(list(x, y, e, w)), keops_grad(op, "x")(list(x, y, w, e)))
  # Weights before the axis; lists as [..]; comparison operators.
  F <- "-SqDist(x, y)"
  ssw <- keops_kernel(sprintf("SumSoftMaxWeight_Reduction(%s, y, 1)", F), a[1:2])
  expect_close(ssw(list(x, y)), sumsoftmaxweight(-sqdist(x_i, y_j), "j", y_j))
  lt <- keops_kernel("Sum_Reduction((x < y) * w, 1)", a[c(1, 2, 4)])
  expect_close(lt(list(x, y, w)), sum((x_i < y_j) * w_j, index = "j"))
  expect_error(keops_kernel("Sum_Reduction(x + w, 1)", c("x = Vi(3)", "w = Vj(7)")),
    "expects inputs of the same dimension or dimension 1. Received 3 and 7.", fixed = TRUE, class = "keopsr_dimension_error")
})

test_that("positions, slices and integer arguments are checked with rkeops' messages", {
  x_i <- Vi(matrix(rnorm(15), 5, 3))
  s_i <- Vi(rnorm(5))
  rk_error <- function(expr, msg) expect_error(expr, msg, fixed = TRUE, class = "keopsr_formula_error")
  rk_error(elem(x_i, 3.14), "`m` input argument should be an integer.")
  rk_error(elem(x_i, 3), "Elem: Index `m` is out of bounds. Should be in [0, 3).")
  rk_error(elem(x_i, -1), "Index `m` is out of bounds. Should be in [0, 3).")
  expect_equal(as.matrix(elem(x_i, 2)), x_i$data[[1]][, 3, drop = FALSE])
  expect_error(elemT(x_i, 0, 4), "`x` input argument should be a `LazyTensor` encoding a single value.", fixed = TRUE, class = "keopsr_dimension_error")
  rk_error(elemT(s_i, 4, 4), "ElemT: Index `m` is out of bounds. Should be in [0, 4).")
  rk_error(elemT(s_i, 1, 2.5), "`n` input argument should be an integer.")
  expect_equal(as.matrix(elemT(s_i, 1, 2)), cbind(0, s_i$data[[1]]))
  rk_error(extract(x_i, 3, 1), "Index `m` is out of bounds. Should be in [0, 3).")
  rk_error(extract(x_i, 1, 3), "Slice dimension is out of bounds. Input `d` should be in [1, 3-m]")
  expect_equal(as.matrix(extract(x_i, 1, 2)), x_i$data[[1]][, 2:3])
  rk_error(extractT(x_i, 0, 2), "Input `d` is out of bounds. Should be at least equal to `x` inner dimension, which is 3.")
  rk_error(extractT(x_i, 5, 5), "Index `m` is out of bounds. Should be in [0, `d`).")
  rk_error(extractT(x_i, 3, 5), "Slice dimension is out of bounds: `d` - `m` should be at least `x` inner dimension, which is 3.")
  expect_equal(as.matrix(extractT(x_i, 1, 5)), cbind(0, x_i$data[[1]], 0))
  expect_error(one_hot(x_i, 4), "One-hot encoding is only supported for scalar formulas.", fixed = TRUE, class = "keopsr_dimension_error")
  rk_error(one_hot(Vi(complex(real = 1:2, imaginary = 0)), 4), "not `ComplexLazyTensor`")
  rk_error(clampint(x_i, Vj(rnorm(2)), 8), "`clampint(x, y, z)` expects integer arguments for `y` and `z`.")
  rk_error(clampint(Vi(complex(real = 1:2, imaginary = 1)), 2, 8), "`x` cannot be a ComplexLazyTensor.")
  expect_error(sum(x_i, "b"), "either 'i' or 'j', or NA.", fixed = TRUE, class = "keopsr_reduction_error")
  expect_error(logsumexp(x_i, "b"), "either 'i' or 'j'.", fixed = TRUE, class = "keopsr_reduction_error")
  expect_error(Kmin(x_i, 3.14, "i"), "`K` input argument should be an integer.", fixed = TRUE, class = "keopsr_reduction_error")
  expect_error(reduction.LazyTensor(x_i, 2, "i"), "`opstr` input should be a string text", fixed = TRUE, class = "keopsr_reduction_error")
})

test_that("LazyTensor() of a LazyTensor and named operators as rkeops", {
  x <- matrix(rnorm(6), 2, 3)
  x_i <- Vi(x)
  expect_error(LazyTensor(x_i), "Input `x` is already a LazyTensor.", fixed = TRUE, class = "keopsr_input_error")
  expect_error(Vi(Vj(x)), "already a LazyTensor", class = "keopsr_input_error")
  expect_error(LazyTensor("x"), "`x` input argument should be a matrix, a vector", fixed = TRUE, class = "keopsr_input_error")
  added <- binaryop.LazyTensor(x_i, x_i, "Add", is_operator = TRUE)
  expect_equal(added$dimres, 3)
  expect_equal(as.matrix(added), 2 * x)
  expect_error(ternaryop.LazyTensor(x_i, x_i, x, "Clamp"), "a LazyTensor, a ComplexLazyTensor, a vector or a scalar.",
    fixed = TRUE, class = "keopsr_input_error")
})

test_that("argmin() of a number and sum_reduction() of a bad index behave as in rkeops", {
  expect_true(is.LazyTensor(argmin(3)))
  expect_equal(argmin(3)$dimres, 1)
  x_i <- Vi(matrix(rnorm(6), 2, 3))
  expect_error(sum_reduction(x_i, "b"), "either 'i' or 'j', or NA.", fixed = TRUE, class = "keopsr_reduction_error")
  expect_error(argmin_reduction(x_i, 3), "either 'i' or 'j', or NA.", fixed = TRUE, class = "keopsr_reduction_error")
})
