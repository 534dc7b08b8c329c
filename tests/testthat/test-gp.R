# Gaussian processes and their building blocks against dense base-R
# references: pivoted Cholesky, the preconditioned solve, SLQ log-determinant,
# the marginal-likelihood gradient, keops_gp() fits and predictions, LOVE.

# Dense kernel s2 kappa(r), r = |(x1 - x2) / ell|.
dense_gp_kernel <- function(kernel, x1, x2, ell, s2) {
  x1 <- as.matrix(x1); x2 <- as.matrix(x2)
  ell <- rep_len(ell, ncol(x1))
  R <- sqrt(dense_sqdist(sweep(x1, 2, ell, "/"), sweep(x2, 2, ell, "/")))
  s2 * switch(kernel,
    gaussian = exp(-R^2 / 2),
    matern12 = exp(-R),
    matern32 = (1 + sqrt(3) * R) * exp(-sqrt(3) * R),
    matern52 = (1 + sqrt(5) * R + 5 * R^2 / 3) * exp(-sqrt(5) * R)
  )
}

# Its derivatives with respect to each log length scale (central
# differences): a list of n x n matrices.
dense_gp_dlogell <- function(kernel, x, ell, s2, h = 1e-5) {
  lapply(seq_along(ell), function(d) {
    up <- replace(ell, d, ell[d] * exp(h))
    down <- replace(ell, d, ell[d] * exp(-h))
    (dense_gp_kernel(kernel, x, x, up, s2) - dense_gp_kernel(kernel, x, x, down, s2)) / (2 * h)
  })
}

# Negative log marginal likelihood, theta = (log ell, log s2, log noise, mean).
dense_nlml <- function(theta, x, y, kernel, n_ell) {
  ell <- exp(theta[seq_len(n_ell)]); s2 <- exp(theta[n_ell + 1]); noise <- exp(theta[n_ell + 2])
  m <- if (length(theta) > n_ell + 2) theta[n_ell + 3] else 0
  C <- chol(dense_gp_kernel(kernel, x, x, ell, s2) + diag(noise, length(y)))
  a <- backsolve(C, y - m, transpose = TRUE)
  0.5 * sum(a^2) + sum(log(diag(C))) + 0.5 * length(y) * log(2 * pi)
}

# The likelihood at the mean's GLS estimate (keops_gp()'s profiled mean),
# and that estimate.
dense_gls_mean <- function(theta, x, y, kernel, n_ell) {
  ell <- exp(theta[seq_len(n_ell)]); s2 <- exp(theta[n_ell + 1]); noise <- exp(theta[n_ell + 2])
  A <- dense_gp_kernel(kernel, x, x, ell, s2) + diag(noise, length(y))
  sum(solve(A, y)) / sum(solve(A, rep(1, length(y))))
}
dense_nlml_profiled <- function(theta, x, y, kernel, n_ell) {
  dense_nlml(c(theta, dense_gls_mean(theta, x, y, kernel, n_ell)), x, y, kernel, n_ell)
}

central_diff <- function(f, theta, h = 1e-5) {
  vapply(seq_along(theta), function(k) {
    e <- replace(numeric(length(theta)), k, h)
    (f(theta + e) - f(theta - e)) / (2 * h)
  }, 0)
}

# The internal objective with fixed probes, as keops_gp() builds it.
gp_state <- function(x, y, kernel = "gaussian", n_ell = 1L, dense = FALSE, rank = 200L, precond_tol = 1e-3,
                     probes = 10L, tol = 1e-8, seed = 1, pivoting = "greedy") {
  set.seed(seed)
  x <- as.matrix(x)
  list(x = x, y = y, kernel = kernel, mean = "constant", n_ell = n_ell, dense = dense, rank = rank,
       precond_tol = precond_tol, tol = tol, max_iter = 1000L, seed = seed, pivoting = pivoting,
       E1 = matrix(rnorm(rank * probes), rank, probes), E2 = matrix(rnorm(nrow(x) * probes), nrow(x), probes))
}

toy_data <- function(n, d = 2, seed = 1, sd = 0.1) {
  set.seed(seed)
  x <- matrix(runif(n * d), n, d)
  y <- sin(6 * x[, 1]) + if (d > 1) cos(4 * x[, 2]) else 0
  list(x = x, y = y + rnorm(n, sd = sd))
}

test_that("the solvers' dense products equal R's", {
  dense_product <- getFromNamespace("dense_product", "keopsr")
  set.seed(4)
  a <- matrix(rnorm(300 * 7), 300, 7)
  b <- matrix(rnorm(300 * 5), 300, 5)
  expect_equal(dense_product(a, b, ta = TRUE), crossprod(a, b), tolerance = 1e-13)
  expect_equal(dense_product(b, a, ta = TRUE), crossprod(b, a), tolerance = 1e-13)
  expect_equal(dense_product(a, crossprod(a, b)), a %*% crossprod(a, b), tolerance = 1e-13)
  expect_equal(dense_product(a, a[1:4, ], tb = TRUE), tcrossprod(a, a[1:4, ]), tolerance = 1e-13)
  expect_equal(dense_product(a, 1:3, a_cols = 3), a[, 1:3] %*% (1:3), tolerance = 1e-13)
  big <- matrix(rnorm(5000 * 60), 5000)
  expect_equal(dense_product(big, big, ta = TRUE), crossprod(big), tolerance = 1e-12)
  old <- keops_options(threads = 1)
  one <- dense_product(big, big, ta = TRUE)
  keops_options(old)
  expect_identical(one, dense_product(big, big, ta = TRUE))
  expect_error(dense_product(a, a), class = "keopsr_dimension_error")
})

test_that("keops_diag() and keops_columns() match the dense matrix", {
  set.seed(2)
  x <- matrix(runif(60), 30, 2); w <- runif(30)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 0.3) * Vi(w) * Vj(w)
  Kd <- exp(-dense_sqdist(x, x) / 0.3) * outer(w, w)
  expect_close(keops_diag(K), diag(Kd), 1e-14)
  expect_close(keops_columns(K, c(3, 7, 30)), Kd[, c(3, 7, 30)], 1e-14)
  expect_error(keops_columns(K, 31), class = "keopsr_input_error")
  expect_error(keops_diag(exp(-sqdist(Vi(x), Vj(x[1:5, ])))), class = "keopsr_input_error")
})

test_that("keops_pivchol() is the dense greedy pivoted Cholesky factor", {
  set.seed(3)
  x <- matrix(runif(200), 100, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 0.2)
  Kd <- exp(-dense_sqdist(x, x) / 0.2)
  # Dense reference: pivot on the largest residual diagonal.
  ref <- function(A, k) {
    n <- nrow(A); L <- matrix(0, n, k); d <- diag(A); piv <- integer(k)
    for (m in seq_len(k)) {
      p <- which.max(d); piv[m] <- p
      L[, m] <- (A[, p] - L[, seq_len(m - 1), drop = FALSE] %*% L[p, seq_len(m - 1)]) / sqrt(d[p])
      d <- d - L[, m]^2
    }
    list(L = L, piv = piv, residual = sum(diag(A)) - sum(L^2))
  }
  pc <- keops_pivchol(K, rank = 15, tol = 0)
  r <- ref(Kd, 15)
  expect_identical(pc$pivots, r$piv)
  expect_close(pc$L, r$L, 1e-10)
  expect_equal(pc$residual_trace, r$residual, tolerance = 1e-8)
  expect_equal(pc$residual_trace, sum(diag(Kd - tcrossprod(pc$L))), tolerance = 1e-8)
  # Early stop at the relative residual trace.
  pc2 <- keops_pivchol(K, rank = 100, tol = 1e-6)
  expect_lt(ncol(pc2$L), 100)
  expect_lte(pc2$residual_trace, 1e-6 * pc2$trace)
  expect_lt(max(abs(tcrossprod(pc2$L) - Kd)), 1e-4)
})

test_that("keops_pivchol(pivoting = \"random\") is the Nystrom factor of its pivots, drawn as sequential RPCholesky draws them", {
  set.seed(5)
  x <- matrix(runif(600), 300, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 0.2)
  Kd <- exp(-dense_sqdist(x, x) / 0.2)
  for (block in c(1L, 7L, 64L)) {
    set.seed(1)
    pc <- keops_pivchol(K, rank = 40, tol = 0, pivoting = "random", block = block)
    P <- pc$pivots
    expect_length(P, 40)
    expect_false(anyDuplicated(P) > 0)
    expect_close(tcrossprod(pc$L), Kd[, P] %*% solve(Kd[P, P], Kd[P, ]), 1e-8)
    expect_identical(pc$L[P, ][upper.tri(diag(40))], rep(0, 40 * 39 / 2))
    expect_equal(pc$residual_trace, sum(diag(Kd - tcrossprod(pc$L))), tolerance = 1e-8)
    set.seed(1)
    expect_identical(keops_pivchol(K, rank = 40, tol = 0, pivoting = "random", block = block), pc)
  }
  # Early stop at the relative residual trace, inside a block.
  set.seed(2)
  pc2 <- keops_pivchol(K, rank = 300, tol = 1e-6, pivoting = "random")
  expect_lt(ncol(pc2$L), 300)
  expect_lte(pc2$residual_trace, 1e-6 * pc2$trace)
  expect_gt(pc2$residual_trace, 0)
  # The first pivot is drawn in proportion to the diagonal; with blocks of
  # 1 the second in proportion to the residual diagonal given the first
  # (the sequential algorithm's law).
  x3 <- matrix(c(0, 0.1, 2), 3)
  K3 <- exp(-sqdist(Vi(x3), Vj(x3)) / 2)
  A <- exp(-dense_sqdist(x3, x3) / 2)
  exact <- outer(1:3, 1:3, Vectorize(function(i, j) {
    if (i == j) return(0)
    r <- diag(A) - A[, i]^2 / A[i, i]
    (A[i, i] / sum(diag(A))) * r[j] / sum(r)
  }))
  runs <- 3000
  for (block in c(1L, 4L)) {
    set.seed(7)
    pairs <- t(vapply(seq_len(runs), function(r) keops_pivchol(K3, rank = 2, tol = 0, pivoting = "random", block = block)$pivots, integer(2)))
    freq <- table(factor(pairs[, 1], 1:3), factor(pairs[, 2], 1:3)) / runs
    if (block > 1) {
      freq <- rowSums(freq)
      exact <- rowSums(exact)
    }
    # within 4 standard errors of each probability
    expect_true(all(abs(freq - exact) <= 4 * sqrt(exact * (1 - exact) / runs) + 1e-12), info = paste(block, toString(freq)))
  }
  expect_error(keops_pivchol(K, pivoting = "best"), class = "keopsr_option_error")
  expect_error(keops_pivchol(K, pivoting = "random", block = 0), class = "keopsr_option_error")
})

test_that("pivoted-Cholesky preconditioned CG equals solve() and cuts iterations", {
  set.seed(4)
  n <- 1500
  x <- matrix(sort(runif(n, 0, 6)))
  K <- exp(-sqdist(Vi(x), Vj(x)) / (2 * 0.3^2))
  Kd <- exp(-dense_sqdist(x, x) / (2 * 0.3^2))
  B <- cbind(sin(x[, 1]) + rnorm(n, sd = 0.1), rnorm(n))
  dense <- solve(Kd + 0.1 * diag(n), B)
  a <- solve(K, B, alpha = 0.1, tol = 1e-10, precond = "pivchol", rank = 50)
  expect_close(a, dense, 1e-7)
  expect_true(attr(a, "converged"))
  expect_identical(ncol(attr(a, "residuals")), 2L)
  jac <- solve(K, B, alpha = 0.1, tol = 1e-10, precond = "jacobi")
  expect_lte(5 * attr(a, "iterations"), attr(jac, "iterations"))
  # "auto" is pivchol at this size.
  auto <- solve(K, B[, 1], alpha = 0.1, tol = 1e-10)
  expect_lte(attr(auto, "iterations"), attr(a, "iterations") + 2)
  # keops_solve() with a formula operator, reducing over j and over i.
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 0.18) * a, 1)", c("x = Vi(1)", "y = Vj(1)", "a = Vj(1)"))
  s <- keops_solve(op, list(x = x, y = x), B[, 1], var = "a", alpha = 0.1, tol = 1e-10, precond = "pivchol", rank = 50)
  expect_close(s, dense[, 1], 1e-7)
  expect_lte(5 * attr(s, "iterations"), attr(jac, "iterations"))
  op0 <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 0.18) * a, 0)", c("x = Vi(1)", "y = Vj(1)", "a = Vi(1)"))
  s0 <- keops_solve(op0, list(x = x, y = x), B[, 1], var = "a", alpha = 0.1, tol = 1e-10, precond = "pivchol", rank = 50)
  expect_close(s0, dense[, 1], 1e-7)
  expect_error(solve(K, B, alpha = 0.1, precond = "cholesky"), class = "keopsr_option_error")
})

test_that("a warm-started mbcg() multiplies only its warm-started columns first", {
  mbcg <- getFromNamespace("mbcg", "keopsr")
  set.seed(6)
  x <- matrix(runif(300), 150, 2)
  A <- exp(-dense_sqdist(x, x) / 0.1) + 0.05 * diag(150)
  B <- matrix(rnorm(450), 150, 3)
  widths <- integer(0)
  matvec <- function(V) {
    widths <<- c(widths, ncol(V))
    A %*% V
  }
  x0 <- solve(A, B[, 2]) + rnorm(150, sd = 1e-3)
  res <- mbcg(matvec, B, identity, 1e-10, 500L, X0 = cbind(0, x0, 0))
  expect_equal(widths[1], 1L)
  expect_true(all(widths[-1] == 3L))
  expect_close(res$x, solve(A, B), 1e-8)
  # The warm-started column converges in fewer iterations than the others.
  expect_lt(res$steps[2], min(res$steps[c(1, 3)]))
  # A NaN start is a warm start: its column is multiplied (and its NaN
  # reaches the residuals) rather than taken for a zero column.
  widths <- integer(0)
  try(mbcg(matvec, B, identity, 1e-10, 5L, X0 = cbind(0, x0, NaN)), silent = TRUE)
  expect_equal(widths[1], 2L)
})

test_that("keops_mbcg() rejects a starting guess that is not finite or of the wrong shape", {
  x <- matrix(runif(200), 100, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)))
  b <- rnorm(100)
  for (x0 in list(matrix(NaN, 100, 1), matrix(0, 99, 1), matrix(0, 100, 2), "a")) {
    expect_error(keops_mbcg(K, b, alpha = 0.1, x0 = x0), "x0 must be a finite numeric 100 x 1 matrix",
                 class = "keopsr_input_error")
  }
  # A vector of the right length is a one-column start.
  a <- keops_mbcg(K, b, alpha = 0.1, tol = 1e-10)$x
  expect_close(keops_mbcg(K, b, alpha = 0.1, tol = 1e-10, x0 = a[, 1])$x, a, 1e-8)
})

test_that("keops_mbcg() tridiagonals give b'A^-1 b and its solutions match", {
  set.seed(5)
  x <- matrix(runif(400), 200, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 0.1)
  A <- exp(-dense_sqdist(x, x) / 0.1) + 0.05 * diag(200)
  B <- matrix(rnorm(600), 200, 3)
  for (precond in c("none", "jacobi", "pivchol")) {
    res <- keops_mbcg(K, B, alpha = 0.05, precond = precond, rank = 20, tol = 1e-10)
    expect_close(res$x, solve(A, B), 1e-7)
    quad <- vapply(1:3, function(c) res$rz0[c] * solve(res$tridiag[[c]])[1, 1], 0)
    expect_equal(quad, colSums(B * solve(A, B)), tolerance = 1e-7, label = precond)
  }
})

test_that("keops_logdet() is within its standard error of determinant()", {
  set.seed(6)
  x <- matrix(runif(1000), 500, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)) / 0.05)
  exact <- as.numeric(determinant(exp(-dense_sqdist(x, x) / 0.05) + 0.02 * diag(500))$modulus)
  for (rank in c(0, 10, 60)) {
    est <- keops_logdet(K, alpha = 0.02, probes = 30, rank = rank, seed = 11, tol = 1e-10)
    se <- attr(est, "se")
    expect_gt(se, 0)
    expect_lt(abs(est - exact), 3 * se + 1e-8 * abs(exact))
  }
  # A better preconditioner, a smaller error bar; the seed fixes the estimate.
  se_low <- attr(keops_logdet(K, alpha = 0.02, probes = 30, rank = 5, seed = 1), "se")
  se_high <- attr(keops_logdet(K, alpha = 0.02, probes = 30, rank = 100, seed = 1), "se")
  expect_lt(se_high, se_low / 5)
  expect_identical(c(keops_logdet(K, 0.02, seed = 3)), c(keops_logdet(K, 0.02, seed = 3)))
})

test_that("the marginal-likelihood gradient matches finite differences of the dense likelihood", {
  gp_objective <- getFromNamespace("gp_objective", "keopsr")
  d <- toy_data(150, 2, seed = 7)
  for (kernel in c("gaussian", "matern12", "matern32", "matern52")) {
    for (n_ell in c(1L, 2L)) {
      theta <- c(log(rep_len(c(0.3, 0.5), n_ell)), log(1.5), log(0.05))
      fd <- central_diff(function(th) dense_nlml_profiled(th, d$x, d$y, kernel, n_ell), theta)
      v <- dense_nlml_profiled(theta, d$x, d$y, kernel, n_ell)
      # Dense path: exact, at the mean's GLS estimate.
      o <- gp_objective(theta, gp_state(d$x, d$y, kernel, n_ell, dense = TRUE))
      expect_equal(o$value, v, tolerance = 1e-10)
      expect_equal(o$par$mean, dense_gls_mean(theta, d$x, d$y, kernel, n_ell), tolerance = 1e-10)
      expect_equal(o$gradient, fd, tolerance = 1e-5, label = paste("dense", kernel, n_ell))
      # Iterative path with a preconditioner close to A: nearly exact.
      for (pivoting in c("greedy", "random")) {
        it <- gp_objective(theta, gp_state(d$x, d$y, kernel, n_ell, rank = 150, precond_tol = 1e-12, pivoting = pivoting))
        expect_equal(it$value, v, tolerance = 1e-6)
        expect_equal(it$par$mean, o$par$mean, tolerance = 1e-6)
        expect_equal(it$gradient, fd, tolerance = 1e-4, label = paste("iterative", kernel, n_ell, pivoting))
      }
    }
  }
  # A coarse preconditioner: the stochastic estimates are unbiased, within
  # their spread over independent probe sets.
  d <- toy_data(300, 2, seed = 8)
  theta <- c(log(0.3), log(1.5), log(0.05))
  fd <- central_diff(function(th) dense_nlml_profiled(th, d$x, d$y, "gaussian", 1L), theta)
  for (pivoting in c("greedy", "random")) {
    runs <- sapply(1:8, function(s) {
      gp_objective(theta, gp_state(d$x, d$y, rank = 8, precond_tol = 0, probes = 20, seed = s, pivoting = pivoting))$gradient
    })
    m <- rowMeans(runs)
    se <- apply(runs, 1, sd) / sqrt(ncol(runs))
    expect_true(all(abs(m - fd) < 4 * se + 1e-6 * abs(fd)), info = pivoting)
    expect_gt(max(se), 0)
  }
})

test_that("the kernel part of the gradient by one GEMM reduction equals the symbolic derivative", {
  expanded <- getFromNamespace("gp_kernel_gradient", "keopsr")
  autodiff <- getFromNamespace("gp_kernel_gradient_autodiff", "keopsr")
  set.seed(3)
  n <- 400
  r <- 5
  eta <- matrix(rnorm(n * r), n)
  W <- matrix(rnorm(n * r), n)
  # Data offset by 1e3 from the origin: the expansion of |u_i - u_j|^2 is
  # taken about the data's centre.
  for (offset in c(0, 1e3)) {
    x <- matrix(rnorm(n * 3), n, 3) + offset
    for (kernel in c("gaussian", "matern12", "matern32", "matern52")) {
      for (n_ell in c(1L, 3L)) {
        st <- list(x = x, kernel = kernel, n_ell = n_ell)
        p <- list(ell = c(0.7, 1.3, 0.4)[seq_len(n_ell)], s2 = 1.7)
        g <- expanded(st, p, eta, W)
        expect_length(g, n_ell + 1)
        expect_equal(g, autodiff(st, p, eta, W), tolerance = 1e-10, label = paste(kernel, n_ell, offset))
      }
    }
  }
})

test_that("kernel values below the normal range are set to 0 where many pairs would give them, exactly elsewhere", {
  gp_kernel <- getFromNamespace("gp_kernel", "keopsr")
  gp_truncate <- getFromNamespace("gp_truncate", "keopsr")
  expanded <- getFromNamespace("gp_kernel_gradient", "keopsr")
  autodiff <- getFromNamespace("gp_kernel_gradient_autodiff", "keopsr")
  # A grid on [0, 60]: about 2% of the pairs have their exponent's argument
  # a in [708, 746], where exp(-a) is subnormal, at length scales that put
  # the largest a at 1000.
  n <- 600
  x <- matrix(seq(0, 60, length.out = n))
  r_max <- c(gaussian = sqrt(2000), matern12 = 1000, matern32 = 1000 / sqrt(3), matern52 = 1000 / sqrt(5))
  a_of_r <- list(gaussian = function(r) r^2 / 2, matern12 = identity, matern32 = function(r) sqrt(3) * r,
                 matern52 = function(r) sqrt(5) * r)
  set.seed(4)
  eta <- matrix(rnorm(n * 3), n)
  W <- matrix(rnorm(n * 3), n)
  for (kernel in names(r_max)) {
    ell <- 60 / r_max[[kernel]]
    s2 <- 1.3
    expect_true(gp_truncate(kernel, x / ell, x / ell), label = kernel)
    expect_false(gp_truncate(kernel, x / (3 * ell), x / (3 * ell)), label = kernel)
    for (precision in c("float64", "float32")) {
      old <- keops_options(precision = precision)
      Kl <- keops_columns(gp_kernel(kernel, x, x, 1 / ell, s2)$K, seq_len(n))
      keops_options(old)
      Kd <- dense_gp_kernel(kernel, x, x, ell, s2)
      a <- a_of_r[[kernel]](abs(outer(x[, 1], x[, 1], "-")) / ell)
      cap <- if (precision == "float32") 75 else 690
      # 0 beyond the cap, the kernel below it, and nothing subnormal.
      tiny <- if (precision == "float32") 2^-126 else .Machine$double.xmin
      expect_true(all(Kl[a > cap * (1 + 1e-6)] == 0), label = paste(kernel, precision))
      keep <- a < cap * (1 - 1e-6)
      expect_equal(Kl[keep], Kd[keep], tolerance = if (precision == "float32") 1e-5 else 1e-13)
      expect_true(all(Kl == 0 | Kl >= tiny), label = paste(kernel, precision))
    }
    # Products with the dense kernel truncated at the cap, and what the
    # truncation drops from the dense kernel's products is below 1e-280.
    Kl <- gp_kernel(kernel, x, x, 1 / ell, s2)$K
    Kt <- Kd * (a <= 690)
    expect_equal(as.matrix(sum(Kl * Vj(W), index = "j")), Kt %*% W, tolerance = 1e-13)
    expect_lt(max(abs(Kd - Kt) %*% abs(W)), 1e-280)
    # The gradient's two ways agree on the truncated kernel.
    st <- list(x = x, kernel = kernel, n_ell = 1L)
    p <- list(ell = ell, s2 = s2)
    expect_equal(expanded(st, p, eta, W), autodiff(st, p, eta, W), tolerance = 1e-10, label = kernel)
  }
})

test_that("the trace control variate by expansions equals its direct formula", {
  cv <- getFromNamespace("gp_control_variate", "keopsr")
  woodbury <- getFromNamespace("woodbury", "keopsr")
  set.seed(12)
  n <- 300
  x <- matrix(rnorm(n * 3), n, 3) + 100
  V <- matrix(rnorm(n * 4), n, 4)
  for (kernel in c("gaussian", "matern12", "matern32", "matern52")) {
    for (n_ell in c(1L, 3L)) {
      p <- list(ell = c(0.7, 1.3, 0.4)[seq_len(n_ell)], s2 = 1.7, noise = 0.05)
      xs <- sweep(x, 2, rep_len(p$ell, 3), "/")
      Kd <- p$s2 * dense_gp_kernel(kernel, x, x, rep_len(p$ell, 3), 1)
      pc <- keops_pivchol(exp(-sqdist(Vi(xs), Vj(xs)) / 2), rank = 25, tol = 0)
      piv <- pc$pivots
      # The Nystrom factor of these pivots for this kernel.
      pc$L <- t(forwardsolve(t(chol(Kd[piv, piv])), t(Kd[, piv])))
      pre <- woodbury(pc$L, p$noise)
      # Direct: D = B Q' + Q B' - Q B[p, ] Q' with B = dK[, p] / dtheta,
      # tr(P^-1 D) - mean of v'Dv over the columns v of V.
      Q <- Kd[, piv] %*% solve(Kd[piv, piv])
      Pinv <- solve(tcrossprod(pc$L) + diag(p$noise, n))
      dK <- dense_gp_dlogell(kernel, x, rep_len(p$ell, 3), p$s2)
      Bs <- if (n_ell == 1) list(Reduce(`+`, dK)) else dK
      Bs[[n_ell + 1]] <- Kd
      want <- vapply(Bs, function(B) {
        B <- B[, piv]
        Dm <- B %*% t(Q) + Q %*% t(B) - Q %*% B[piv, ] %*% t(Q)
        sum(Pinv * Dm) - mean(colSums(V * (Dm %*% V)))
      }, 0)
      expect_equal(cv(list(x = x, kernel = kernel, n_ell = n_ell), p, pc, pre, V), want,
                   tolerance = if (kernel == "matern12") 1e-5 else 1e-7, label = paste(kernel, n_ell))
    }
  }
})

test_that("keops_gp() matches a dense fit of the same likelihood by the same optimizer", {
  d <- toy_data(400, 2, seed = 9)
  # Reference: base-R dense likelihood, L-BFGS-B with numerical gradients.
  theta0 <- c(log(0.3), log(1), log(0.1), 0)
  ref <- optim(theta0, dense_nlml, x = d$x, y = d$y, kernel = "gaussian", n_ell = 1L, method = "L-BFGS-B",
               control = list(factr = 1e5))
  ref_par <- c(exp(ref$par[1:3]), ref$par[4])
  for (method in c("dense", "iterative", "random pivots")) {
    fit <- keops_gp(d$x, d$y, method = if (method == "dense") "dense" else "iterative", precond_tol = 1e-4,
                    pivoting = if (method == "random pivots") "random" else "greedy",
                    init = list(lengthscale = 0.3, variance = 1, noise = 0.1, mean = 0))
    expect_identical(fit$settings$pivoting, if (method == "random pivots") "random" else "greedy")
    if (method != "dense") {
      expect_output(print(summary(fit)), paste0("iterative \\(", fit$settings$pivoting, " pivoted Cholesky rank 400"))
    }
    expect_s3_class(fit, "keops_gp")
    cf <- coef(fit)
    expect_named(cf, c("lengthscale", "variance", "noise", "mean"))
    expect_equal(unname(cf[1:3]), ref_par[1:3], tolerance = 0.02, label = method)
    expect_lt(abs(cf[[4]] - ref_par[4]), 0.02 * sqrt(cf[["variance"]]))
    ll <- logLik(fit)
    expect_s3_class(ll, "logLik")
    expect_equal(attr(ll, "df"), 4L)
    expect_false(is.null(attr(ll, "se")))
    expect_equal(as.numeric(ll), -ref$value, tolerance = 1e-4)
    # Predictions at the fit's hyperparameters equal the dense formulas.
    set.seed(10)
    xt <- matrix(runif(60), 30, 2)
    p <- predict(fit, xt, se.fit = TRUE)
    Kx <- dense_gp_kernel("gaussian", xt, d$x, cf[[1]], cf[[2]])
    A <- dense_gp_kernel("gaussian", d$x, d$x, cf[[1]], cf[[2]]) + cf[[3]] * diag(400)
    mu <- cf[[4]] + Kx %*% solve(A, d$y - cf[[4]])
    v <- cf[[2]] - rowSums(Kx * t(solve(A, t(Kx))))
    expect_close(p$fit, mu, 1e-6)
    expect_close(p$se.fit, sqrt(v), 1e-6)
    expect_close(p$se.obs, sqrt(v + cf[[3]]), 1e-6)
    expect_close(predict(fit, xt), mu, 1e-6)
    expect_close(fitted(fit), cf[[4]] + (A - cf[[3]] * diag(400)) %*% solve(A, d$y - cf[[4]]), 1e-6)
    expect_close(fitted(fit) + residuals(fit), d$y, 1e-12)
  }
})

test_that("a stalled optimisation stops and keeps the best point evaluated", {
  d <- toy_data(1200, 2, seed = 21)
  init <- list(lengthscale = 0.4, variance = 2, noise = 0.01)
  # No decrease can beat 1e6 standard errors: the first evaluation sets
  # the mark, the next `stall` ones do not pass it.
  fit <- keops_gp(d$x, d$y, method = "iterative", init = init, stall = 3, stall_tol = 1e6)
  expect_equal(nrow(fit$trace), 4)
  expect_match(fit$optim$message, "^STALLED")
  expect_equal(fit$optim$convergence, 0L)
  best <- which.min(fit$trace$nlml)
  expect_equal(as.numeric(logLik(fit)), -fit$trace$nlml[best])
  expect_equal(attr(logLik(fit), "se"), fit$trace$se[best])
  expect_output(print(summary(fit)), "STALLED")
  # Without the stall rule (stall_tol = 0 counts any decrease) the same
  # fit goes on.
  expect_warning(
    longer <- keops_gp(d$x, d$y, method = "iterative", init = init, maxit = 6, stall = 3, stall_tol = 0),
    class = "keopsr_convergence_warning"
  )
  expect_gt(nrow(longer$trace), 4)
})

test_that("training CG stops at train_max_iter and warns when that happens at the optimum", {
  d <- toy_data(1500, 2, seed = 23)
  w <- capture_warnings(fit <- keops_gp(d$x, d$y, method = "iterative", rank = 2, tol = 1e-8, train_max_iter = 3,
                                        maxit = 2))
  expect_match(w, "did not reach tol = 1e-08 within train_max_iter = 3 at the optimum", all = FALSE)
  expect_true(all(fit$trace$cg_iterations <= 3))
  expect_gt(fit$settings$unconverged, 0)
  # The prediction solve keeps max_iter (1000): it reaches pred_tol.
  p <- predict(fit, d$x[1:3, ])
  expect_true(all(is.finite(p)))
})

test_that("verbose = TRUE traces evaluations and long CG runs", {
  d <- toy_data(1500, 2, seed = 23)
  msgs <- character(0)
  withCallingHandlers(
    suppressWarnings(keops_gp(d$x, d$y, method = "iterative", rank = 2, tol = 1e-8, maxit = 1, verbose = TRUE),
                     classes = "keopsr_convergence_warning"),
    message = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    }
  )
  expect_match(msgs, "^eval   1  -logLik .*CG [0-9]+ iterations, residual .*, preconditioner rank 2 ", all = FALSE)
  # A rank-2 preconditioner leaves CG tens of iterations to 1e-8.
  expect_match(msgs, "^  CG iteration 10, largest relative residual ", all = FALSE)
})

test_that("pretraining on a subset starts the full fit from the subset's optimum", {
  d <- toy_data(1500, 2, seed = 22)
  fit <- keops_gp(d$x, d$y, method = "iterative", pretrain = TRUE, pretrain_n = 400)
  # The subset is fitted by the dense path (400 <= dense_max_n).
  expect_equal(fit$pretrain$n, 400)
  expect_named(fit$pretrain$coefficients, names(coef(fit)))
  plain <- keops_gp(d$x, d$y, method = "iterative")
  # The full fit's first evaluation is at the subset's optimum, far better
  # than the default start.
  expect_lt(fit$trace$nlml[1], plain$trace$nlml[1] - 100)
  # On this smooth toy problem both starts reach the same optimum, the
  # pretrained one in fewer evaluations on all the data.
  expect_equal(coef(fit), coef(plain), tolerance = 0.05)
  expect_lt(nrow(fit$trace), nrow(plain$trace))
  expect_output(print(summary(fit)), "pretrained on 400 points \\(best of 3 starts\\)")
  # One subset fit per starting length-scale factor; the best one is kept.
  expect_equal(fit$pretrain$starts$lengthscale_factor, c(1, 0.3, 0.1))
  expect_true(all(is.finite(fit$pretrain$starts$logLik)))
  one <- suppressWarnings(keops_gp(d$x, d$y, method = "iterative", pretrain = TRUE, pretrain_n = 400, pretrain_starts = 0.1, maxit = 1))
  expect_equal(nrow(one$pretrain$starts), 1)
  best <- which.max(fit$pretrain$starts$logLik)
  if (best == 3) expect_equal(one$pretrain$coefficients, fit$pretrain$coefficients)
  if (best != 3) expect_gt(max(fit$pretrain$starts$logLik), one$pretrain$starts$logLik)
})

test_that("LOVE variances agree with exact ones", {
  d <- toy_data(1500, 2, seed = 11)
  expect_warning(
    fit <- keops_gp(d$x, d$y, method = "iterative", init = list(lengthscale = 0.4, variance = 2, noise = 0.01), maxit = 3),
    class = "keopsr_convergence_warning"
  )
  set.seed(12)
  xt <- matrix(runif(400), 200, 2)
  exact <- predict(fit, xt, se.fit = TRUE, variance = "exact")
  love <- predict(fit, xt, se.fit = TRUE, variance = "love")
  expect_close(love$fit, exact$fit, 1e-12)
  expect_lt(max(abs(love$se.fit - exact$se.fit) / exact$se.fit), 1e-3)
  expect_gt(fit$cache$love$rank, 1)
  # Far from the data the latent sd is the prior's.
  far <- predict(fit, matrix(c(10, 10), 1), se.fit = TRUE, variance = "love")
  expect_equal(far$se.fit, sqrt(coef(fit)[["variance"]]), tolerance = 1e-6)
})

test_that("keops_gp() S3 methods, ARD names, zero mean, 1-D plot and errors", {
  d <- toy_data(120, 3, seed = 13)
  fit <- keops_gp(d$x, d$y, kernel = "matern52", ard = TRUE, mean = "zero")
  expect_named(coef(fit), c("lengthscale1", "lengthscale2", "lengthscale3", "variance", "noise"))
  # The third input is irrelevant: its length scale is the largest.
  expect_gt(coef(fit)[[3]], max(coef(fit)[1:2]))
  expect_output(print(fit), "matern52")
  expect_output(print(summary(fit)), "log-likelihood")
  d1 <- toy_data(100, 1, seed = 14)
  fit1 <- keops_gp(d1$x[, 1], d1$y, kernel = "matern32")
  grDevices::pdf(NULL)
  on.exit(grDevices::dev.off())
  g <- plot(fit1)
  expect_true(all(g$se.obs > g$se.fit))
  expect_error(keops_gp(d$x, d$y[-1]), class = "keopsr_input_error")
  expect_error(predict(fit, matrix(0, 2, 2)), class = "keopsr_input_error")
})

test_that("keops_gp() runs in float32 with float64 recurrences", {
  d <- toy_data(1200, 2, seed = 15)
  init <- list(lengthscale = 0.4, variance = 2, noise = 0.01)
  # (maxit = 15 may stop the optimiser before it converges: its warning is
  # not what this test is about)
  quiet <- function(expr) suppressWarnings(expr, classes = "keopsr_convergence_warning")
  f64 <- quiet(keops_gp(d$x, d$y, init = init, maxit = 15))
  old <- keops_options(precision = "float32")
  on.exit(keops_options(old))
  f32 <- quiet(keops_gp(d$x, d$y, init = init, maxit = 15, tol = 1e-3, pred_tol = 1e-4))
  # The variance and the mean are weakly identified here (a flat
  # likelihood); the length scale, the noise, the likelihood and the
  # predictions are not.
  expect_equal(coef(f32)[c("lengthscale", "noise")], coef(f64)[c("lengthscale", "noise")], tolerance = 0.05)
  expect_lt(abs(as.numeric(logLik(f32)) - as.numeric(logLik(f64))), 1)
  expect_equal(predict(f32, d$x[1:5, ]), predict(f64, d$x[1:5, ]), tolerance = 1e-2)
})
