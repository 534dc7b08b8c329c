# Progress of long computations: reported to keops_options(progress = ).

test_that("reductions report the pairs done, ending with all of them", {
  seen <- list()
  old <- keops_options(progress = function(done, total, unit) seen[[length(seen) + 1]] <<- c(done, total), threads = 1)
  on.exit(keops_options(old))
  x <- matrix(rnorm(3 * 3000), 3000, 3)
  res <- sum(exp(-sqdist(Vi(x), Vj(x))), index = "j")
  expect_gt(length(seen), 1)
  done <- vapply(seen, `[`, 0, 1)
  expect_true(all(diff(done) > 0))
  expect_equal(seen[[length(seen)]], c(3000^2, 3000^2))
  # The callback does not change the result.
  keops_options(progress = FALSE)
  expect_identical(sum(exp(-sqdist(Vi(x), Vj(x))), index = "j"), res)
})

test_that("solves report iterations, gradients their passes, and a failing callback stops only the reports", {
  units <- character()
  old <- keops_options(progress = function(done, total, unit) units <<- c(units, unit))
  on.exit(keops_options(old))
  x <- matrix(runif(400), 200, 2)
  a <- solve(exp(-sqdist(Vi(x), Vj(x)) / 0.1), sin(x[, 1]), alpha = 0.1)
  expect_true(all(units == "iterations"))
  expect_gte(length(units), 1)
  units <- character()
  x_i <- Vi(x)
  grad(exp(-sqdist(x_i, Vj(x))), rep(1, 200), "Sum", x_i, "j")
  expect_true(length(units) > 0 && all(units == "pairs"))
  keops_options(progress = function(done, total, unit) stop("broken callback"))
  expect_equal(sum(sqdist(Vi(x), Vj(x)), index = "j"), as.matrix(rowSums(dense_sqdist(x, x))), tolerance = 1e-12)
  keops_options(progress = TRUE) # a cli bar, also when not interactive
  expect_equal(sum(sqdist(Vi(x), Vj(x)), index = "j"), as.matrix(rowSums(dense_sqdist(x, x))), tolerance = 1e-12)
  expect_error(keops_options(progress = "yes"), class = "keopsr_option_error")
})
