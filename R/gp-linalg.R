# Linear algebra on kernel matrices K + alpha I without storing K: the
# diagonal and columns of a LazyTensor, the partial pivoted Cholesky
# preconditioner (applied by Woodbury), batched CG giving per right-hand
# side Lanczos tridiagonals (mBCG), and stochastic Lanczos quadrature for
# log-determinants. Each product by K is one keopsr reduction over all
# right-hand sides at once; the rest is O(n k) dense algebra in R (float64,
# whatever keops_options(precision = ) the reductions use).

#' Diagonal and columns of a square kernel LazyTensor
#'
#' `keops_diag(K)` is the diagonal \eqn{K_{ii}}{K[i, i]} of a LazyTensor of
#' dimension 1 whose i and j variables have the same number of points (the
#' formula evaluated with every j-variable replaced by the i-th row of its
#' data: n evaluations, no n x n matrix). `keops_columns(K, j)` is the
#' n x length(j) matrix of columns \eqn{K_{\cdot j}}{K[, j]}: the formula
#' with its j-variables restricted to the rows `j` (n length(j)
#' evaluations). Base R's `diag()` is not generic, hence the names; for a
#' small K, `diag(as.matrix(K))` gives the same numbers.
#'
#' @param K a real LazyTensor of dimension 1 depending on i and j.
#' @param j column indices (1-based).
#' @return `keops_diag()`: a numeric vector of length n; `keops_columns()`:
#'   a matrix with one row per i point and one column per element of `j`.
#' @export
#' @examples
#' x <- matrix(runif(20), 10, 2)
#' K <- exp(-sqdist(Vi(x), Vj(x)) / 0.5) * Vi(x[, 1]) * Vj(x[, 1])
#' all.equal(keops_diag(K), diag(as.matrix(K)))
#' all.equal(keops_columns(K, c(2, 5)), as.matrix(K)[, c(2, 5)])
keops_diag <- function(K) {
  call <- sys.call()
  check_square_kernel(K, call)
  decl <- lazy_declarations(K)
  cats <- ifelse(decl$cat == "Vj", "Vi", decl$cat)
  K$args <- sprintf("%s = %s(%d)", decl$name, cats, decl$dim)
  K$index <- "i"
  as.vector(pointwise_values(K, call))
}

#' @rdname keops_diag
#' @export
keops_columns <- function(K, j) {
  call <- sys.call()
  n <- check_square_kernel(K, call)
  if (!is.numeric(j) || length(j) == 0 || anyNA(j) || any(j != round(j)) || any(j < 1 | j > n)) {
    keopsr_abort("input", sprintf("j must be whole numbers between 1 and %d", n), call)
  }
  column <- kernel_column_fn(K, call)
  vapply(j, column, numeric(n))
}

# A function of p returning the column K[, p]: the reduction over j of F
# with every j-variable restricted to its row p (one point), the formula
# and declarations built once (the pivoted Cholesky asks for k columns).
kernel_column_fn <- function(K, call) {
  decl <- lazy_declarations(K)
  formula <- sprintf("Sum_Reduction(%s, 1)", K$formula)
  data <- unname(K$data)
  check_inputs(data, K$args, call)
  js <- which(decl$cat == "Vj")
  for (k in js) data[[k]] <- as.matrix(data[[k]])
  settings <- engine_settings()
  function(p) {
    d <- data
    for (k in js) d[[k]] <- d[[k]][p, , drop = FALSE]
    as.vector(check_result(keopsr_reduce(formula, K$args, d, settings), call))
  }
}

# Checks K is a real LazyTensor of dimension 1 with as many i as j points;
# returns that number.
check_square_kernel <- function(K, call) {
  if (!is.LazyTensor(K) || isTRUE(K$is_complex) || K$dimres != 1) {
    keopsr_abort("input", "K must be a real LazyTensor of dimension 1", call)
  }
  n_i <- index_size(K, "i")
  n_j <- index_size(K, "j")
  if (is.na(n_i) || is.na(n_j) || n_i != n_j) {
    keopsr_abort("input", "K must depend on i and j and be square (as many i as j points)", call)
  }
  n_i
}

#' Partial pivoted Cholesky factor of a kernel matrix
#'
#' `keops_pivchol(K, rank)` computes \eqn{L}{L} (n x k, k <= `rank`) with
#' \eqn{K \approx L L^\top}{K ~ L L'} by the greedy pivoted Cholesky
#' algorithm (Harbrecht, Peters and Schneider 2012; the preconditioner of
#' GPyTorch's BBMM): at each step the pivot is the largest entry of the
#' residual diagonal \eqn{d = \mathrm{diag}(K - L L^\top)}{d = diag(K - L L')},
#' the new column is \eqn{(K_{\cdot p} - L L_{p\cdot}^\top) / \sqrt{d_p}}{(K[, p] - L L[p, ]') / sqrt(d[p])},
#' with \eqn{K_{\cdot p}}{K[, p]} one reduction against the single pivot
#' point ([keops_columns()]). Cost: k reductions of n evaluations and
#' \eqn{O(n k^2)}{O(n k^2)} arithmetic; no n x n matrix. It stops early when
#' the residual trace falls below `tol` times the trace of K.
#'
#' `pivoting = "random"` draws the pivots instead with probabilities
#' proportional to the residual diagonal (randomly pivoted Cholesky, Chen,
#' Epperly, Tropp and Webber 2023), `block` candidates at a time (without
#' replacement, by exponential keys) with the rejection step of Epperly,
#' Tropp and Webber (2024), which corrects each candidate's probability for
#' the pivots kept before it in its block. Its dense work is matrix
#' products of n x k by k x `block`, where the greedy loop's products by
#' one vector are bound by memory bandwidth: as `keops_gp(pivoting =
#' "random")`'s preconditioner on 100,000 flights it takes 3.8-6.6 s where
#' the greedy loop takes 13.7-15.5 s, and at rank 800 9.4-9.9 s against
#' 49-53 s, with a residual trace 17-25% lower at ranks 400 and 800 (and
#' the tolerance met at rank 316 against 345;
#' `bench/RESULTS-gp-pivoting.md`). It uses R's random number generator:
#' set a seed to repeat it.
#'
#' Used through Woodbury's identity as the preconditioner
#' \eqn{P = L L^\top + \alpha I}{P = L L' + alpha I} of `solve(K, b, alpha,
#' precond = "pivchol")`, [keops_mbcg()] and [keops_logdet()]:
#' \deqn{P^{-1} v = \alpha^{-1}\left(v - L (\alpha I_k + L^\top L)^{-1} L^\top v\right),\quad
#'   \log\det P = (n - k) \log\alpha + \log\det(\alpha I_k + L^\top L).}{P^-1 v = (v - L (alpha I + L'L)^-1 L' v) / alpha,
#'   log det P = (n - k) log alpha + log det(alpha I + L'L).}
#'
#' @param K a square real LazyTensor of dimension 1, symmetric positive
#'   semi-definite.
#' @param rank the largest number of columns k.
#' @param tol relative residual trace at which to stop early.
#' @param pivoting `"greedy"` (the largest residual diagonal entry) or
#'   `"random"` (drawn in proportion to it, in blocks).
#' @param block the number of candidate pivots per block of `"random"`.
#' @return An object of class `keops_pivchol`: a list with `L` (n x k),
#'   `pivots` (1-based), `trace` (of K) and `residual_trace` (of K - L L').
#' @export
#' @examples
#' x <- matrix(runif(400), 200, 2)
#' K <- exp(-sqdist(Vi(x), Vj(x)) / 0.5)
#' pc <- keops_pivchol(K, rank = 20)
#' max(abs(tcrossprod(pc$L) - as.matrix(K)))
keops_pivchol <- function(K, rank = 100L, tol = 1e-10, pivoting = c("greedy", "random"), block = 64L) {
  call <- sys.call()
  n <- check_square_kernel(K, call)
  if (!is.numeric(rank) || length(rank) != 1 || is.na(rank) || rank < 0 || rank != round(rank)) {
    keopsr_abort("option", "rank must be a non-negative whole number", call)
  }
  pivoting <- tryCatch(match.arg(pivoting), error = function(e) {
    keopsr_abort("option", "pivoting must be \"greedy\" or \"random\"", call)
  })
  if (!is.numeric(block) || length(block) != 1 || is.na(block) || block < 1 || block != round(block)) {
    keopsr_abort("option", "block must be a positive whole number", call)
  }
  rank <- min(as.integer(rank), n)
  d <- keops_diag(K)
  if (any(!is.finite(d)) || any(d < -1e-12 * max(abs(d)))) {
    keopsr_abort("input", "K's diagonal must be finite and non-negative (K positive semi-definite)", call)
  }
  column <- kernel_column_fn(K, call)
  if (pivoting == "greedy") return(pivoted_cholesky(column, d, rank, tol))
  random_pivoted_cholesky(function(S) vapply(S, column, numeric(n)), d, rank, tol, as.integer(block))
}

# op(a) op(b) (t(a) with ta, t(b) with tb) on keopsr's threads by
# keopsr_dense_product() (matrixmultiply): the solvers' dense n x k by k x r
# steps, where R's reference BLAS does about 3 GFlop/s. `a_cols` takes the
# leading columns of a without copying them. Vectors are columns.
dense_product <- function(a, b, ta = FALSE, tb = FALSE, a_cols = NCOL(a)) {
  if (!is.matrix(a)) a <- as.matrix(a)
  if (!is.matrix(b)) b <- as.matrix(b)
  if (!is.double(a)) storage.mode(a) <- "double"
  if (!is.double(b)) storage.mode(b) <- "double"
  check_result(keopsr_dense_product(a, nrow(a), as.integer(a_cols), ta, b, nrow(b), ncol(b), tb,
                                    as.integer(keops_options()$threads)), sys.call())
}

# The greedy pivoted Cholesky loop of keops_pivchol() from the diagonal d
# and a function returning column p of the matrix (keops_gp() passes dense
# columns of its stationary kernel: no reduction per column).
pivoted_cholesky <- function(column, d, rank, tol) {
  n <- length(d)
  rank <- min(rank, n)
  total <- sum(d)
  L <- matrix(0, n, rank)
  pivots <- integer(0)
  m <- 0L
  while (m < rank) {
    p <- which.max(d)
    if (d[p] <= 0 || sum(d) <= tol * total) break
    m <- m + 1L
    col <- column(p)
    if (m > 1) col <- col - as.vector(dense_product(L, L[p, seq_len(m - 1)], a_cols = m - 1L))
    l <- col / sqrt(d[p])
    L[, m] <- l
    d <- pmax(d - l^2, 0)
    d[p] <- 0
    pivots <- c(pivots, p)
  }
  new_pivchol(L, m, pivots, total, d)
}

# The first m columns of L, the pivots, the trace of K and the residual
# diagonal d as a keops_pivchol object.
new_pivchol <- function(L, m, pivots, total, d) {
  structure(
    list(L = L[, seq_len(m), drop = FALSE], pivots = pivots, trace = total, residual_trace = sum(d)),
    class = "keops_pivchol"
  )
}

# Randomly pivoted Cholesky in blocks (Chen, Epperly, Tropp and Webber 2023;
# the blocked rejection form of Epperly, Tropp and Webber 2024): a block
# draws `block` candidate pivots in proportion to the residual diagonal d
# and keeps each with probability (its residual given the pivots kept
# before it) / d, which corrects the draw for the pivots kept within the
# block (blocks of 1: the sequential algorithm's distribution). The kept
# columns then come from one n x m by m x b product and a b x b triangular
# factor: compute-bound work, where the greedy loop's
# n x m products by one vector are bound by memory bandwidth (at n = 1e5,
# rank 400, 7.6 of its 10.6 s). `columns(S)` returns K[, S]; the random
# numbers come from R's generator.
random_pivoted_cholesky <- function(columns, d, rank, tol, block = 64L) {
  n <- length(d)
  rank <- min(rank, n)
  total <- sum(d)
  L <- matrix(0, n, rank)
  pivots <- integer(0)
  m <- 0L
  empty <- 0L
  while (m < rank && empty < 3L) {
    trace <- sum(d)
    if (!(trace > tol * total)) break
    b <- min(block, rank - m, sum(d > 0))
    # Candidates by exponential keys: the b smallest E_i / d_i are a draw
    # without replacement in proportion to d (Efraimidis and Spirakis
    # 2006), and with the same E (a seed) they change only where the keys'
    # order does, so that nearby hyperparameters keep nearby pivots (the
    # inverse of the cumulative d would move every draw at any change).
    S <- order(stats::rexp(n) / d)[seq_len(b)]
    G <- columns(S)
    if (m > 0) G <- G - dense_product(L, L[S, seq_len(m), drop = FALSE], tb = TRUE, a_cols = m)
    # Rejection on the candidates' residual matrix, eliminated in place; the
    # eliminated columns h give the triangular factor C of the kept ones.
    H <- G[S, , drop = FALSE]
    H <- (H + t(H)) / 2
    u <- stats::runif(b)
    keep <- logical(b)
    C <- matrix(0, b, b)
    for (i in seq_len(b)) {
      if (H[i, i] > 0 && H[i, i] > u[i] * d[S[i]]) {
        keep[i] <- TRUE
        h <- H[, i] / sqrt(H[i, i])
        C[, i] <- h
        H <- H - tcrossprod(h)
      }
    }
    kept <- which(keep)
    if (!length(kept)) {
      # Every candidate rejected: d is mostly rounding noise when that
      # happens three blocks in a row.
      empty <- empty + 1L
      next
    }
    empty <- 0L
    # The eliminated rows are zero up to rounding: exactly triangular, as
    # are the new columns at the pivots (their residuals are zero).
    C <- C[kept, kept, drop = FALSE]
    C[upper.tri(C)] <- 0
    Lnew <- dense_product(G[, kept, drop = FALSE], forwardsolve(C, diag(length(kept))), tb = TRUE)
    Lnew[S[kept], ] <- C
    Lnew[pivots, ] <- 0
    # Stop within the block where the residual trace meets the tolerance.
    left <- trace - cumsum(colSums(Lnew^2))
    last <- match(TRUE, left <= tol * total, nomatch = length(kept))
    Lnew <- Lnew[, seq_len(last), drop = FALSE]
    kept <- kept[seq_len(last)]
    L[, m + seq_len(last)] <- Lnew
    m <- m + last
    d <- pmax(d - rowSums(Lnew^2), 0)
    d[S[kept]] <- 0
    pivots <- c(pivots, S[kept])
  }
  new_pivchol(L, m, pivots, total, d)
}

#' @export
print.keops_pivchol <- function(x, ...) {
  cat(sprintf(
    "Partial pivoted Cholesky factor: n = %d, rank %d, residual trace %.3g (%.3g of the trace)\n",
    nrow(x$L), ncol(x$L), x$residual_trace, x$residual_trace / x$trace
  ))
  invisible(x)
}

# The preconditioner P = L L' + alpha I from the eigendecomposition of L'L
# (L = U S V', U = L V S^-1): P^-1, P^-1/2 (for LOVE), log det P and
# samples z ~ N(0, P) from standard normals (E1: k x t, E2: n x t).
woodbury <- function(L, alpha) {
  n <- nrow(L)
  if (!(alpha > 0)) stop("internal: woodbury needs alpha > 0")
  k <- ncol(L)
  if (k == 0) {
    return(list(
      n = n, k = 0L, alpha = alpha, solve = function(V) V / alpha, inv_sqrt = function(V) V / sqrt(alpha),
      logdet = n * log(alpha), sample = function(E1, E2) sqrt(alpha) * E2, L = L
    ))
  }
  LtL <- dense_product(L, L, ta = TRUE)
  e <- eigen(LtL, symmetric = TRUE)
  keep <- e$values > 1e-12 * max(e$values)
  s2 <- e$values[keep]
  U <- dense_product(L, sweep(e$vectors[, keep, drop = FALSE], 2, sqrt(s2), "/"))
  low_rank <- function(V, f) {
    UtV <- dense_product(U, V, ta = TRUE)
    f(alpha) * V + dense_product(U, (f(s2 + alpha) - f(alpha)) * UtV)
  }
  list(
    n = n, k = length(s2), alpha = alpha, L = L, U = U, s2 = s2, LtL = LtL,
    solve = function(V) low_rank(V, function(v) 1 / v),
    inv_sqrt = function(V) low_rank(V, function(v) 1 / sqrt(v)),
    logdet = sum(log(s2 + alpha)) + (n - length(s2)) * log(alpha),
    sample = function(E1, E2) dense_product(L, E1) + sqrt(alpha) * E2
  )
}

# Batched preconditioned CG (mBCG, Gardner et al. 2018) on A = K + alpha I:
# `matvec(V)` returns A V for an n x r block (one reduction), `minv(R)` the
# preconditioned residuals P^-1 R. Every column runs its own recurrence, all
# share one product per iteration; a column stops at relative residual
# ||b - A x|| / ||b|| <= tol. The step sizes gamma and the ratios beta of
# each column give its Lanczos tridiagonal of P^-1/2 A P^-1/2 (started at
# P^-1/2 b): T[j, j] = 1/gamma_j + beta_{j-1}/gamma_{j-1},
# T[j, j+1] = sqrt(beta_j)/gamma_j. With X0, the solve is warm-started
# (one more product; the tridiagonals then belong to the initial residual).
mbcg <- function(matvec, B, minv, tol, max_iter, X0 = NULL, on_iteration = NULL) {
  n <- nrow(B)
  r <- ncol(B)
  X <- if (is.null(X0)) matrix(0, n, r) else X0
  R <- B
  # Only the warm-started columns need a product (0 stays 0); a column is
  # cold only when all its entries are exact zeros (NaN counts as warm).
  warm <- if (is.null(X0)) integer(0) else which(colSums(is.na(X0) | X0 != 0) > 0)
  if (length(warm)) R[, warm] <- B[, warm] - matvec(X0[, warm, drop = FALSE])
  bnorm <- sqrt(colSums(B^2))
  Z <- minv(R)
  P <- Z
  rz <- colSums(R * Z)
  rz0 <- rz
  gammas <- betas <- matrix(0, max(max_iter, 1), r)
  steps <- integer(r)
  active <- rep(TRUE, r)
  history <- vector("list", max_iter + 1)
  iter <- 0L
  repeat {
    rel <- ifelse(bnorm > 0, sqrt(colSums(R^2)) / pmax(bnorm, .Machine$double.xmin), 0)
    history[[iter + 1L]] <- rel
    active <- active & rel > tol
    if (!any(active) || iter >= max_iter) break
    P[, !active] <- 0
    Q <- matvec(P)
    iter <- iter + 1L
    pq <- colSums(P * Q)
    bad <- active & !(pq > 0)
    if (any(bad)) {
      keopsr_abort("input", sprintf(
        "K + alpha I is not positive definite (or holds NaN): p'(K + alpha I)p = %g at iteration %d for right-hand side %d; K must be symmetric positive semi-definite, try alpha > 0",
        pq[bad][1], iter, which(bad)[1]
      ), call = NULL)
    }
    g <- ifelse(active, rz / pq, 0)
    X <- X + P * rep(g, each = n)
    R <- R - Q * rep(g, each = n)
    Z <- minv(R)
    rz_new <- colSums(R * Z)
    beta <- ifelse(active & rz > 0, rz_new / rz, 0)
    gammas[iter, active] <- g[active]
    betas[iter, active] <- beta[active]
    steps[active] <- iter
    rz <- ifelse(active, rz_new, rz)
    P <- Z + P * rep(beta, each = n)
    if (!is.null(on_iteration)) on_iteration(iter, rel)
  }
  residuals <- do.call(rbind, history[seq_len(iter + 1L)])
  list(
    x = X, iterations = iter, residuals = residuals, converged = !any(active),
    gammas = gammas[seq_len(max(iter, 1)), , drop = FALSE], betas = betas[seq_len(max(iter, 1)), , drop = FALSE],
    steps = steps, rz0 = rz0
  )
}

# Lanczos tridiagonal of column c of an mbcg() result.
mbcg_tridiag <- function(res, c) {
  m <- res$steps[c]
  if (m == 0) return(matrix(0, 0, 0))
  g <- res$gammas[seq_len(m), c]
  b <- res$betas[seq_len(m), c]
  d <- 1 / g
  if (m > 1) d[-1] <- d[-1] + b[-m] / g[-m]
  T <- diag(d, m)
  if (m > 1) {
    off <- sqrt(b[-m]) / g[-m]
    T[cbind(1:(m - 1), 2:m)] <- off
    T[cbind(2:m, 1:(m - 1))] <- off
  }
  T
}

# e1' f(T) e1 by the eigendecomposition of T (Gauss quadrature).
quadrature <- function(T, f) {
  if (length(T) == 0) return(0)
  e <- eigen(T, symmetric = TRUE)
  sum(e$vectors[1, ]^2 * f(pmax(e$values, .Machine$double.xmin)))
}

# The matrix-vector product by K + alpha I (a reduction per call).
kernel_matvec <- function(K, alpha) {
  f <- keops_linop(K)
  function(V) f(V) + alpha * V
}

# The preconditioner for K + alpha I: "none", "jacobi" or "pivchol" (with
# its Woodbury object).
make_preconditioner <- function(K, alpha, precond, rank, call) {
  n <- check_square_kernel(K, call)
  if (precond == "none") return(list(type = "none", solve = identity))
  if (precond == "jacobi") {
    m <- keops_diag(K) + alpha
    if (any(!(m > 0))) keopsr_abort("input", "the Jacobi preconditioner needs K[i, i] + alpha > 0", call)
    return(list(type = "jacobi", solve = function(R) R / m))
  }
  if (!(alpha > 0)) keopsr_abort("option", "precond = \"pivchol\" needs alpha > 0", call)
  pc <- keops_pivchol(K, rank)
  w <- woodbury(pc$L, alpha)
  c(list(type = "pivchol", pivchol = pc), w)
}

# The automatic preconditioner: a partial pivoted Cholesky factor when n is
# at least `pivchol_min_n` (1000) and alpha is at least 1e-8 times K's mean
# diagonal (below that Woodbury's identity loses accuracy); otherwise none.
auto_precond <- function(K, alpha, n) {
  if (n < 1000 || !(alpha > 0)) return("none")
  if (alpha < 1e-8 * mean(abs(keops_diag(K)))) return("none")
  "pivchol"
}

#' Batched preconditioned conjugate gradients with Lanczos tridiagonals
#'
#' `keops_mbcg(K, B, alpha)` solves \eqn{(K + \alpha I) X = B}{(K + alpha I) X = B}
#' for the r columns of B at once by preconditioned conjugate gradients
#' (mBCG, Gardner et al. 2018, "GPyTorch: blackbox matrix-matrix Gaussian
#' process inference"): each iteration is one keopsr reduction
#' \eqn{\sum_j K_{ij} P_j}{sum_j K_ij P_j} with all r directions, and each
#' column's step sizes \eqn{\gamma}{gamma} and ratios \eqn{\beta}{beta} give
#' the tridiagonal matrix \eqn{T}{T} of the Lanczos process on
#' \eqn{P^{-1/2} (K + \alpha I) P^{-1/2}}{P^-1/2 (K + alpha I) P^-1/2}
#' started at \eqn{P^{-1/2} b}{P^-1/2 b}:
#' \deqn{T_{jj} = 1/\gamma_j + \beta_{j-1}/\gamma_{j-1},\quad T_{j,j+1} = \sqrt{\beta_j}/\gamma_j.}{T[j, j] = 1/gamma_j + beta_(j-1)/gamma_(j-1), T[j, j+1] = sqrt(beta_j)/gamma_j.}
#' These give quadratic forms \eqn{b^\top f(K + \alpha I) b}{b' f(K + alpha I) b}
#' by Gauss quadrature; [keops_logdet()] uses them with f = log. The
#' arithmetic outside the reductions (and so the tridiagonals) is float64
#' whatever `keops_options(precision = )` is.
#'
#' @param K a square real LazyTensor of dimension 1, symmetric positive
#'   semi-definite.
#' @param B an n x r matrix (or a vector) of right-hand sides.
#' @param alpha the ridge added to the diagonal.
#' @param precond `"auto"`, `"none"`, `"jacobi"` or `"pivchol"`; see
#'   [solve.LazyTensor()].
#' @param rank the rank of the `"pivchol"` preconditioner.
#' @param tol relative residual at which a column stops.
#' @param max_iter most iterations.
#' @param x0 an optional starting guess (n x r), for warm starts.
#' @return A list: `x` (the solutions, n x r), `iterations`, `residuals`
#'   (relative residuals, one row per iteration), `converged`, `tridiag` (a
#'   list of r tridiagonal matrices), `rz0` (\eqn{b^\top P^{-1} b}{b' P^-1 b} per column,
#'   the weight of its quadrature) and `precond` (the preconditioner used).
#' @export
#' @examples
#' x <- matrix(runif(600), 300, 2)
#' K <- exp(-sqdist(Vi(x), Vj(x)) / 0.2)
#' b <- matrix(rnorm(600), 300, 2)
#' res <- keops_mbcg(K, b, alpha = 0.1, precond = "pivchol", rank = 30, tol = 1e-8)
#' res$iterations
#' # b' (K + 0.1 I)^-1 b from the tridiagonal (T^-1)[1, 1] times b' P^-1 b:
#' c(res$rz0[1] * solve(res$tridiag[[1]])[1, 1], sum(b[, 1] * res$x[, 1]))
keops_mbcg <- function(K, B, alpha, precond = c("auto", "none", "jacobi", "pivchol"), rank = 100L,
                       tol = 1e-6, max_iter = 1000L, x0 = NULL) {
  call <- sys.call()
  n <- check_square_kernel(K, call)
  rhs <- rhs_matrix(B, call)
  check_solver_numbers(alpha, tol, max_iter, call)
  if (nrow(rhs$b) != n) keopsr_abort("input", sprintf("B must have %d rows (one per point)", n), call)
  if (!is.null(x0)) {
    if (!is.numeric(x0) || length(x0) != length(rhs$b) || NROW(x0) != n || any(!is.finite(x0))) {
      keopsr_abort("input", sprintf("x0 must be a finite numeric %d x %d matrix (one row per point, one column per column of B)",
                                    n, ncol(rhs$b)), call)
    }
    x0 <- matrix(as.double(x0), n, ncol(rhs$b))
  }
  precond <- match_precond(precond, call)
  if (precond == "auto") precond <- auto_precond(K, alpha, n)
  pre <- make_preconditioner(K, alpha, precond, rank, call)
  res <- mbcg(kernel_matvec(K, alpha), rhs$b, pre$solve, tol, as.integer(max_iter), X0 = x0)
  warn_convergence(res, tol, call)
  list(
    x = res$x, iterations = res$iterations, residuals = res$residuals, converged = res$converged,
    tridiag = lapply(seq_len(ncol(rhs$b)), function(c) mbcg_tridiag(res, c)), rz0 = res$rz0, precond = pre
  )
}

match_precond <- function(precond, call) {
  tryCatch(match.arg(precond, c("auto", "none", "jacobi", "pivchol")), error = function(e) {
    keopsr_abort("option", "precond must be \"auto\", \"none\", \"jacobi\" or \"pivchol\"", call)
  })
}

check_solver_numbers <- function(alpha, tol, max_iter, call) {
  number <- function(v, what, ok) {
    if (!is.numeric(v) || length(v) != 1 || is.na(v) || !ok(v)) keopsr_abort("option", what, call)
    v
  }
  number(alpha, "alpha must be one finite number", is.finite)
  number(tol, "tol must be one non-negative number", function(v) v >= 0)
  number(max_iter, "max_iter must be a non-negative whole number", function(v) {
    v >= 0 && v == round(v) && v <= .Machine$integer.max
  })
}

warn_convergence <- function(res, tol, call) {
  if (!res$converged) {
    worst <- max(res$residuals[nrow(res$residuals), ])
    warning(structure(
      class = c("keopsr_convergence_warning", "warning", "condition"),
      list(message = sprintf(
        "conjugate gradient stopped after max_iter = %d iterations with relative residual %.3g > tol = %.3g",
        res$iterations, worst, tol
      ), call = call)
    ))
  }
}

# Runs `expr` with R's random numbers seeded by `seed` (NULL: the current
# stream), leaving the caller's stream as it was.
with_seed <- function(seed, expr) {
  if (is.null(seed)) return(expr)
  old <- if (exists(".Random.seed", globalenv(), inherits = FALSE)) get(".Random.seed", globalenv()) else NULL
  on.exit(if (is.null(old)) rm(".Random.seed", envir = globalenv()) else assign(".Random.seed", old, globalenv()))
  set.seed(seed)
  expr
}

#' Log-determinant of a kernel matrix by stochastic Lanczos quadrature
#'
#' `keops_logdet(K, alpha)` estimates \eqn{\log\det(K + \alpha I)}{log det(K + alpha I)}
#' without storing K, as GPyTorch's BBMM does: with the pivoted-Cholesky
#' preconditioner \eqn{P = L L^\top + \alpha I}{P = L L' + alpha I} ([keops_pivchol()]),
#' \deqn{\log\det(K + \alpha I) = \log\det P + \log\det(P^{-1/2} (K + \alpha I) P^{-1/2}),}{log det(K + alpha I) = log det P + log det(P^-1/2 (K + alpha I) P^-1/2),}
#' the first term exact (Woodbury), the second by stochastic Lanczos
#' quadrature (Ubaru, Chen and Saad 2017) with `probes` probe vectors
#' \eqn{z \sim N(0, P)}{z ~ N(0, P)}: for each, [keops_mbcg()] gives the
#' tridiagonal T of the Lanczos process started at \eqn{P^{-1/2} z}{P^-1/2 z}
#' and the estimate is \eqn{z^\top P^{-1} z \; e_1^\top \log(T) e_1}{z'P^-1 z e1' log(T) e1}.
#' All probes share each CG iteration (one reduction). The standard error is
#' the standard deviation of the per-probe estimates over
#' \eqn{\sqrt{\mathrm{probes}}}{sqrt(probes)}; the better the preconditioner
#' (larger `rank`), the smaller it is. With `rank = 0` this is plain SLQ
#' with Gaussian probes.
#'
#' @inheritParams keops_mbcg
#' @param alpha the ridge (noise variance), > 0.
#' @param probes number of probe vectors.
#' @param seed seed of the probes (`NULL`: R's current random stream);
#'   the caller's random stream is left as it was.
#' @param tol,max_iter conjugate-gradient settings of the probe solves.
#' @return The estimate, with attributes `se` (its standard error),
#'   `logdet_precond` (\eqn{\log\det P}{log det P}), `probes` and
#'   `iterations`.
#' @export
#' @examples
#' x <- matrix(runif(1000), 500, 2)
#' K <- exp(-sqdist(Vi(x), Vj(x)) / 0.1)
#' est <- keops_logdet(K, alpha = 0.05, probes = 20, rank = 50, seed = 1)
#' c(est, se = attr(est, "se"))
#' determinant(as.matrix(K) + 0.05 * diag(500))$modulus
keops_logdet <- function(K, alpha, probes = 10L, rank = 100L, seed = NULL, tol = 1e-6, max_iter = 1000L) {
  call <- sys.call()
  n <- check_square_kernel(K, call)
  check_solver_numbers(alpha, tol, max_iter, call)
  if (!(alpha > 0)) keopsr_abort("option", "alpha must be > 0", call)
  if (!is.numeric(probes) || length(probes) != 1 || is.na(probes) || probes < 2 || probes != round(probes)) {
    keopsr_abort("option", "probes must be a whole number >= 2", call)
  }
  pc <- keops_pivchol(K, rank)
  pre <- woodbury(pc$L, alpha)
  Z <- with_seed(seed, pre$sample(matrix(stats::rnorm(ncol(pc$L) * probes), ncol(pc$L), probes),
                                  matrix(stats::rnorm(n * probes), n, probes)))
  res <- mbcg(kernel_matvec(K, alpha), Z, pre$solve, tol, as.integer(max_iter))
  warn_convergence(res, tol, call)
  est <- slq_logdet(res, seq_len(probes), pre$logdet)
  structure(est$value, se = est$se, logdet_precond = pre$logdet, probes = as.integer(probes),
            iterations = res$iterations)
}

# SLQ estimate from the mbcg() columns `cols` (probes z ~ N(0, P)).
slq_logdet <- function(res, cols, logdet_p) {
  per <- vapply(cols, function(c) res$rz0[c] * quadrature(mbcg_tridiag(res, c), log), 0)
  list(value = logdet_p + mean(per), se = stats::sd(per) / sqrt(length(per)), per_probe = per)
}
