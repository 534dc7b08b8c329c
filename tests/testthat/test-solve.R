# Conjugate-gradient solver against base R's dense solve().

gaussian_problem <- function(n, d, scale, seed) {
  set.seed(seed)
  x <- matrix(runif(n * d), n, d)
  list(x = x, K = exp(-sqdist(Vi(x), Vj(x)) / scale), Kd = exp(-dense_sqdist(x, x) / scale))
}

test_that("solve() matches the dense solution, with one and several right-hand sides", {
  p <- gaussian_problem(150, 2, 0.05, 1)
  b <- cbind(sin(5 * p$x[, 1]), p$x[, 2]^2, rnorm(150))
  dense <- solve(p$Kd + 0.2 * diag(150), b)
  a <- solve(p$K, b, alpha = 0.2, tol = 1e-12)
  expect_true(is.matrix(a))
  expect_close(a, dense, 1e-9)
  expect_true(attr(a, "converged"))
  res <- attr(a, "residuals")
  expect_identical(dim(res), c(attr(a, "iterations") + 1L, 3L))
  expect_equal(unname(res[1, ]), c(1, 1, 1))
  expect_true(all(res[nrow(res), ] <= 1e-12))
  a1 <- solve(p$K, b[, 1], alpha = 0.2, tol = 1e-12)
  expect_null(dim(a1))
  expect_close(a1, dense[, 1], 1e-9)
  # b as an i- or j-LazyTensor (rkeops / pykeops style).
  expect_close(solve(p$K, Vi(b), alpha = 0.2, tol = 1e-12), dense, 1e-9)
  expect_close(solve(p$K, Vj(b[, 2]), alpha = 0.2, tol = 1e-12), dense[, 2], 1e-9)
})

test_that("the residual is below tol on random SPD problems, with and without Jacobi", {
  for (seed in 1:4) {
    p <- gaussian_problem(120, 3, 0.3, seed)
    w <- exp(runif(120, -3, 3)) # a badly scaled diagonal: K_w = W^1/2 K W^1/2
    Kw <- p$K * Vi(sqrt(w)) * Vj(sqrt(w))
    Kwd <- p$Kd * outer(sqrt(w), sqrt(w))
    b <- matrix(rnorm(240), 120, 2)
    for (precond in c("none", "jacobi")) {
      a <- solve(Kw, b, alpha = 0.01, tol = 1e-8, max_iter = 5000, precond = precond)
      r <- b - (Kwd %*% a + 0.01 * a)
      expect_true(all(sqrt(colSums(r^2)) / sqrt(colSums(b^2)) <= 1e-8 * 1.01), label = paste(seed, precond))
    }
  }
})

test_that("Jacobi preconditioning cuts the iterations for a badly scaled diagonal", {
  # K = W^1/2 G W^1/2 with G close to the identity and weights spanning six
  # orders of magnitude: the preconditioned system is close to G.
  p <- gaussian_problem(120, 3, 0.02, 1)
  w <- 10^runif(120, -3, 3)
  Kw <- p$K * Vi(sqrt(w)) * Vj(sqrt(w))
  b <- rnorm(120)
  plain <- solve(Kw, b, alpha = 1e-6, tol = 1e-8, max_iter = 5000)
  jacobi <- solve(Kw, b, alpha = 1e-6, tol = 1e-8, max_iter = 5000, precond = "jacobi")
  expect_true(attr(plain, "converged") && attr(jacobi, "converged"))
  expect_lt(5 * attr(jacobi, "iterations"), attr(plain, "iterations"))
  expect_close(jacobi, plain, 1e-4)
})

test_that("reaching max_iter warns and still returns the iterate", {
  p <- gaussian_problem(100, 2, 0.5, 3)
  b <- rnorm(100)
  expect_warning(a <- solve(p$K, b, alpha = 1e-6, tol = 1e-12, max_iter = 4), class = "keopsr_convergence_warning")
  expect_identical(attr(a, "iterations"), 4L)
  expect_false(attr(a, "converged"))
  expect_identical(nrow(attr(a, "residuals")), 5L)
  expect_no_warning(solve(p$K, b, alpha = 1, tol = 1e-6))
})

test_that("float32 solves to float32 accuracy", {
  p <- gaussian_problem(100, 2, 0.1, 4)
  b <- rnorm(100)
  old <- keops_options(precision = "float32")
  on.exit(keops_options(old))
  a <- solve(p$K, b, alpha = 0.5, tol = 1e-5)
  expect_close(a, solve(p$Kd + 0.5 * diag(100), b), 1e-4)
})

test_that("keops_solve() solves with a formula operator", {
  p <- gaussian_problem(80, 2, 0.1, 5)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 0.1) * a, 1)", c("x = Vi(2)", "y = Vj(2)", "a = Vj(2)"))
  b <- matrix(rnorm(160), 80, 2)
  dense <- solve(p$Kd + 0.3 * diag(80), b)
  expect_close(keops_solve(op, list(x = p$x, y = p$x), b, var = "a", alpha = 0.3, tol = 1e-12), dense, 1e-9)
  expect_close(keops_solve(op, list(p$x, p$x, NULL), b, var = "a", alpha = 0.3, tol = 1e-12,
    precond = "jacobi"), dense, 1e-9)
  # Reduction over i: the unknown is indexed by i.
  op_i <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 0.1) * a, 0)", c("x = Vi(2)", "y = Vj(2)", "a = Vi(2)"))
  expect_close(keops_solve(op_i, list(x = p$x, y = p$x), b, var = "a", alpha = 0.3, tol = 1e-12), dense, 1e-9)
  expect_error(keops_solve(op, list(x = p$x, y = p$x), b, var = "x"), class = "keopsr_input_error")
  expect_error(keops_solve(op, list(x = p$x, y = p$x), b, var = "z"), class = "keopsr_input_error")
})

test_that("bad systems and arguments are classed errors", {
  p <- gaussian_problem(50, 2, 0.1, 6)
  expect_error(solve(-p$K, rnorm(50), alpha = 0), class = "keopsr_input_error")
  expect_error(solve(p$K, rnorm(49)), class = "keopsr_input_error")
  y <- matrix(runif(60), 30, 2)
  expect_error(solve(exp(-sqdist(Vi(p$x), Vj(y))), rnorm(50)), class = "keopsr_input_error")
  expect_error(solve(Vi(p$x) * Vj(p$x), rnorm(50)), class = "keopsr_dimension_error")
  expect_error(solve(p$K, rnorm(50), tol = -1), class = "keopsr_option_error")
  expect_error(solve(p$K, rnorm(50), precond = "ilu"), class = "keopsr_option_error")
  expect_error(solve(p$K, "a"), class = "keopsr_input_error")
  expect_error(solve(p$K, c(rnorm(49), NA)), class = "keopsr_input_error")
})

test_that("an interrupt stops a long solve with a classed error, session intact", {
  skip_if_not_installed("callr")
  expect_interrupt_stops(function() {
    x <- matrix(rnorm(9e4), ncol = 3)
    K <- exp(-sqdist(Vi(x), Vj(x))) # 9e8 pairs per iteration, up to 1e4 iterations
    function() solve(K, rnorm(3e4), alpha = 1e-12, tol = 0, max_iter = 1e4)
  }, wait = 1)
})
