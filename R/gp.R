# Exact Gaussian-process regression on all the data: keops_gp() fits the
# hyperparameters by maximum marginal likelihood with the building blocks of
# R/gp-linalg.R (pivoted-Cholesky preconditioned mBCG, SLQ log-determinant,
# stochastic trace), and predicts with LOVE variances. Below
# `dense_max_n` points the same objective is computed by a dense Cholesky
# factor instead.

gp_kernels <- c("gaussian", "matern12", "matern32", "matern52")

# The kernel as a LazyTensor: s2 k(|g * (x_i - y_j)|), g = 1 / lengthscale
# (one per dimension with ARD), both as parameters (Pm) so that keopsr's
# autodiff gives the derivatives with respect to them. Its exponential is
# truncated where it would be far below the normal range, if enough pairs
# are there (gp_truncate()).
gp_kernel <- function(kernel, xa, xb, g, s2) {
  pg <- Pm(g)
  ps2 <- Pm(s2)
  d2 <- sqdist(Vi(xa) * pg, Vj(xb) * pg)
  scaled <- function(x) sweep(x, 2, rep_len(g, ncol(x)), "*")
  k <- gp_kernel_formula(kernel, d2, gp_truncate(kernel, scaled(xa), scaled(xb)))
  list(K = ps2 * k, g = pg, s2 = ps2)
}

# k(r) as a function of the LazyTensor d2 = r^2 (`h = TRUE`: h(r) of
# gp_dense("h"), the length-scale derivative's factor).
gp_kernel_formula <- function(kernel, d2, truncate, h = FALSE) {
  e <- function(a) gp_exp_neg(a, truncate)
  switch(kernel,
    gaussian = gp_exp_neg(d2, truncate, 2),
    matern12 = e(sqrt(d2)),
    matern32 = {
      r <- sqrt(3 * d2)
      if (h) 3 * e(r) else (1 + r) * e(r)
    },
    matern52 = {
      r <- sqrt(5 * d2)
      if (h) (5 / 3) * (1 + r) * e(r) else (1 + r + 5 * d2 / 3) * e(r)
    }
  )
}

# exp(-a / div) for a LazyTensor a >= 0; with `truncate`, 0 where a / div > cap (690 in
# float64, 75 in float32, a margin of 1e8 and 1e5 above the smallest normal
# number), by sending those arguments below exp's underflow. Subnormal
# numbers cost a microcode assist of ~150 cycles on x86 cores in every
# multiplication: at short length scales, where a few percent of the pairs
# fall between the normal range and 0, they made each product with the
# kernel 2-3.5x slower. The values dropped are below 1e-300 (1e-32) times
# the kernel's variance, which the noise on the diagonal dwarfs.
gp_exp_neg <- function(a, truncate, div = 1) {
  if (truncate) {
    cap <- if (identical(keops_options()$precision, "float32")) 75 else 690
    a <- a + relu(a - cap * div) * 1e30
  }
  if (div == 1) exp(-a) else exp(-a / div)
}

# Whether to truncate the kernel (gp_exp_neg()) at these hyperparameters:
# when more than 1e-4 of the pairs would give a subnormal exponential,
# estimated on a fixed sample of 4e5 pairs (strided rows, so that the
# decision is the same at every evaluation with the same parameters). Below
# that the truncation's extra operations (about 25% of a kernel product)
# cost more than the assists they save. xa, xb: the points in length scales.
gp_truncate <- function(kernel, xa, xb) {
  rows <- function(x, m) x[unique(round(seq(1, nrow(x), length.out = m))), , drop = FALSE]
  a <- gp_dense("sqdist", rows(xa, 200), rows(xb, 2000))
  a <- switch(kernel, gaussian = a / 2, matern12 = sqrt(a), matern32 = sqrt(3 * a), matern52 = sqrt(5 * a))
  band <- if (identical(keops_options()$precision, "float32")) c(87, 104) else c(708, 746)
  mean(a > band[1] & a < band[2]) > 1e-4
}

# Dense blocks for the small-N path, the greedy preconditioner's columns,
# the control variate and dense predictions: between the rows of a and b
# (in length scales), "sqdist" the squared distances R^2, "k" s2 k(R) and
# "h" s2 h(R), with d k / d log lengthscale_d = h(R) Delta_d^2 (Delta
# scaled by 1 / lengthscale). One pass in Rust on the option's threads: the
# n x rank blocks of the control variate took 15 s of R's vector arithmetic
# per evaluation at n = 1e5. Distances by differences, exact at coincident
# points, where Matern 1/2 is not smooth (its h = e^-R / R is 0 there).
gp_dense <- function(what, a, b, kernel = "", s2 = 1) {
  storage.mode(a) <- "double"
  storage.mode(b) <- "double"
  check_result(keopsr_dense_pairwise(what, kernel, as.double(s2), a, nrow(a), b, nrow(b), ncol(a),
                                     as.integer(keops_options()$threads)), sys.call())
}

# Hyperparameters from the optimisation vector theta = (log lengthscale(s),
# log variance, log noise); a constant mean is profiled out by
# gp_objective().
gp_unpack <- function(theta, st) {
  nl <- st$n_ell
  list(ell = exp(theta[seq_len(nl)]), s2 = exp(theta[nl + 1]), noise = exp(theta[nl + 2]), mean = 0)
}

# The mean and alpha = A^-1 (y - m) from the solutions X of A X = [y, 1]
# (a constant mean, profiled: m = 1'A^-1 y / 1'A^-1 1, its generalised
# least-squares estimate, where dL/dm = -1'A^-1 (y - m) = 0) or of
# A X = y (a zero mean).
gp_mean_weights <- function(X) {
  if (ncol(X) == 1) return(list(mean = 0, alpha = X[, 1]))
  m <- sum(X[, 1]) / sum(X[, 2])
  list(mean = m, alpha = X[, 1] - m * X[, 2])
}

# Negative log marginal likelihood
#   L = 1/2 r'A^-1 r + 1/2 log det A + n/2 log 2 pi,  A = K + noise I, r = y - m
# (m the profiled mean, gp_mean_weights(), or 0),
# and its gradient dL/dtheta = 1/2 sum_ij M_ij dA_ij / dtheta with
# M = A^-1 - alpha alpha' (alpha = A^-1 r). Iterative path: one mBCG over
# [y, 1, Z] ([y, Z] for a zero mean) with probes Z ~ N(0, P) (P the pivoted-Cholesky preconditioner;
# fixed standard normals within a fit), log det A = log det P + SLQ, and
# A^-1 in M replaced by the estimator (1/t) sum_t (A^-1 z_t)(P^-1 z_t)',
# unbiased since E[z z'] = P; the kernel-parameter part of the gradient is
# then one keopsr gradient reduction of sum_c eta_c' K w_c over all columns
# (W = [alpha, P^-1 Z], eta = [-alpha / 2, A^-1 Z / (2 t)]), plus a control
# variate that removes most of the probe noise (gp_control_variate()).
gp_objective <- function(theta, st, tol = st$tol, x0 = NULL) {
  p <- gp_unpack(theta, st)
  n <- nrow(st$x)
  # A constant mean is profiled out: the solves take y and 1.
  rhs <- if (st$mean == "constant") cbind(st$y, 1) else cbind(st$y)
  xs <- sweep(st$x, 2, rep_len(p$ell, ncol(st$x)), "/")
  if (st$dense) {
    R2 <- gp_dense("sqdist", xs, xs)
    Kd <- gp_dense("k", xs, xs, st$kernel, p$s2)
    C <- chol(Kd + diag(p$noise, n))
    mw <- gp_mean_weights(backsolve(C, backsolve(C, rhs, transpose = TRUE)))
    p$mean <- mw$mean
    alpha <- mw$alpha
    M <- chol2inv(C) - tcrossprod(alpha)
    H <- gp_dense("h", xs, xs, st$kernel, p$s2) * M
    g_ell <- if (st$n_ell == 1) 0.5 * sum(H * R2) else {
      vapply(seq_len(ncol(xs)), function(d) 0.5 * sum(H * outer(xs[, d], xs[, d], "-")^2), 0)
    }
    g_s2 <- 0.5 * sum(M * Kd)
    g_noise <- 0.5 * p$noise * sum(diag(M))
    logdet <- 2 * sum(log(diag(C)))
    info <- list(se = 0, iterations = 0L, residual = 0, converged = TRUE, chol = C)
  } else {
    k <- gp_kernel(st$kernel, st$x, st$x, 1 / p$ell, p$s2)
    ptol <- st$precond_tol * p$noise / p$s2
    pc <- if (!identical(st$pivoting, "random")) {
      # One column in dense R: a reduction against one point would cost
      # more in per-row overhead than these n-vectors.
      column <- function(j) as.vector(gp_dense("k", xs, xs[j, , drop = FALSE], st$kernel, p$s2))
      pivoted_cholesky(column, rep(p$s2, n), st$rank, ptol)
    } else {
      # A block of columns: one reduction against the identity (exact: the
      # other terms are zeros). The same random numbers at every
      # evaluation: the pivots move with the hyperparameters only.
      columns <- function(S) {
        keops_linop(gp_kernel(st$kernel, st$x, st$x[S, , drop = FALSE], 1 / p$ell, p$s2)$K)(diag(length(S)))
      }
      with_seed(st$seed, random_pivoted_cholesky(columns, rep(p$s2, n), st$rank, ptol))
    }
    pre <- woodbury(pc$L, p$noise)
    t <- ncol(st$E2)
    Z <- pre$sample(st$E1[seq_len(ncol(pc$L)), , drop = FALSE], st$E2)
    progress <- if (isTRUE(st$verbose)) function(iter, rel) {
      if (iter %% 10 == 0) message(sprintf("  CG iteration %d, largest relative residual %.2g", iter, max(rel)))
    }
    h <- ncol(rhs)
    res <- mbcg(kernel_matvec(k$K, p$noise), cbind(rhs, Z), pre$solve, tol, st$max_iter,
                X0 = if (!is.null(x0)) cbind(x0, matrix(0, n, t)), on_iteration = progress)
    mw <- gp_mean_weights(res$x[, seq_len(h), drop = FALSE])
    p$mean <- mw$mean
    alpha <- mw$alpha
    Y <- res$x[, -seq_len(h), drop = FALSE]
    V <- pre$solve(Z)
    ld <- slq_logdet(res, h + seq_len(t), pre$logdet)
    logdet <- ld$value
    # tr(A^-1 dA) from the probes, with the Nystrom derivative D of the
    # preconditioner as control variate (gp_control_variate()): the
    # reduction carries 1 + t columns.
    gk <- gp_kernel_gradient(st, p, cbind(-0.5 * alpha, 0.5 * Y / t), cbind(alpha, V))
    cv <- gp_control_variate(st, p, pc, pre, V)
    g_ell <- gk[seq_len(st$n_ell)] + 0.5 * cv[seq_len(st$n_ell)]
    g_s2 <- gk[st$n_ell + 1] + 0.5 * cv[st$n_ell + 1]
    # tr(P^-1): pre$s2 are the eigenvalues of L L' (NULL without pivots).
    trace_pinv <- (n - length(pre$s2)) / p$noise + sum(1 / (pre$s2 + p$noise))
    g_noise <- p$noise * (-0.5 * sum(alpha^2) + 0.5 * trace_pinv + 0.5 * sum((Y - V) * V) / t)
    info <- list(
      se = 0.5 * ld$se, iterations = res$iterations, residual = max(res$residuals[nrow(res$residuals), ]),
      converged = res$converged, pivchol = pc
    )
  }
  value <- 0.5 * sum((st$y - p$mean) * alpha) + 0.5 * logdet + 0.5 * n * log(2 * pi)
  # Derivatives with respect to the log-parameters: at the profiled mean
  # dL/dm = 0, so that they are those of the profiled likelihood.
  grad <- c(g_ell, g_s2, g_noise)
  c(list(value = value, gradient = grad, alpha = alpha, par = p), info)
}

# sum_c eta_c' (dK / dtheta) w_c for theta the log length scales and the
# log variance: the kernel part of the likelihood gradient, W = [alpha,
# P^-1 Z] and eta = [-alpha / 2, A^-1 Z / (2 t)] (see gp_objective()).
# dK_ij / dlog l_d = s2 h(R_ij) Delta_ijd^2, Delta the difference in length
# scales (gp_dense("h")); with u the centred coordinates in length scales,
# Delta_ijd^2 = u_id^2 - 2 u_id u_jd + u_jd^2 and H symmetric, so that
#   s2 sum_i [u_id^2 (eta_i . (H W)_i + w_i . (H eta)_i) - 2 u_id eta_i . (H (u_d W))_i]
# comes from one kernel reduction against the (2 + D) r columns
# [W, eta, u_1 W, ..., u_D W]: keopsr multiplies each kernel tile by them
# with a GEMM, about half the time of the symbolic derivative's reduction,
# whose element-wise passes per pair outnumber the kernel's. Centring keeps
# the expansion's cancellation at about eps |u|^2 per pair. matern12's
# h = e^-R / R is unbounded near R = 0, where the cancellation would grow
# with it: it keeps the symbolic derivative (gp_kernel_gradient_autodiff()).
gp_kernel_gradient <- function(st, p, eta, W) {
  if (st$kernel == "matern12") return(gp_kernel_gradient_autodiff(st, p, eta, W))
  u <- sweep(sweep(st$x, 2, colMeans(st$x)), 2, rep_len(p$ell, ncol(st$x)), "/")
  r <- ncol(W)
  D <- ncol(u)
  cols <- function(b) (b - 1) * r + seq_len(r)
  B <- cbind(W, eta, do.call(cbind, lapply(seq_len(D), function(d) u[, d] * W)))
  h <- gp_kernel_formula(st$kernel, sqdist(Vi(u), Vj(u)), gp_truncate(st$kernel, u, u), h = TRUE)
  HB <- as.matrix(sum(h * Vj(B), index = "j"))
  sq <- rowSums(eta * HB[, cols(1), drop = FALSE]) + rowSums(W * HB[, cols(2), drop = FALSE])
  g_d <- vapply(seq_len(D), function(d) {
    sum(u[, d]^2 * sq) - 2 * sum(u[, d] * rowSums(eta * HB[, cols(2 + d), drop = FALSE]))
  }, 0)
  # d K / d log s2 = K: the kernel itself against W (h is the kernel for the
  # Gaussian).
  KW <- if (st$kernel == "gaussian") HB[, cols(1), drop = FALSE] else {
    as.matrix(sum(gp_kernel(st$kernel, st$x, st$x, 1 / p$ell, 1)$K * Vj(W), index = "j"))
  }
  p$s2 * c(if (st$n_ell == 1) sum(g_d) else g_d, sum(eta * KW))
}

# The same by keopsr's symbolic derivative of the kernel reduction with
# respect to its parameters 1 / lengthscale and s2.
gp_kernel_gradient_autodiff <- function(st, p, eta, W) {
  k <- gp_kernel(st$kernel, st$x, st$x, 1 / p$ell, p$s2)
  red <- lazy_reduction(k$K * Vj(W), "j", "Sum", NULL)
  pos <- vapply(list(k$g, k$s2), lazy_position, 0L, names = red$names, call = NULL)
  gr <- value_and_grad(red$formula, red$args, red$data, pos, eta, call = NULL)$gradients
  c(-as.vector(gr[[1]]) / p$ell, as.vector(gr[[2]]) * p$s2)
}

# The control variate of the trace estimator, per kernel hyperparameter
# theta (the log length scales, then log variance):
#   tr(P^-1 D) - (1/t) sum_t v_t' D v_t,   v_t = P^-1 z_t,  z_t ~ N(0, P),
# whose expectation is 0 for any symmetric D (E[v D v] = tr(P^-1 D P^-1 P)).
# D = dK~/dtheta is the derivative of the preconditioner's Nystrom
# approximation K~ = Q K[p, ] (Q = K[, p] K[p, p]^-1 = L L[p, ]^-1, p the
# pivots): D = B Q' + Q B' - Q B[p, ] Q', B = dK[, p] / dtheta (n x rank,
# dense). When K~ is close to K, D is close to dA, so that
# (1/t) sum_t (A^-1 z_t)' dA v_t - v_t' D v_t + tr(P^-1 D) has a small variance.
gp_control_variate <- function(st, p, pc, pre, V) {
  n_theta <- st$n_ell + 1
  m <- length(pc$pivots)
  if (m == 0) return(numeric(n_theta))
  t <- ncol(V)
  piv <- pc$pivots
  D <- ncol(st$x)
  # Centred coordinates in length scales (the expansions below cancel less).
  xs <- sweep(st$x, 2, rep_len(p$ell, D), "/")
  u <- sweep(xs, 2, colMeans(xs))
  P <- u[piv, , drop = FALSE]
  H <- gp_dense("h", u, P, st$kernel, p$s2)
  Kp <- if (st$kernel == "gaussian") H else gp_dense("k", u, P, st$kernel, p$s2)
  # Q = L Lpp^-1 (Lpp = L[p, ], lower triangular) is never formed: with
  # P^-1 L = L (alpha I + L'L)^-1 (push-through), P^-1 Q = L G for the
  # k x k G = (alpha I + L'L)^-1 Lpp^-1, Q'P^-1 Q = Lpp^-T L'L G and
  # Q'V = Lpp^-T L'V: one n x k by k x k product instead of four.
  Lpp_inv <- forwardsolve(pc$L[piv, , drop = FALSE], diag(m))
  G <- solve(pre$LtL + diag(p$noise, m), Lpp_inv)
  PQ <- dense_product(pc$L, G)
  QPQ <- dense_product(Lpp_inv, dense_product(pre$LtL, G), ta = TRUE)
  QV <- dense_product(Lpp_inv, dense_product(pc$L, V, ta = TRUE), ta = TRUE)
  # The length-scale derivatives B_d = H * (u_d - P_d')^2 are never formed
  # either (n x k each): with (u_d - P_d)^2 = u_d^2 - 2 u_d P_d + P_d^2,
  # sum(PQ * B_d) and B_d'V come from W = H * PQ and one product
  # H'[V, u_1 V, u_1^2 V, ...].
  W <- H * PQ
  w_row <- rowSums(W)
  w_col <- colSums(W)
  WP <- dense_product(W, P)
  HX <- dense_product(H, do.call(cbind, c(list(V), lapply(seq_len(D), function(d) cbind(u[, d] * V, u[, d]^2 * V)))), ta = TRUE)
  block <- function(b) HX[, b * t + seq_len(t), drop = FALSE]
  per_dim <- lapply(seq_len(D), function(d) list(
    trace = sum(u[, d]^2 * w_row) - 2 * sum(u[, d] * WP[, d]) + sum(P[, d]^2 * w_col),
    BtV = block(2 * d) - 2 * P[, d] * block(2 * d - 1) + P[, d]^2 * block(0),
    Bpp = H[piv, , drop = FALSE] * outer(P[, d], P[, d], "-")^2
  ))
  # Isotropic: one length scale for the sum over dimensions.
  groups <- if (st$n_ell == 1) list(per_dim) else lapply(per_dim, list)
  terms <- lapply(groups, function(g) Reduce(function(a, b) Map(`+`, a, b), g))
  terms[[n_theta]] <- list(trace = sum(PQ * Kp), BtV = dense_product(Kp, V, ta = TRUE), Bpp = Kp[piv, , drop = FALSE])
  vapply(terms, function(b) {
    trace <- 2 * b$trace - sum(QPQ * b$Bpp)
    probes <- 2 * sum(b$BtV * QV) - sum(QV * dense_product(b$Bpp, QV))
    trace - probes / t
  }, 0)
}

#' Exact Gaussian-process regression on all the data
#'
#' `keops_gp(x, y)` fits a Gaussian process with a stationary kernel
#' \deqn{k(x, x') = s^2 \kappa(r) + \sigma^2 \delta_{x x'},\quad r^2 = \sum_d (x_d - x'_d)^2 / \ell_d^2}{k(x, x') = s^2 kappa(r) + sigma^2 delta, r^2 = sum_d (x_d - x'_d)^2 / l_d^2}
#' (one length scale \eqn{\ell}{l}, or one per column of x with `ard = TRUE`)
#' by maximising the exact marginal likelihood, without storing the n x n
#' kernel matrix. Kernels: `"gaussian"` \eqn{\kappa = e^{-r^2/2}}{kappa = exp(-r^2 / 2)},
#' `"matern12"` \eqn{e^{-r}}{exp(-r)}, `"matern32"`
#' \eqn{(1 + \sqrt3 r) e^{-\sqrt3 r}}{(1 + sqrt(3) r) exp(-sqrt(3) r)}, `"matern52"`
#' \eqn{(1 + \sqrt5 r + 5r^2/3) e^{-\sqrt5 r}}{(1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)}.
#' The mean is a constant (estimated) or zero.
#'
#' **The constant mean** is profiled out of the likelihood: at every
#' evaluation it is its generalised least-squares estimate
#' \eqn{\hat m = 1^\top A^{-1} y / 1^\top A^{-1} 1}{m = 1'A^-1 y / 1'A^-1 1}
#' (A = K + noise I; one more right-hand side of the same solve), where the
#' likelihood is largest for the other hyperparameters, so that L-BFGS-B
#' works on the kernel's log-parameters alone. The optimiser sees the
#' negative log-likelihood per point (`fnscale = n`): its first steps are
#' then of the size of the log-parameters, where the sum over n points
#' sent the first line searches to the bounds (a noise at its lower bound,
#' where CG needs hundreds of iterations). On 10,000 flights
#' (`bench/gp.R`) the fit reached a log-likelihood of 7421 (test RMSE
#' 0.1110) in 39.5 s, against 7141 (0.1154) in 35.9 s with the mean as a
#' free parameter and the unscaled sum; on 10,000 diamonds the negative
#' log-likelihood reached 143.2 in 40.0 s against 143.7 in 28.7 s (RMSE
#' 0.2386 and 0.2387). The likelihood has local optima, and single fits
#' compare only roughly.
#'
#' **Algorithm** (GPyTorch's BBMM, on keopsr reductions). For n above
#' `dense_max_n` (default 1000) each evaluation of the negative log marginal
#' likelihood and of its gradient with respect to all hyperparameters runs
#' one batched conjugate-gradient solve ([keops_mbcg()], preconditioned by a
#' rank-`rank` pivoted Cholesky factor, [keops_pivchol()]) with the data and
#' `probes` probe vectors as right-hand sides (one kernel reduction per
#' iteration for all of them), the log-determinant by stochastic Lanczos
#' quadrature from the same iterations ([keops_logdet()]), and one gradient
#' reduction for the data and trace terms of every length scale and the
#' variance: the derivative kernel against \eqn{(2 + D) r}{(2 + D) r}
#' columns (r = 1 + `probes`), which keopsr multiplies tile by tile with a
#' GEMM (`"matern12"`: keopsr's symbolic derivative of the kernel; the
#' Matern kernels take a second reduction for the variance); the noise and
#' mean derivatives need no reduction. The probes
#' are fixed within a fit, so the objective is a smooth function for
#' `optim(method = "L-BFGS-B")` on the log-parameters. At or below
#' `dense_max_n` points the same objective is computed exactly with a dense
#' Cholesky factor (about as fast there, and exact).
#'
#' **Tolerances** (relative residuals of CG). Training: `tol = 0.01` by
#' default (GPyTorch trains at 1 and evaluates at 0.01); with the pivoted
#' Cholesky preconditioner CG reaches it in 2 to 15 iterations on the
#' problems of the tests and of `bench/gp.R`, and a tighter `tol` changes
#' the fitted hyperparameters far less than the probe noise does (see the
#' standard error of `logLik()`). Prediction: the mean weights
#' \eqn{A^{-1}(y - m)}{A^-1 (y - m)} are solved again at `pred_tol = 1e-6`,
#' warm-started from the last training solve; `logLik()` is that of the
#' last training evaluation.
#'
#' **Pretraining** (off by default): with `pretrain = TRUE` the
#' hyperparameters are first fitted on a random subset of `pretrain_n`
#' (2000) points, once from each starting point whose length scales are the
#' default ones times a factor of `pretrain_starts` (1, 0.3, 0.1), and the
#' full fit starts from the subset fit of highest likelihood (`maxit` then
#' defaults to 20 instead of 100). It saves evaluations on all the data,
#' which cost the most. The several starts are there because the
#' likelihood has several local optima: on a subset of 10,000 flights (the
#' `GP_DATA=flights` data of `bench/gp.R`) the three starts end at
#' log-likelihoods of 7198, 7411 and 7411, with length scales of the
#' distance of 2.2, 0.39 and 0.40, and a start only slightly different
#' from the second (length scales 0.3 times the subset's own standard
#' deviations) reached 7501 at 0.13. A small subset can still prefer another
#' basin than all the data: on 20,000 diamonds a 2000-point subset fitted
#' from the default start alone preferred length scales 7x longer, and the
#' full fit started there ended at a log-likelihood of -252 where the
#' default start reaches +60.
#'
#' **Cost at large n** (2 Intel Xeon cores, float64, D = 3,
#' `bench/RESULTS-gp.md`, `bench/RESULTS-gp-flights.md` and
#' `bench/RESULTS-gp-pivoting.md`): an evaluation takes about 1 s at n =
#' 1e4, 6 s at 3e4 and 40-60 s at 1e5 while the preconditioner meets
#' `precond_tol` within `rank` (CG then needs 1-2 iterations at `tol =
#' 0.01`); about half of it is the gradient's kernel reduction. Where the
#' length scales are short against the spacing of the data, the
#' preconditioner stops at `rank` without meeting its tolerance, and CG
#' needs more iterations: on 100,000 flights at length scales (0.062, 1.13,
#' 8.2), 16 iterations and about 9 min at rank 400; with `pivoting =
#' "random"` and `rank = 1200` the tolerance is met at rank 870, CG needs 1
#' iteration and the evaluation 152 s. Pretraining moves most evaluations to
#' the subset.
#'
#' **Stopping**: the probes are fixed, but the preconditioner's pivots and
#' rank change with the hyperparameters, so the estimated objective jumps
#' by about its standard error between nearby points, and near the optimum
#' L-BFGS-B's line searches can then cycle between such points without
#' progress. The fit therefore also stops when `stall` (8) evaluations in a
#' row have not lowered the best value by more than `stall_tol` (0.1)
#' standard errors: differences that small are noise of the estimate. The
#' fit keeps the best point evaluated.
#'
#' **Progress**: `verbose = TRUE` prints, per evaluation, the negative log
#' likelihood with its standard error, the CG iterations, the final
#' residual and the preconditioner's rank, and every 10th CG iteration's
#' largest residual; the computation can be interrupted (Ctrl-C) at any reduction. A
#' warning of class `keopsr_convergence_warning` says when CG stopped at
#' `train_max_iter` before `tol` at the optimum, or when the optimiser stopped at `maxit`
#' (line-search terminations near a stochastic optimum, L-BFGS-B codes 51
#' and 52, are shown by `summary()`).
#' `keops_options(precision = "float32")` runs the reductions in single
#' precision (faster on GPUs); the CG recurrences, tridiagonals and
#' quadratures stay float64. Use `tol >= 1e-4` then.
#'
#' @param x the inputs: a numeric matrix with one row per point (or a vector).
#' @param y the responses, one per row of x.
#' @param kernel `"gaussian"`, `"matern12"`, `"matern32"` or `"matern52"`.
#' @param ard one length scale per input column (`TRUE`) or one for all.
#' @param mean `"constant"` (estimated: profiled out of the likelihood,
#'   see Details) or `"zero"`.
#' @param init named initial values (`lengthscale`, `variance`, `noise`;
#'   default: the standard deviations of the columns of x (their mean
#'   without ARD), var(y) / 2 and var(y) / 10). A constant mean needs none
#'   (a `mean` entry is ignored).
#' @param noise_min the smallest noise variance (default `1e-4 * var(y)`;
#'   smaller noise makes CG slow).
#' @param probes number of probe vectors of the log-determinant and trace
#'   estimates.
#' @param rank,precond_tol the pivoted-Cholesky preconditioner grows until
#'   the mean of its residual diagonal is below `precond_tol` times the noise
#'   variance, or to rank `rank`. The better the preconditioner, the
#'   smaller the variance of the stochastic log-determinant and trace
#'   estimates (exact when the residual is zero) and the fewer CG
#'   iterations. Its cost grows as n rank^2 (dense products), a kernel
#'   product's as n^2: from a few thousand points up, rank 400 costs little
#'   beside the kernel products of an evaluation. On 30,000 diamonds or
#'   flights (`bench/gp.R`) the tolerance is met at rank 314-324 and CG
#'   needs 1 iteration, where rank 100 needed 14 and doubled the time of
#'   an evaluation (18.0 against 8.4 s) with a 20 times larger standard
#'   error of the log-likelihood.
#' @param tol,pred_tol CG tolerances of training and prediction (see
#'   Details).
#' @param max_iter,train_max_iter most CG iterations of a prediction solve,
#'   and of a training solve. The trial points of the first line searches
#'   can make K + noise I very ill-conditioned (at the noise's lower bound):
#'   on 10,000 flights one such point took 191 iterations, 40 of the fit's
#'   48 s, and at n = 1e5 each iteration costs about 10 s. A training
#'   evaluation stopped at `train_max_iter` is inexact; the fit warns when
#'   that happens at its optimum.
#' @param maxit most L-BFGS-B iterations.
#' @param method `"auto"` (dense Cholesky at or below `dense_max_n` points,
#'   iterative above), `"dense"` or `"iterative"`.
#' @param dense_max_n the switch point of `method = "auto"`.
#' @param pretrain,pretrain_n,pretrain_starts pretraining on a subset of
#'   `pretrain_n` points, fitted from the default start with its length
#'   scales multiplied by each of `pretrain_starts` (see Details).
#' @param stall,stall_tol the optimisation stops, at the best point
#'   evaluated, after `stall` evaluations in a row that do not lower the
#'   best negative log likelihood by more than `stall_tol` times its
#'   standard error (see Details).
#' @param pivoting the preconditioner's pivots: `"greedy"` (default) or
#'   `"random"` (randomly pivoted Cholesky in blocks, [keops_pivchol()]).
#'   Random pivots cost less at large n (100,000 flights: 3.8-6.6 s against
#'   13.7-15.5 s for the greedy factor where the tolerance is met, at rank
#'   316 against 345; 9.4-9.9 against 49-53 s at rank 800), but they change
#'   with the hyperparameters more often (at 11 against 5 of 20 steps of
#'   0.001 in the log length scale), so that the estimated objective is
#'   rougher. On 10,000 flights and diamonds the fits took 21 and 23 s
#'   against 40 and 38 s, and stopped at a log-likelihood 88 lower and 0.6
#'   higher than the greedy fits (`bench/RESULTS-gp-pivoting.md`).
#' @param seed seed of the probe vectors (and of the pretraining subset); R's
#'   random stream is left as it was.
#' @param verbose print a trace of the optimisation.
#' @return An object of class `keops_gp`: methods [print()], [summary()],
#'   [coef()], [logLik()], [predict()][predict.keops_gp], [fitted()],
#'   [residuals()], [plot()][plot.keops_gp] (1-D inputs).
#' @seealso [predict.keops_gp()], [keops_mbcg()], [keops_logdet()],
#'   [keops_pivchol()], and `vignette("gaussian-process")`.
#' @export
#' @examples
#' set.seed(1)
#' x <- runif(300, 0, 6)
#' y <- sin(2 * x) + rnorm(300, sd = 0.2)
#' fit <- keops_gp(x, y)
#' coef(fit)
#' p <- predict(fit, c(1, 2, 3), se.fit = TRUE)
#' p$fit; p$se.fit
keops_gp <- function(x, y, kernel = c("gaussian", "matern12", "matern32", "matern52"), ard = FALSE,
                     mean = c("constant", "zero"), init = NULL, noise_min = NULL, probes = 10L,
                     rank = 400L, precond_tol = 1e-3, tol = 0.01, pred_tol = 1e-6, max_iter = 1000L, train_max_iter = 100L, maxit = NULL,
                     method = c("auto", "dense", "iterative"), dense_max_n = 1000L, pretrain = FALSE,
                     pretrain_n = 2000L, pretrain_starts = c(1, 0.3, 0.1), stall = 8L, stall_tol = 0.1, pivoting = c("greedy", "random"), seed = 1L, verbose = FALSE) {
  call <- match.call()
  acall <- sys.call()
  kernel <- match.arg(kernel)
  mean <- match.arg(mean)
  method <- match.arg(method)
  pivoting <- match.arg(pivoting)
  if (is.data.frame(x)) x <- as.matrix(x)
  if (!is.numeric(x) || is.object(x)) keopsr_abort("input", "x must be a numeric matrix or vector", acall)
  x <- as.matrix(x)
  storage.mode(x) <- "double"
  if (!is.numeric(y) || length(y) != nrow(x)) keopsr_abort("input", "y must be numeric with one value per row of x", acall)
  y <- as.double(y)
  if (anyNA(x) || anyNA(y) || any(!is.finite(x)) || any(!is.finite(y))) {
    keopsr_abort("input", "x and y must be finite (no NA)", acall)
  }
  n <- nrow(x)
  if (n < 3) keopsr_abort("input", "keops_gp() needs at least 3 points", acall)
  dense <- method == "dense" || (method == "auto" && n <= dense_max_n)
  vy <- stats::var(y)
  if (!(vy > 0)) keopsr_abort("input", "y must not be constant", acall)
  sds <- apply(x, 2, stats::sd)
  sds[!(sds > 0)] <- 1
  defaults <- list(lengthscale = if (ard) sds else mean(sds), variance = vy / 2, noise = vy / 10)
  for (nm in names(init)) defaults[[nm]] <- init[[nm]]
  if (is.null(noise_min)) noise_min <- 1e-4 * vy
  n_ell <- if (ard) ncol(x) else 1L
  # L-BFGS-B works on the kernel's log-parameters; a constant mean is
  # profiled out (its GLS estimate at every evaluation).
  theta0 <- c(log(rep_len(defaults$lengthscale, n_ell)), log(defaults$variance), log(max(defaults$noise, 2 * noise_min)))
  span <- pmax(apply(x, 2, function(v) diff(range(v))), 1e-8)
  lower <- c(log(rep_len(if (ard) span else mean(span), n_ell) * 1e-4), log(vy * 1e-6), log(noise_min))
  upper <- c(log(rep_len(if (ard) span else mean(span), n_ell) * 1e4), log(vy * 1e6), log(vy * 10))
  st <- list(x = x, y = y, kernel = kernel, mean = mean, n_ell = n_ell, dense = dense, rank = as.integer(rank),
             precond_tol = precond_tol, tol = tol, max_iter = as.integer(train_max_iter), verbose = verbose, seed = seed,
             pivoting = pivoting)
  rng <- with_seed(seed, list(
    E1 = matrix(stats::rnorm(min(rank, n) * probes), min(rank, n), probes),
    E2 = matrix(stats::rnorm(n * probes), n, probes), subset = sample.int(n, min(n, pretrain_n))
  ))
  st$E1 <- rng$E1
  st$E2 <- rng$E2
  pre_fit <- NULL
  if (isTRUE(pretrain) && !dense && n > pretrain_n) {
    # One subset fit per starting length scale: the likelihood has several
    # local optima, and the subset's best one starts the full fit.
    pre_fits <- lapply(pretrain_starts, function(f) {
      if (verbose) message(sprintf("pretraining on a random subset of %d points, length scales x %g", pretrain_n, f))
      keops_gp(x[rng$subset, , drop = FALSE], y[rng$subset], kernel = kernel, ard = ard, mean = mean,
               init = utils::modifyList(defaults, list(lengthscale = defaults$lengthscale * f)), noise_min = noise_min,
               probes = probes, rank = rank, precond_tol = precond_tol, tol = tol, pred_tol = pred_tol,
               max_iter = max_iter, train_max_iter = train_max_iter, method = "auto", dense_max_n = dense_max_n, pretrain = FALSE, stall = stall,
               stall_tol = stall_tol, pivoting = pivoting, seed = seed, verbose = verbose)
    })
    pre_ll <- vapply(pre_fits, function(f) as.numeric(stats::logLik(f)), 0)
    pre_fit <- pre_fits[[which.max(pre_ll)]]
    theta0 <- pmin(pmax(pre_fit$theta, lower), upper)
  }
  if (is.null(maxit)) maxit <- if (is.null(pre_fit)) 100L else 20L
  theta0 <- pmin(pmax(theta0, lower), upper)
  cache <- new.env()
  cache$evals <- 0L
  cache$trace <- list()
  cache$unconverged <- 0L
  cache$best <- NULL
  cache$anchor <- Inf
  cache$since <- 0L
  evaluate <- function(theta) {
    if (!identical(theta, cache$theta)) {
      r <- gp_objective(theta, st)
      cache$theta <- theta
      cache$r <- r
      cache$alpha <- r$alpha
      cache$evals <- cache$evals + 1L
      if (!isTRUE(r$converged)) cache$unconverged <- cache$unconverged + 1L
      if (is.null(cache$best) || r$value < cache$best$r$value) cache$best <- list(theta = theta, r = r)
      # The stall count: evaluations since the best value last dropped by
      # more than stall_tol standard errors of the estimate.
      if (r$value < cache$anchor - stall_tol * r$se) {
        cache$anchor <- r$value
        cache$since <- 0L
      } else {
        cache$since <- cache$since + 1L
      }
      cache$trace[[cache$evals]] <- c(
        evaluation = cache$evals, nlml = r$value, se = r$se, cg_iterations = r$iterations, cg_residual = r$residual
      )
      if (verbose) {
        message(sprintf(
          "eval %3d  -logLik %.6g (se %.2g)  CG %d iterations, residual %.2g%s  [%s]", cache$evals, r$value, r$se,
          r$iterations, r$residual, if (is.null(r$pivchol)) "" else sprintf(", preconditioner rank %d", ncol(r$pivchol$L)),
          paste(format(signif(gp_named(r$par, st), 4)), collapse = " ")
        ))
      }
      if (cache$since >= stall) stop(structure(class = c("keopsr_gp_stall", "condition"), list(message = "", call = NULL)))
    }
    cache$r
  }
  opt <- tryCatch(
    stats::optim(theta0, function(th) evaluate(th)$value, function(th) evaluate(th)$gradient,
                 method = "L-BFGS-B", lower = lower, upper = upper, control = list(maxit = maxit, fnscale = n)),
    keopsr_gp_stall = function(e) list(
      par = cache$best$theta, value = cache$best$r$value, convergence = 0L,
      message = sprintf("STALLED: %d evaluations without a decrease larger than %g standard errors", stall, stall_tol),
      counts = c(`function` = cache$evals, gradient = cache$evals)
    )
  )
  # optim() returns its last accepted point; the best evaluated one is kept.
  opt$par <- cache$best$theta
  opt$value <- cache$best$r$value
  # L-BFGS-B's line-search failures (codes 51, 52) at a stochastic optimum
  # are reported in summary(), not as warnings; reaching maxit is a warning.
  if (verbose && !is.null(opt$message)) message("optimiser: ", opt$message)
  if (opt$convergence == 1) {
    warning(structure(class = c("keopsr_convergence_warning", "warning", "condition"), list(
      message = sprintf("the optimiser stopped before convergence (optim code %d: %s)", opt$convergence,
                        if (is.null(opt$message)) "" else opt$message), call = acall
    )))
  }
  # Unconverged trial points elsewhere only cost the optimiser an inexact
  # value there; at the optimum the estimate itself is inexact.
  if (!isTRUE(cache$best$r$converged)) {
    warning(structure(class = c("keopsr_convergence_warning", "warning", "condition"), list(
      message = sprintf("conjugate gradient did not reach tol = %g within train_max_iter = %d at the optimum (nor in %d of %d evaluations)",
                        tol, train_max_iter, cache$unconverged, cache$evals), call = acall
    )))
  } else if (verbose && cache$unconverged > 0) {
    message(sprintf("CG stopped at train_max_iter = %d in %d of %d evaluations, not at the optimum",
                    train_max_iter, cache$unconverged, cache$evals))
  }
  # The final state: the likelihood, its SE and the preconditioner of the
  # last training evaluation at the optimum; the mean weights alpha solved
  # again at the prediction tolerance, warm-started from training (one
  # right-hand side, a few cheap iterations).
  final <- cache$best$r
  if (!dense) {
    k <- gp_kernel(kernel, x, x, 1 / final$par$ell, final$par$s2)
    pre <- woodbury(final$pivchol$L, final$par$noise)
    res <- mbcg(kernel_matvec(k$K, final$par$noise), matrix(y - final$par$mean), pre$solve, pred_tol,
                as.integer(max_iter), X0 = matrix(final$alpha))
    if (!res$converged) {
      warning(structure(class = c("keopsr_convergence_warning", "warning", "condition"), list(
        message = sprintf("the final solve did not reach pred_tol = %g within max_iter = %d", pred_tol, max_iter),
        call = acall
      )))
    }
    final$alpha <- as.vector(res$x)
    final$iterations <- res$iterations
  }
  structure(list(
    call = call, x = x, y = y, kernel = kernel, ard = ard, mean_type = mean, n = n,
    method = if (dense) "dense" else "iterative", coefficients = gp_named(final$par, st), theta = opt$par,
    alpha = final$alpha, loglik = -final$value, loglik_se = final$se, df = length(opt$par) + (mean == "constant"),
    optim = opt[c("convergence", "message", "counts")], trace = as.data.frame(do.call(rbind, cache$trace)),
    chol = final$chol, pivchol = final$pivchol, cg_iterations = final$iterations,
    settings = list(probes = probes, rank = rank, tol = tol, pred_tol = pred_tol, max_iter = max_iter,
                    train_max_iter = train_max_iter, unconverged = cache$unconverged, seed = seed,
                    pivoting = pivoting),
    pretrain = if (!is.null(pre_fit)) {
      list(n = pretrain_n, coefficients = pre_fit$coefficients,
           starts = data.frame(lengthscale_factor = pretrain_starts, logLik = pre_ll))
    },
    cache = new.env()
  ), class = "keops_gp")
}

gp_named <- function(p, st) {
  ell <- p$ell
  names(ell) <- if (st$n_ell == 1) "lengthscale" else paste0("lengthscale", seq_along(ell))
  c(ell, variance = p$s2, noise = p$noise, if (st$mean == "constant") c(mean = p$mean))
}

gp_par <- function(object) {
  cf <- object$coefficients
  list(
    ell = cf[grepl("^lengthscale", names(cf))], s2 = cf[["variance"]], noise = cf[["noise"]],
    mean = if (object$mean_type == "constant") cf[["mean"]] else 0
  )
}

#' @export
print.keops_gp <- function(x, ...) {
  cat(sprintf("Gaussian process (%s kernel%s, %s mean), %d points, fitted by %s\n", x$kernel,
              if (x$ard) ", ARD" else "", x$mean_type, x$n,
              if (x$method == "dense") "dense Cholesky" else "preconditioned CG (BBMM)"))
  print(signif(x$coefficients, 5))
  cat(sprintf("log-likelihood %.6g%s\n", x$loglik, if (x$loglik_se > 0) sprintf(" (se %.2g)", x$loglik_se) else ""))
  invisible(x)
}

#' @export
summary.keops_gp <- function(object, ...) {
  structure(list(
    call = object$call, coefficients = object$coefficients, loglik = stats::logLik(object), method = object$method,
    n = object$n, kernel = object$kernel, optim = object$optim, evaluations = nrow(object$trace),
    cg_iterations = if (nrow(object$trace)) object$trace$cg_iterations else integer(0),
    residual_sd = stats::sd(stats::residuals(object)), settings = object$settings, pretrain = object$pretrain
  ), class = "summary.keops_gp")
}

#' @export
print.summary.keops_gp <- function(x, ...) {
  cat("Call:\n")
  print(x$call)
  cat(sprintf("\n%s kernel, %d points, %s\n\nHyperparameters:\n", x$kernel, x$n,
              if (x$method == "dense") "dense Cholesky (exact)" else sprintf(
                "iterative (%s pivoted Cholesky rank %d, %d probes, CG tol %g)",
                if (is.null(x$settings$pivoting)) "greedy" else x$settings$pivoting, x$settings$rank, x$settings$probes,
                x$settings$tol)))
  print(signif(x$coefficients, 5))
  ll <- x$loglik
  cat(sprintf("\nlog-likelihood %.6g%s, df %d\n", ll, if (attr(ll, "se") > 0) sprintf(" (se %.2g)", attr(ll, "se")) else "",
              attr(ll, "df")))
  cat(sprintf("L-BFGS-B: %d evaluations, convergence code %d (%s)%s\n", x$evaluations, x$optim$convergence,
              if (is.null(x$optim$message)) "" else x$optim$message,
              if (length(x$cg_iterations) && any(x$cg_iterations > 0)) sprintf(
                "; CG iterations per evaluation: median %g, max %g", stats::median(x$cg_iterations),
                max(x$cg_iterations)) else ""))
  if (!is.null(x$pretrain)) {
    cat(sprintf("pretrained on %d points (best of %d starts)\n", x$pretrain$n, max(1L, NROW(x$pretrain$starts))))
  }
  cat(sprintf("residual standard deviation %.4g\n", x$residual_sd))
  invisible(x)
}

#' @export
coef.keops_gp <- function(object, ...) object$coefficients

#' @export
logLik.keops_gp <- function(object, ...) {
  structure(object$loglik, df = object$df, nobs = object$n, se = object$loglik_se, class = "logLik")
}

#' @export
fitted.keops_gp <- function(object, ...) {
  # A alpha = y - m, so m + K alpha = y - noise alpha (no reduction).
  object$y - gp_par(object)$noise * object$alpha
}

#' @export
residuals.keops_gp <- function(object, ...) object$y - stats::fitted(object)

#' Predictions of a Gaussian-process fit
#'
#' The posterior mean \eqn{m + k_*^\top A^{-1}(y - m)}{m + k*' A^-1 (y - m)} (one
#' reduction over the training points), and the predictive standard
#' deviation of the latent function \eqn{\sqrt{s^2 - k_*^\top A^{-1} k_*}}{sqrt(s^2 - k*' A^-1 k*)}
#' and of a new observation (adding the noise variance).
#'
#' Variances (`se.fit = TRUE`): for a dense fit, from its Cholesky factor;
#' otherwise `"exact"` solves \eqn{A^{-1} k_*}{A^-1 k*} for every test point
#' by batched, preconditioned CG (the default for at most `exact_max` = 100
#' test points: one kernel reduction per iteration with all of them), and
#' `"love"` (LOVE, Pleiss et al. 2018) uses a block Lanczos decomposition of the
#' preconditioned matrix \eqn{\tilde A = P^{-1/2} A P^{-1/2} \approx Q T Q^\top}{P^-1/2 A P^-1/2 ~ Q T Q'},
#' computed once per fit (one reduction per block of 16 Lanczos vectors, cached),
#' \deqn{k_*^\top A^{-1} k_* \approx k_*^\top P^{-1} k_* + (Q^\top P^{-1/2} k_*)^\top (T^{-1} - I)(Q^\top P^{-1/2} k_*),}{k*'A^-1 k* ~ k*'P^-1 k* + (Q'P^-1/2 k*)'(T^-1 - I)(Q'P^-1/2 k*),}
#' which then costs one reduction for all test points. The Lanczos rank grows
#' (by 16, at most `love_rank`) until the latent variances at 50 random
#' training inputs change by less than `love_tol` (default 1e-4) relative;
#' on the test problems the LOVE standard deviations then agree with exact
#' ones to about 1e-4 relative.
#'
#' @param object a [keops_gp()] fit.
#' @param newdata new inputs (a matrix with the columns of the training x,
#'   or a vector for 1-D inputs); default: the training inputs.
#' @param se.fit also return standard deviations.
#' @param variance `"auto"`, `"exact"` or `"love"` (see Details).
#' @param exact_max the most test points for `"auto"` to use `"exact"`.
#' @param love_tol,love_rank accuracy target and largest rank of LOVE.
#' @param ... unused.
#' @return With `se.fit = FALSE`, the vector of means; else a list with `fit`
#'   (means), `se.fit` (latent standard deviations) and `se.obs` (standard
#'   deviations of a new observation).
#' @export
predict.keops_gp <- function(object, newdata = NULL, se.fit = FALSE, variance = c("auto", "exact", "love"),
                             exact_max = 100L, love_tol = 1e-4, love_rank = 400L, ...) {
  call <- sys.call()
  variance <- match.arg(variance)
  xnew <- if (is.null(newdata)) object$x else {
    if (is.data.frame(newdata)) newdata <- as.matrix(newdata)
    if (is.null(dim(newdata)) && ncol(object$x) > 1) newdata <- matrix(newdata, ncol = ncol(object$x))
    as.matrix(newdata)
  }
  storage.mode(xnew) <- "double"
  if (ncol(xnew) != ncol(object$x)) {
    keopsr_abort("input", sprintf("newdata must have %d columns, as the training inputs", ncol(object$x)), call)
  }
  p <- gp_par(object)
  kc <- gp_kernel(object$kernel, xnew, object$x, 1 / p$ell, p$s2)
  mu <- p$mean + as.vector(sum(kc$K * Vj(object$alpha), index = "j"))
  if (!se.fit) return(mu)
  m <- nrow(xnew)
  if (object$method == "dense") {
    xs <- sweep(object$x, 2, rep_len(p$ell, ncol(xnew)), "/")
    xsn <- sweep(xnew, 2, rep_len(p$ell, ncol(xnew)), "/")
    q <- numeric(m)
    for (chunk in split(seq_len(m), ceiling(seq_len(m) / 2000))) {
      Ks <- gp_dense("k", xs, xsn[chunk, , drop = FALSE], object$kernel, p$s2)
      q[chunk] <- colSums(backsolve(object$chol, Ks, transpose = TRUE)^2)
    }
  } else if (variance == "exact" || (variance == "auto" && m <= exact_max)) {
    Ks <- t(as.matrix(kc$K))
    k <- gp_kernel(object$kernel, object$x, object$x, 1 / p$ell, p$s2)
    pre <- woodbury(object$pivchol$L, p$noise)
    res <- mbcg(kernel_matvec(k$K, p$noise), Ks, pre$solve, object$settings$pred_tol, object$settings$max_iter)
    warn_convergence(res, object$settings$pred_tol, call)
    q <- colSums(Ks * res$x)
  } else {
    lf <- love_factor(object, love_tol, love_rank)
    # Two reductions: K against [G, U] is one GEMM per tile, which a
    # concatenation with K * K would turn into a product per pair and column.
    proj <- as.matrix(sum(kc$K * Vj(cbind(lf$G, lf$U)), index = "j"))
    kG <- proj[, seq_len(ncol(lf$G)), drop = FALSE]
    kU <- proj[, ncol(lf$G) + seq_len(ncol(lf$U)), drop = FALSE]
    kk <- as.vector(sum(kc$K * kc$K, index = "j"))
    q <- kk / p$noise + as.vector(dense_product(kU^2, 1 / (lf$s2 + p$noise) - 1 / p$noise)) +
      rowSums(dense_product(kG, lf$M) * kG)
  }
  v <- pmax(p$s2 - q, 0)
  list(fit = mu, se.fit = sqrt(v), se.obs = sqrt(v + p$noise))
}

# The LOVE factor of a fit (cached in its environment): block Lanczos on
# P^-1/2 A P^-1/2 from a random block of `love_block` columns (one kernel
# reduction per block of the Krylov basis, which the weights GEMM makes
# about as cheap as one column), with full reorthogonalisation and the
# Rayleigh-Ritz matrix T = Q' (P^-1/2 A P^-1/2) Q; G = P^-1/2 Q,
# M = T^-1 - I, and the preconditioner's U and s2 (for k*'P^-1 k*).
love_block <- 16L
love_factor <- function(object, tol, max_rank) {
  key <- paste(tol, max_rank)
  if (!is.null(object$cache$love) && identical(object$cache$love_key, key)) return(object$cache$love)
  p <- gp_par(object)
  n <- object$n
  k <- gp_kernel(object$kernel, object$x, object$x, 1 / p$ell, p$s2)
  pre <- woodbury(object$pivchol$L, p$noise)
  matvec <- kernel_matvec(k$K, p$noise)
  op <- function(V) pre$inv_sqrt(matvec(pre$inv_sqrt(V)))
  max_rank <- min(max_rank, n)
  width <- min(love_block, max_rank)
  checks <- with_seed(object$settings$seed, list(
    idx = sample.int(n, min(n, 50)), start = matrix(stats::rnorm(n * width), n, width)
  ))
  Kc <- keops_columns(k$K, checks$idx)
  Wc <- pre$inv_sqrt(Kc)
  base <- colSums(Kc * pre$solve(Kc))
  # An orthonormal block orthogonal to the basis Q, without the directions
  # the basis already spans (columns whose remainder is below 1e-10).
  next_block <- function(W, Q) {
    for (pass in 1:2) if (ncol(Q)) W <- W - dense_product(Q, dense_product(Q, W, ta = TRUE))
    d <- qr(W, tol = 1e-10)
    keep <- seq_len(d$rank)
    qr.Q(d)[, keep, drop = FALSE]
  }
  Q <- next_block(checks$start, matrix(0, n, 0))
  AQ <- op(Q)
  # T = Q'(op Q) and A = Q'Wc grow by the new block's rows and columns
  # only: recomputing them costs n rank^2 per block.
  T <- dense_product(Q, AQ, ta = TRUE)
  A <- dense_product(Q, Wc, ta = TRUE)
  previous <- NULL
  repeat {
    T <- (T + t(T)) / 2
    M <- solve(T) - diag(ncol(Q))
    var <- p$s2 - (base + colSums(A * dense_product(M, A)))
    change <- if (is.null(previous)) Inf else max(abs(var - previous) / pmax(var, 1e-12 * p$s2))
    previous <- var
    room <- max_rank - ncol(Q)
    if (change < tol || room <= 0) break
    last <- AQ[, ncol(Q) - seq_len(min(width, ncol(Q))) + 1, drop = FALSE]
    new <- next_block(last[, seq_len(min(ncol(last), room)), drop = FALSE], Q)
    if (ncol(new) == 0) break # the Krylov space is invariant: exact
    Anew <- op(new)
    cross <- dense_product(Q, Anew, ta = TRUE)
    T <- rbind(cbind(T, cross), cbind(dense_product(new, AQ, ta = TRUE), dense_product(new, Anew, ta = TRUE)))
    A <- rbind(A, dense_product(new, Wc, ta = TRUE))
    Q <- cbind(Q, new)
    AQ <- cbind(AQ, Anew)
  }
  if (change >= tol && room <= 0) {
    warning(structure(class = c("keopsr_convergence_warning", "warning", "condition"), list(
      message = sprintf("LOVE reached love_rank = %d with a relative variance change of %.2g > love_tol = %g; use variance = \"exact\" or a larger love_rank",
                        max_rank, change, tol), call = NULL
    )))
  }
  lf <- list(G = pre$inv_sqrt(Q), M = M, U = pre$U, s2 = pre$s2, rank = ncol(Q))
  if (is.null(lf$U)) {
    lf$U <- matrix(0, n, 0)
    lf$s2 <- numeric(0)
  }
  object$cache$love <- lf
  object$cache$love_key <- key
  lf
}

#' Plot a one-dimensional Gaussian-process fit
#'
#' The data, the posterior mean and a band of `level` for the latent
#' function (and, dashed, for a new observation), on a grid of `n` points.
#'
#' @param x a [keops_gp()] fit with one input column.
#' @param n grid size.
#' @param level coverage of the bands.
#' @param ... passed to [plot()].
#' @return The grid predictions, invisibly.
#' @export
plot.keops_gp <- function(x, n = 200L, level = 0.95, ...) {
  if (ncol(x$x) != 1) keopsr_abort("input", "plot() of a keops_gp fit needs one input column")
  grid <- seq(min(x$x), max(x$x), length.out = n)
  p <- stats::predict(x, grid, se.fit = TRUE, variance = "auto")
  z <- stats::qnorm(0.5 + level / 2)
  graphics::plot(x$x[, 1], x$y, pch = 16, cex = 0.3, col = "grey60", xlab = "x", ylab = "y", ...)
  graphics::polygon(c(grid, rev(grid)), c(p$fit - z * p$se.fit, rev(p$fit + z * p$se.fit)),
                    col = grDevices::adjustcolor("steelblue", 0.35), border = NA)
  graphics::lines(grid, p$fit - z * p$se.obs, lty = 2, col = "steelblue")
  graphics::lines(grid, p$fit + z * p$se.obs, lty = 2, col = "steelblue")
  graphics::lines(grid, p$fit, col = "steelblue", lwd = 2)
  invisible(data.frame(x = grid, fit = p$fit, se.fit = p$se.fit, se.obs = p$se.obs))
}
