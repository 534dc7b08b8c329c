# keops_linop(): products with a symbolic matrix, and RSpectra's eigensolver.

test_that("keops_linop() multiplies like the dense matrix", {
  set.seed(1)
  x <- matrix(rnorm(240), 120, 2)
  y <- matrix(rnorm(160), 80, 2)
  K <- exp(-sqdist(Vi(x), Vj(y)) / 2)
  Kd <- exp(-dense_sqdist(x, y) / 2)
  f <- keops_linop(K)
  expect_identical(attr(f, "n"), 80L)
  v <- rnorm(80)
  expect_null(dim(f(v)))
  expect_close(f(v), Kd %*% v)
  V <- matrix(rnorm(240), 80, 3)
  expect_close(f(V), Kd %*% V)
  expect_error(f(rnorm(79)), class = "keopsr_input_error")
  expect_error(keops_linop(K, alpha = 1), class = "keopsr_input_error") # not square
  Ks <- exp(-sqdist(Vi(x), Vj(x)) / 2)
  g <- keops_linop(Ks, alpha = 0.5)
  w <- rnorm(120)
  expect_close(g(w), exp(-dense_sqdist(x, x) / 2) %*% w + 0.5 * w)
  expect_error(keops_linop(Vi(x) - Vj(x)), class = "keopsr_input_error")
})

test_that("RSpectra::eigs_sym() finds the top eigenpairs of a kernel matrix", {
  skip_if_not_installed("RSpectra")
  set.seed(2)
  x <- matrix(rnorm(600), 300, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 2)
  Kd <- exp(-dense_sqdist(x, x) / 2)
  e <- RSpectra::eigs_sym(keops_linop(K), k = 4, n = 300)
  ref <- eigen(Kd, symmetric = TRUE)
  expect_close(e$values, ref$values[1:4], 1e-8)
  # Eigenvectors up to sign.
  expect_close(abs(crossprod(e$vectors, ref$vectors[, 1:4])), diag(4), 1e-6)
})
