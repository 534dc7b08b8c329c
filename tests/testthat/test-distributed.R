# Reductions, gradients and solves split across future workers equal the
# one-process results. One plan per backend, reused for every expectation
# (workers start slowly).

skip_if_not_installed("future")

set.seed(7)
x <- matrix(rnorm(60), 30, 2)
y <- matrix(rnorm(80), 40, 2)
w <- matrix(runif(40), 40, 1)
v <- matrix(rnorm(80), 40, 2)

# Every reduction on both axes, as a list of results.
all_reductions <- function() {
  D <- sqdist(Vi(x), Vj(y))
  out <- list()
  for (index in c("i", "j")) {
    wt <- if (index == "j") Vj(w) else Vi(x[, 1, drop = FALSE]^2)
    vt <- if (index == "j") Vj(v) else Vi(x)
    out[[index]] <- list(
      sum = sum(exp(-D) * wt, index = index),
      min = min(D, index = index), max = max(D, index = index),
      argmin = argmin(D, index), argmax = argmax(D, index),
      min_argmin = min_argmin(D, index),
      kmin = Kmin(D, 3, index), argkmin = argKmin(D, 3, index), kmin_argkmin = Kmin_argKmin(D, 3, index),
      lse = logsumexp(-D, index), lse_w = logsumexp(-D, index, wt),
      ssmw = sumsoftmaxweight(-D, index, vt)
    )
  }
  out
}

ranges_case <- function() {
  s <- keops_sort_clusters(x, keops_grid_cluster(x, 0.7))
  cl <- keops_cluster_ranges_centroids(s$x, s$labels)
  keep <- keops_cluster_mask(cl$centroids, cl$centroids, 1.5)
  r <- keops_ranges(cl$ranges, cl$ranges, keep)
  K <- exp(-sqdist(Vi(s$x), Vj(s$x)))
  list(j = sum(K, index = "j", ranges = r), i = argmin(sqdist(Vi(s$x), Vj(s$x)), "i", ranges = r))
}

eta <- matrix(rnorm(30), 30, 1)
sum_op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * w, 1)", c("x = Vi(2)", "y = Vj(2)", "w = Vj(1)"))
lse_op <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y) * s, 1)", c("x = Vi(2)", "y = Vj(2)", "s = Pm(1)"))
# Gradients written Grad(R, v, e) around a reduction (keops_grad()
# operators), one function per case.
grad_around_cases <- list(
  sum_x = function() keops_grad(sum_op, "x")(list(x, y, w, eta)),
  sum_y = function() keops_grad(sum_op, "y")(list(x, y, w, eta)),
  sum_xx = function() keops_grad(keops_grad(sum_op, "x"), "x")(list(x, y, w, eta, x)),
  lse_x = function() keops_grad(lse_op, "x")(list(x, y, 0.5, eta)),
  lse_y = function() keops_grad(lse_op, "y")(list(x, y, 0.5, eta)),
  lse_s = function() keops_grad(lse_op, "s")(list(x, y, 0.5, eta))
)

grad_case <- function() {
  xi <- Vi(x)
  yj <- Vj(y)
  K <- exp(-sqdist(xi, yj)) * Vj(w)
  c(list(
    gx = grad(K, rep(1, 30), "Sum", xi, "j"),
    gy = grad(K, rep(1, 30), "Sum", yj, "j"),
    vg = keops_value_and_grad(-sqdist(Vi(x), Vj(y)) * Pm(0.5), "j", list(s = 2L, y = 1L), "LogSumExp")
  ), lapply(grad_around_cases, function(f) f()))
}

solve_case <- function() {
  K <- exp(-sqdist(Vi(y), Vj(y)) / 2)
  list(plain = solve(K, v, alpha = 2, tol = 1e-10), jacobi = solve(K, v[, 1], alpha = 2, tol = 1e-10, precond = "jacobi"))
}

everything <- function() list(red = all_reductions(), ranges = ranges_case(), grad = grad_case(), solve = solve_case())

old <- keops_options()
reference <- everything()

expect_all_equal <- function(got, ref) {
  # CG amplifies rounding differences of the products (chunks sum in
  # another order) by about the condition number: solves are compared to
  # 1e-9, everything else to 1e-12.
  # The residual history near convergence (1e-9 and below) is noise.
  for (s in names(ref$solve)) {
    expect_equal(c(got$solve[[s]]), c(ref$solve[[s]]), tolerance = 1e-9)
    expect_equal(attr(got$solve[[s]], "iterations"), attr(ref$solve[[s]], "iterations"))
  }
  got$solve <- ref$solve <- NULL
  expect_equal(got, ref, tolerance = 1e-12)
  # Indices identical (integers compare exactly).
  ints <- function(z) Filter(is.integer, unlist(z, recursive = TRUE, use.names = FALSE))
  idx_got <- rapply(got, function(a) a, classes = "integer", how = "unlist")
  idx_ref <- rapply(ref, function(a) a, classes = "integer", how = "unlist")
  expect_identical(idx_got, idx_ref)
}

test_that("distributed = 'future' with plan(sequential) changes nothing", {
  future::plan(future::sequential)
  on.exit(keops_options(old), add = TRUE)
  keops_options(distributed = "future")
  expect_identical(everything(), reference)
})

for (backend in c("multisession", "cluster")) {
  test_that(sprintf("plan(%s, workers = 2): both splits equal one process", backend), {
    skip_if_not_installed("parallelly")
    if (backend == "multisession") future::plan(future::multisession, workers = 2) else future::plan(future::cluster, workers = 2)
    on.exit(future::plan(future::sequential), add = TRUE)
    on.exit(keops_options(old), add = TRUE)
    expect_equal(future::nbrOfWorkers(), 2)
    keops_options(distributed = "future", distributed_split = "rows")
    expect_all_equal(everything(), reference)
    keops_options(distributed_split = "reduced")
    expect_all_equal(everything(), reference)
    keops_options(distributed_split = "reduced", distributed_chunks = 3)
    expect_all_equal(all_reductions(), reference$red)
    # distributed = "none": the plan is ignored.
    keops_options(distributed = "none")
    expect_identical(all_reductions(), reference$red)
  })
}

test_that("a failing or lost worker is a keopsr_distributed_error naming the chunk", {
  future::plan(future::multisession, workers = 2)
  on.exit(future::plan(future::sequential), add = TRUE)
  on.exit(keops_options(old), add = TRUE)
  on.exit(options(keopsr.distributed_fail_chunk = NULL), add = TRUE)
  keops_options(distributed = "future", distributed_split = "reduced")
  if (requireNamespace("progressr", quietly = TRUE)) {
    # One progressr update per chunk (progressr shows them when enabled).
    ticks <- 0
    # progressr signals nothing in non-interactive sessions unless enabled.
    withr_old <- options(progressr.enable = TRUE)
    on.exit(options(withr_old), add = TRUE)
    withCallingHandlers(
      min(sqdist(Vi(x), Vj(y)), index = "j"),
      progression = function(p) if (identical(p$type, "update")) ticks <<- ticks + p$amount
    )
    expect_equal(ticks, 2)
  }
  options(keopsr.distributed_fail_chunk = 2)
  err <- expect_error(min(sqdist(Vi(x), Vj(y)), index = "j"), class = "keopsr_distributed_error")
  expect_equal(err$chunk, 2)
  expect_match(conditionMessage(err), "chunk 2 of 2")
  err <- expect_error(solve(exp(-sqdist(Vi(y), Vj(y))), v, alpha = 1), class = "keopsr_distributed_error")
  expect_equal(err$chunk, 2)
  options(keopsr.distributed_fail_chunk = list(1, "die"))
  err <- expect_error(sum(sqdist(Vi(x), Vj(y)), index = "j"), class = "keopsr_distributed_error")
  expect_equal(err$chunk, 1)
  expect_match(conditionMessage(err), "lost its worker")
})

test_that("gradients around a reduction are split across the workers", {
  future::plan(future::multisession, workers = 2)
  on.exit(future::plan(future::sequential), add = TRUE)
  on.exit(keops_options(old), add = TRUE)
  on.exit(options(keopsr.distributed_fail_chunk = NULL), add = TRUE)
  keops_options(distributed = "future", distributed_split = "rows")
  # A forced chunk failure shows that every case is split (their values
  # are compared with one process in the tests above).
  options(keopsr.distributed_fail_chunk = 1)
  for (case in names(grad_around_cases)) {
    expect_error(grad_around_cases[[case]](), class = "keopsr_distributed_error", info = case)
  }
})

test_that("distributed options are validated", {
  expect_error(keops_options(distributed = "mpi"), class = "keopsr_option_error")
  expect_error(keops_options(distributed_split = "cols"), class = "keopsr_option_error")
  expect_error(keops_options(distributed_chunks = -1), class = "keopsr_option_error")
})

test_that("ranges are restricted to a chunk exactly", {
  r <- list(out_start = c(0L, 4L), out_end = c(4L, 10L), slices = c(2L, 3L), red_start = c(0L, 6L, 2L), red_end = c(3L, 9L, 8L))
  expect_equal(restrict_ranges(r, "out", 3, 10), list(
    out_start = c(0L, 1L), out_end = c(1L, 7L), slices = c(2L, 3L), red_start = c(0L, 6L, 2L), red_end = c(3L, 9L, 8L)
  ))
  expect_equal(restrict_ranges(r, "red", 3, 7), list(
    out_start = c(0L, 4L), out_end = c(4L, 10L), slices = c(1L, 2L), red_start = c(3L, 0L), red_end = c(4L, 4L)
  ))
})
