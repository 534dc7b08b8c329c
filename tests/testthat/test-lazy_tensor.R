# LazyTensor variables: unique names, identity of data, complex vectors,
# long formulas built in R.

set.seed(11)
x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(36), 12, 3)

test_that("variable names are unique by construction and leave R's random numbers alone", {
  set.seed(1); a <- runif(1)
  set.seed(1); v <- Vi(x); w <- Vj(y); b <- runif(1)
  expect_equal(a, b)
  expect_false(identical(v$formula, w$formula))
  expect_match(v$formula, "^V[0-9a-f]{8}_[0-9]+$")
})

test_that("LazyTensors saved and loaded, or made in another session, never merge by name", {
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f))
  saveRDS(list(x_i = Vi(x), y_j = Vj(y)), f)
  saved <- readRDS(f)
  # Variables of this session and of the saved one are distinct variables.
  here <- Vj(y * 2)
  K <- exp(-sqdist(saved$x_i, saved$y_j)) * (sqnorm2(here) + 0)
  expect_close(sum(K, index = "j"), exp(-dense_sqdist(x, y)) %*% rowSums((2 * y)^2))
  # The same saved variable loaded twice is still one variable.
  again <- readRDS(f)
  expect_close(sum(sqdist(saved$x_i, again$y_j), index = "j"), rowSums(dense_sqdist(x, y)))
  skip_if_not_installed("callr")
  other <- callr::r(function(x) {
    library(keopsr)
    list(Vi(x), Vi(x + 1))
  }, args = list(x = x))
  mine <- Vj(y)
  expect_close(sum(sqdist(other[[2]], mine), index = "j"), rowSums(dense_sqdist(x + 1, y)))
  expect_false(other[[1]]$formula %in% c(mine$formula, Vi(x)$formula))
})

test_that("two different data sets under one name are a classed error, never merged", {
  a <- Vi(x)
  b <- a
  b$data[[1]] <- x + 1 # an edited field
  expect_error(a + b, "share the name", class = "keopsr_variable_error")
  c <- a
  c$args <- sub("Vi", "Vj", c$args)
  expect_error(a + c, class = "keopsr_variable_error")
  d <- a
  names(d$data) <- "zzz"
  expect_error(d + 1, class = "keopsr_variable_error")
  # LazyTensors of an older keopsr, whose names were a counter: V1 from two
  # sessions with different data.
  old1 <- Vi(x); old1$formula <- "V1"; old1$args <- "V1 = Vi(3)"; names(old1$data) <- "V1"
  old2 <- Vj(y); old2$formula <- "V1"; old2$args <- "V1 = Vi(3)"; names(old2$data) <- "V1"
  expect_error(old1 + old2, class = "keopsr_variable_error")
})

test_that("a complex vector is one complex value per point", {
  z <- complex(real = rnorm(10), imaginary = rnorm(10))
  w <- complex(real = rnorm(12), imaginary = rnorm(12))
  z_i <- Vi(z, is_complex = TRUE)
  expect_equal(z_i$dimres, 1L)
  expect_s3_class(z_i, "ComplexLazyTensor")
  res <- sum(z_i * Vj(w, is_complex = TRUE), index = "j")
  expect_equal(dim(res), c(10L, 1L))
  expect_equal(as.vector(res), z * sum(w), tolerance = 1e-12)
  expect_equal(Pm(1 + 2i, is_complex = TRUE)$dimres, 1L)
})

test_that("sums of thousands of LazyTensors are flat chains, not deep nests", {
  vars <- lapply(1:2000, function(k) Vi(x[, 1] * k))
  s <- Reduce(`+`, vars)
  expect_false(grepl("(", s$formula, fixed = TRUE))
  expect_close(sum(s * Vj(y[, 1]), index = "j"), (x[, 1] * sum(1:2000)) %o% sum(y[, 1]))
  # Parentheses stay where the tree needs them.
  a <- Vi(x[, 1]); b <- Vj(y[, 1]); c <- Vi(x[, 2])
  expect_close(sum(a - (b - c), index = "j"), dense_reduce(outer(x[, 1], y[, 1], "-") + x[, 2], "Sum"))
  expect_close(sum((a - b) * c / (a + 2), index = "j"),
    dense_reduce((outer(x[, 1], y[, 1], "-") * x[, 2]) / (x[, 1] + 2), "Sum"))
  expect_close(sum(a / (b * c + 3), index = "j"), dense_reduce(x[, 1] / (outer(x[, 2], y[, 1]) + 3), "Sum"))
  expect_close(sum(-a * b, index = "j"), dense_reduce(-outer(x[, 1], y[, 1]), "Sum"))
  expect_close(sum(Vi(x) | Vj(y), index = "j"), rowSums(x %*% t(y)))
  expect_close(sum((Vi(x) | Vj(y)) + 1, index = "j"), rowSums(x %*% t(y) + 1))
})

test_that("log() honours its base", {
  p <- abs(x[, 1]) + 0.5
  for (base in c(2, 10, 0.5, exp(1))) {
    expect_close(sum(log(Vi(p), base = base) + 0 * Vj(y[, 1]), index = "j"), 12 * log(p, base))
    expect_close(sum(log(Vi(p), base) + 0 * Vj(y[, 1]), index = "j"), 12 * log(p, base))
  }
  expect_close(sum(log2(Vi(p)) * Vj(y[, 1]), index = "j"), log2(p) %o% sum(y[, 1]))
  expect_close(sum(log10(Vi(p)) * Vj(y[, 1]), index = "j"), log10(p) %o% sum(y[, 1]))
  expect_error(log(Vi(p), base = "2"), class = "keopsr_formula_error")
})
