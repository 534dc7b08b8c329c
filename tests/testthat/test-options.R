test_that("keops_options sets, returns and restores options", {
  before <- keops_options()
  old <- keops_options(precision = "float32", threads = 1, verbosity = 1)
  on.exit(keops_options(before))
  expect_equal(old$precision, before$precision)
  expect_equal(keops_options()$precision, "float32")
  expect_equal(keops_options()$threads, 1L)
  x <- random_points(5, 2)
  expect_message(sum(Vi(x) * Vj(x), index = "j"), "float32, 1 threads")
  keops_options(old)
  expect_equal(keops_options(), before)
})

test_that("rkeops switches", {
  before <- keops_options()
  on.exit(keops_options(before))
  rkeops_use_float32()
  expect_equal(keops_options()$precision, "float32")
  rkeops_use_float64()
  expect_equal(keops_options()$precision, "float64")
  rkeops_use_cpu(2)
  expect_equal(keops_options()$threads, 2L)
  expect_equal(keops_options()$backend, "cpu")
})

test_that("options set to NULL are kept and can be restored", {
  old <- keops_options(devices = NULL, cache_dir = NA)
  expect_true("devices" %in% names(keops_options()))
  expect_silent(keops_options(old))
  expect_true(all(c("devices", "cache_dir") %in% names(keops_options())))
  expect_null(keops_options()$cache_dir)
})

test_that("gemm = always/never/auto give the dense result for high-dimensional kernels", {
  set.seed(11)
  x <- matrix(rnorm(40 * 64), 40, 64) + 1e3
  y <- matrix(rnorm(70 * 64), 70, 64) + 1e3
  b <- rnorm(70)
  dense <- exp(-dense_sqdist(x, y) / 64) %*% b
  old <- keops_options()
  on.exit(keops_options(old))
  for (choice in c("always", "never", "auto")) {
    keops_options(gemm = choice)
    got <- sum(exp(-sqdist(Vi(x), Vj(y)) / 64) * Vj(b), index = "j")
    expect_lt(max(abs(got - dense) / abs(dense)), 1e-9)
    expect_equal(argKmin(sqdist(Vi(x), Vj(y)), 3, "j"), t(apply(dense_sqdist(x, y), 1, order))[, 1:3])
  }
  expect_error(keops_options(gemm = "yes"), class = "keopsr_option_error")
})

test_that("k nearest neighbours by GEMM distances and an exact re-rank are the direct loop's, bit for bit", {
  set.seed(13)
  x <- matrix(rnorm(60 * 50), 60, 50) + 1e3
  y <- matrix(rnorm(900 * 50), 900, 50) + 1e3
  y[100:109, ] <- x[1:10, ]  # distance 0
  y[200:209, ] <- y[300:309, ]  # duplicates: ties to the smallest index
  y[400, 3] <- NaN
  x[11, 5] <- Inf
  d2 <- dense_sqdist(x, y)
  old <- keops_options()
  on.exit(keops_options(old))
  for (precision in c("float64", "float32")) {
    keops_options(precision = precision, gemm = "never")
    direct <- Kmin_argKmin(sqdist(Vi(x), Vj(y)), 7, "j")
    direct_min <- min_argmin(sqdist(Vi(x), Vj(y)), "j")
    direct_i <- argKmin(sqdist(Vi(y), Vj(x)), 2, "i")
    for (choice in c("auto", "always")) {
      keops_options(gemm = choice)
      expect_identical(Kmin_argKmin(sqdist(Vi(x), Vj(y)), 7, "j"), direct)
      expect_identical(min_argmin(sqdist(Vi(x), Vj(y)), "j"), direct_min)
      expect_identical(argKmin(sqdist(Vi(y), Vj(x)), 2, "i"), direct_i)
    }
    # Against dense R (order() puts NaN last and keeps ties in index order).
    ref <- t(apply(d2, 1, order))[, 1:7]
    expect_identical(direct[[2]][-11, ], ref[-11, ])
  }
})

test_that("a kernel times many weight columns (the weights GEMM) gives the dense result, NaN and Inf included", {
  set.seed(12)
  x <- matrix(rnorm(60 * 3), 60, 3)
  y <- matrix(rnorm(1500 * 3), 1500, 3)
  W <- matrix(rnorm(1500 * 12), 1500, 12)
  W[5, 1] <- Inf
  W[6, 2] <- NaN
  W[7, 3] <- -Inf
  W[8, 3] <- Inf
  Kd <- exp(-dense_sqdist(x, y) / 2)
  dense <- Kd %*% W
  old <- keops_options()
  on.exit(keops_options(old))
  for (choice in c("auto", "never")) {
    keops_options(gemm = choice)
    got <- sum(exp(-sqdist(Vi(x), Vj(y)) / 2) * Vj(W), index = "j")
    expect_identical(is.na(got), is.na(dense))
    expect_identical(got[is.infinite(dense)], dense[is.infinite(dense)])
    ok <- is.finite(dense)
    expect_lt(max(abs(got[ok] - dense[ok])), 1e-12 * max(abs(dense[ok])))
    # Weights first, and as an i-reduction.
    expect_equal(sum(Vj(W) * exp(-sqdist(Vi(x), Vj(y)) / 2), index = "j"), got, tolerance = 1e-13)
    expect_equal(sum(exp(-sqdist(Vi(y), Vj(x)) / 2) * Vi(W), index = "i"), got, tolerance = 1e-13)
  }
})
