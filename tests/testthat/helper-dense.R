# Dense base-R references: the full M x N matrix, reduced with base R.

# Squared distances between the rows of x (M x d) and y (N x d).
dense_sqdist <- function(x, y) {
  x <- as.matrix(x); y <- as.matrix(y)
  d <- matrix(0, nrow(x), nrow(y))
  for (k in seq_len(ncol(x))) d <- d + outer(x[, k], y[, k], "-")^2
  d
}

# Relative error, with an absolute floor for values near 0.
expect_close <- function(actual, expected, tol = 1e-12) {
  actual <- unname(as.matrix(actual)); expected <- unname(as.matrix(expected))
  expect_equal(dim(actual), dim(expected))
  err <- max(abs(actual - expected) / pmax(1, abs(expected)), 0)
  expect_lt(err, tol)
}

# Row-wise reductions of a dense M x N matrix F (reduce over j); transpose
# F first to reduce over i.
dense_reduce <- function(F, what, K = 1, W = NULL) {
  switch(what,
    Sum = rowSums(F),
    Min = apply(F, 1, min),
    Max = apply(F, 1, max),
    ArgMin = apply(F, 1, which.min),
    ArgMax = apply(F, 1, which.max),
    KMin = t(apply(F, 1, function(r) sort(r)[seq_len(K)])),
    ArgKMin = t(apply(F, 1, function(r) order(r)[seq_len(K)])),
    LogSumExp = apply(F, 1, function(r) { m <- max(r); m + log(sum(exp(r - m))) }),
    SumSoftMaxWeight = rowSums(exp(F) * W) / rowSums(exp(F))
  )
}

random_points <- function(n, d) matrix(rnorm(n * d), n, d)

# Runs `work` in a background R session (callr), interrupts it once it has
# started, and checks that it stopped with keopsr_interrupt_error and that
# the session is still usable. `work()` does its setup and returns the
# function doing the long computation.
expect_interrupt_stops <- function(work, wait = 0.5) {
  environment(work) <- globalenv()
  started <- tempfile()
  child <- callr::r_bg(function(started, work) {
    library(keopsr)
    run <- work()
    file.create(started)
    res <- tryCatch(run(), error = function(e) class(e))
    list(res = res, alive = 1 + 1)
  }, args = list(started = started, work = work))
  on.exit(child$kill())
  for (k in 1:600) if (file.exists(started) || !child$is_alive()) break else Sys.sleep(0.1)
  expect_true(file.exists(started))
  Sys.sleep(wait)
  child$interrupt()
  child$wait(30000)
  expect_false(child$is_alive())
  out <- child$get_result()
  expect_equal(out$res[1:2], c("keopsr_interrupt_error", "keopsr_error"))
  # Also R's own interrupt condition, for tryCatch(interrupt = ).
  expect_true("interrupt" %in% out$res)
  expect_equal(out$alive, 2)
}
