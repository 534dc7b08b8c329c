# Every operation against a dense base-R reference: F(x_i, y_j) evaluated
# through sum(F * b_j, index = "j") equals the dense M x N version.

set.seed(7)
M <- 23; N <- 31
x <- matrix(runif(M * 3, 0.2, 2), M, 3); y <- matrix(runif(N * 3, 0.2, 2), N, 3)
x1 <- runif(M, -2, 2); y1 <- runif(N, -2, 2)
b <- rnorm(N)

# Dense counterpart: apply f to the M x N matrices of the scalar inputs.
dense_pairs <- function(f) f(matrix(x1, M, N), matrix(y1, M, N, byrow = TRUE))

check_op <- function(lazy, dense, tol = 1e-12) {
  # "+ 0 * ..." makes F depend on both indices, so that the output has one
  # row per point even when the operation only uses x or y.
  F <- lazy(Vi(x1), Vj(y1)) + 0 * Vi(x1) + 0 * Vj(y1)
  expect_close(sum(F * Vj(b), index = "j"), dense_pairs(dense) %*% b, tol)
  expect_close(min(F, index = "i"), apply(dense_pairs(dense), 2, min), tol)
}

test_that("arithmetic operators", {
  check_op(function(a, b) a + b, `+`)
  check_op(function(a, b) a - b, `-`)
  check_op(function(a, b) a * b, `*`)
  check_op(function(a, b) a / (b + 3), function(a, b) a / (b + 3))
  check_op(function(a, b) -a + 2.5 * b - 1e-3, function(a, b) -a + 2.5 * b - 1e-3)
  check_op(function(a, b) (a - b)^2, function(a, b) (a - b)^2)
  check_op(function(a, b) (a - b)^3, function(a, b) (a - b)^3)
  check_op(function(a, b) (a + 3)^-2, function(a, b) (a + 3)^-2)
  check_op(function(a, b) abs(a * b)^0.5, function(a, b) sqrt(abs(a * b)))
  check_op(function(a, b) abs(a - b)^-0.5, function(a, b) ifelse(a == b, 0, 1 / sqrt(abs(a - b))))
  check_op(function(a, b) 1 - a, function(a, b) 1 - a)
  check_op(function(a, b) 2 / (b + 5), function(a, b) 2 / (b + 5))
})

test_that("math functions", {
  check_op(function(a, b) exp(a - b), function(a, b) exp(a - b))
  check_op(function(a, b) log(abs(a * b) + 1), function(a, b) log(abs(a * b) + 1))
  check_op(function(a, b) sqrt(abs(a) + b^2), function(a, b) sqrt(abs(a) + b^2))
  check_op(function(a, b) rsqrt(abs(a) + 1) * b, function(a, b) b / sqrt(abs(a) + 1))
  check_op(function(a, b) inv(a - 10) + b, function(a, b) 1 / (a - 10) + b)
  check_op(function(a, b) square(a) - b, function(a, b) a^2 - b)
  check_op(function(a, b) sin(a) * cos(b), function(a, b) sin(a) * cos(b))
})

test_that("vector operations", {
  D2 <- dense_sqdist(x, y)
  expect_close(sum(sqdist(Vi(x), Vj(y)) * Vj(b), index = "j"), D2 %*% b)
  expect_close(sum((Vi(x) | Vj(y)) * Vj(b), index = "j"), (x %*% t(y)) %*% b)
  expect_close(sum(sqnorm2(Vi(x) - Vj(y)), index = "i"), colSums(D2))
  expect_close(sum(norm2(Vi(x) - Vj(y)), index = "j"), rowSums(sqrt(D2)))
  expect_close(sum(sum(Vi(x) * Vj(y)), index = "j"), rowSums(x %*% t(y)))
  # Broadcasting a dimension-1 LazyTensor against dimension 3.
  expect_close(sum(Vi(x1) * Vj(y), index = "j"), x1 %o% colSums(y))
})

test_that("numbers and vectors combine with LazyTensors", {
  p <- c(0.5, 2, -1)
  expect_close(sum(Vi(x) * p, index = "j"), sweep(x, 2, p, "*") * 1)
  expect_close(sum(Vi(x) * Pm(p), index = "j"), sweep(x, 2, p, "*"))
  expect_close(sum(Vi(x1) * 1e-300 * 1e300, index = "j"), matrix(x1 * 1e-300 * 1e300))
  expect_equal(sum(Vi(x1) * Pm(Inf), index = "j"), matrix(x1 * Inf))
})

test_that("repeated sub-expressions are shared, and formulas print", {
  K <- exp(-sqdist(Vi(x), Vj(y)))
  expect_close(sum(K + K, index = "j"), 2 * rowSums(exp(-dense_sqdist(x, y))))
  expect_s3_class(K, "LazyTensor")
  expect_equal(K$dimres, 1L)
  expect_equal(K$index, "ij")
  expect_output(print(K), "dimension 1, indexed by i and j")
  expect_true(is.LazyTensor(K))
  expect_false(is.LazyTensor(x))
})

test_that("LazyTensor, Vi, Vj, Pm build variables", {
  expect_equal(LazyTensor(x, "i")$dimres, 3L)
  expect_equal(Vj(b)$dimres, 1L)
  expect_equal(Pm(c(1, 2))$dimres, 2L)
  expect_equal(Pm(c(1, 2))$index, "")
  expect_equal(LazyTensor(1:3, "i")$data[[1]], matrix(c(1, 2, 3)))
})
