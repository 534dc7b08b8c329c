# as.matrix() and as.array() of LazyTensors against dense base R.

set.seed(5)
x <- matrix(rnorm(12), 6, 2); y <- matrix(rnorm(10), 5, 2); p <- c(0.5, 2)

test_that("as.matrix() of a formula of i and j is the dense M x N matrix", {
  K <- exp(-sqdist(Vi(x), Vj(y)) / 2)
  expect_close(as.matrix(K), exp(-dense_sqdist(x, y) / 2))
  expect_close(as.matrix(Vi(x[, 1]) - Vj(y[, 2])), outer(x[, 1], y[, 2], "-"))
  expect_close(as.matrix(Vj(y[, 2]) - Vi(x[, 1])), outer(x[, 1], y[, 2], function(a, b) b - a))
  expect_close(as.matrix((Vi(x) | Vj(y)) * Pm(3)), 3 * x %*% t(y))
  a <- as.array(Vi(x) - Vj(y))
  expect_equal(dim(a), c(6L, 5L, 2L))
  expect_close(a[, , 2], outer(x[, 2], y[, 2], "-"))
  expect_error(as.matrix(Vi(x) - Vj(y)), "as.array", class = "keopsr_dimension_error")
})

test_that("as.matrix() of a formula of one index, or of none", {
  expect_close(as.matrix(exp(Vi(x)) * Pm(p)), sweep(exp(x), 2, p, "*"))
  expect_close(as.matrix(sqnorm2(Vj(y))), rowSums(y^2))
  expect_close(as.matrix(Pm(p) * 2), t(2 * p))
  z <- complex(real = rnorm(6), imaginary = rnorm(6))
  expect_equal(as.vector(as.matrix(Vi(z, is_complex = TRUE) * Vj(y[, 1]))), as.vector(outer(z, y[, 1])))
})

test_that("NA and NaN appear exactly where dense R has them", {
  xn <- x; xn[2, 1] <- NA; xn[4, 2] <- NaN
  yn <- y; yn[3, 2] <- Inf
  dense <- dense_sqdist(xn, yn)
  got <- as.matrix(sqdist(Vi(xn), Vj(yn)))
  expect_identical(is.na(got), is.na(dense))
  expect_identical(is.infinite(got), is.infinite(dense))
  expect_close(got[!is.na(dense) & is.finite(dense)], dense[!is.na(dense) & is.finite(dense)])
  # Reductions: the rows R's dense computation makes NA.
  b <- rnorm(5)
  expect_identical(is.na(sum(exp(-sqdist(Vi(xn), Vj(yn))) * Vj(b), index = "j")), is.na(exp(-dense) %*% b))
  # x * 0 is not 0 where x is infinite or NaN.
  xi <- c(1, Inf, NaN, -Inf, NA, 2)
  expect_identical(as.vector(is.na(sum(Vi(xi) * 0 + Vj(y[, 1]), index = "j"))), is.na(xi * 0))
  expect_identical(as.vector(is.na(sum(Vi(xi) - Vi(xi) + Vj(y[, 1]), index = "j"))), is.na(xi - xi))
  expect_identical(as.vector(is.na(sum(0 / Vi(xi - 2) + Vj(y[, 1]), index = "j"))), is.na(0 / (xi - 2)))
})

test_that("results above the dense limit are a classed error", {
  old <- keops_options(max_dense_bytes = 100)
  on.exit(keops_options(old))
  expect_error(as.matrix(exp(-sqdist(Vi(x), Vj(y)))), "max_dense_bytes", class = "keopsr_input_error")
  expect_error(keops_options(max_dense_bytes = -1), class = "keopsr_option_error")
})
