# A LazyTensor as a linear operator for iterative eigensolvers.

#' A symbolic matrix as a linear operator
#'
#' `keops_linop(K)` returns a function `f(x, args = NULL)` computing
#' \eqn{(K + \alpha I) x}{(K + alpha I) x} for a vector (or matrix) x with one
#' row per j point, without storing K. It is what the function interface of
#' `RSpectra::eigs_sym()` and `RSpectra::eigs()` expects:
#' `eigs_sym(keops_linop(K), k, n = attr(f, "n"))`, which finds a few
#' eigenvalues of a kernel matrix too large to store (kernel PCA, spectral
#' clustering). The formula is checked once; each call is one reduction.
#'
#' @param K a LazyTensor of dimension 1 depending on i and j.
#' @param alpha a number added to the diagonal (only for square K).
#' @return A function of `x` (and an unused `args`, for RSpectra) returning
#'   a vector for a vector x, a matrix for a matrix x; its attribute `n` is
#'   the number of j points (the length of x), `shape` the numbers of i and j
#'   points.
#' @export
#' @examples
#' x <- matrix(rnorm(400), 200, 2)
#' K <- exp(-sqdist(Vi(x), Vj(x)) / 2)
#' f <- keops_linop(K)
#' v <- rnorm(200)
#' Kd <- exp(-as.matrix(dist(x))^2 / 2)
#' max(abs(f(v) - Kd %*% v))
#' if (requireNamespace("RSpectra", quietly = TRUE)) {
#'   RSpectra::eigs_sym(f, k = 3, n = 200)$values
#' }
keops_linop <- function(K, alpha = 0) {
  call <- sys.call()
  if (!is.LazyTensor(K) || isTRUE(K$is_complex) || K$dimres != 1) {
    keopsr_abort("input", "K must be a real LazyTensor of dimension 1", call)
  }
  if (!is.numeric(alpha) || length(alpha) != 1 || !is.finite(alpha)) {
    keopsr_abort("option", "alpha must be one finite number", call)
  }
  n_i <- index_size(K, "i")
  n_j <- index_size(K, "j")
  if (is.na(n_i) || is.na(n_j)) {
    keopsr_abort("input", "K must depend on both i and j", call)
  }
  if (alpha != 0 && n_i != n_j) {
    keopsr_abort("input", sprintf("alpha needs a square K; it has %d i and %d j points", n_i, n_j), call)
  }
  rhs_name <- "keopsr_linop_rhs"
  force(K)
  f <- function(x, args = NULL) {
    call <- sys.call()
    if (!is.numeric(x) || is.object(x)) {
      keopsr_abort("input", sprintf("x must be a numeric vector or matrix, got %s", describe_object(x)), call)
    }
    vector <- is.null(dim(x))
    xm <- if (vector) matrix(as.double(x), ncol = 1) else x
    if (nrow(xm) != n_j) {
      keopsr_abort("input", sprintf("x must have %d rows (one per j point)", n_j), call)
    }
    storage.mode(xm) <- "double"
    formula <- sprintf("Sum_Reduction((%s) * %s, 1)", K$formula, rhs_name)
    args <- c(K$args, sprintf("%s = Vj(%d)", rhs_name, ncol(xm)))
    res <- evaluate_formula(formula, args, c(unname(K$data), list(xm)), call = call)
    if (alpha != 0) res <- res + alpha * xm
    if (vector) as.vector(res) else res
  }
  attr(f, "n") <- n_j
  attr(f, "shape") <- c(n_i, n_j)
  f
}
