# Conjugate-gradient solver: (K + alpha I) a = b with K a symbolic matrix.

#' Solve a kernel linear system by conjugate gradients
#'
#' `solve(K, b, alpha)` solves \deqn{(K + \alpha I)\, a = b}{(K + alpha I) a = b}
#' for a symmetric positive semi-definite LazyTensor `K` of dimension 1 with
#' as many i as j points (typically `exp(-sqdist(Vi(x), Vj(x)) / (2 * s^2))`),
#' without storing K: each conjugate-gradient iteration is one reduction
#' \eqn{\sum_j K_{ij} p_j}{sum_j K_ij p_j}, run in Rust, with the data
#' prepared once. `keops_solve()` does the same for a [keops_kernel()]
#' operator whose formula is a Sum reduction linear in one argument, the
#' unknown (as pykeops' `KernelSolve`).
#'
#' The iterations stop when every column of b reaches
#' \eqn{\|b - (K + \alpha I) a\| \le tol \, \|b\|}{||b - (K + alpha I) a|| <= tol ||b||}
#' (a relative residual; KeOps stops on an absolute one), or after `max_iter`
#' iterations with a warning of class `keopsr_convergence_warning`. Several
#' right-hand sides (the columns of b) are solved at once: each iteration
#' costs one reduction for all of them. `precond = "jacobi"` divides
#' residuals by the diagonal \eqn{K_{ii} + \alpha}{K_ii + alpha}, computed
#' from the formula at i = j (n evaluations, no n x n matrix); it helps when
#' the diagonal varies a lot (weighted kernels). `precond = "pivchol"` uses
#' \eqn{P = L L^\top + \alpha I}{P = L L' + alpha I} with L a partial pivoted
#' Cholesky factor of K of rank `rank` ([keops_pivchol()]: `rank` kernel
#' columns, no n x n matrix), applied by Woodbury's identity in
#' \eqn{O(n \cdot rank)}{O(n rank)} per iteration; it cuts the iterations of
#' smooth kernels with a moderate ridge by one to two orders of magnitude
#' (for n = 3000 points on a line, a Gaussian kernel and alpha = 0.1: 281
#' Jacobi iterations, 3 to 10 with rank 100; see [keops_mbcg()], which runs
#' it). `precond = "auto"` (the default) is `"pivchol"` when n >= 1000 and
#' alpha is at least 1e-8 times the mean of K's diagonal (below that,
#' Woodbury's identity loses accuracy), `"none"` otherwise. A matrix that is not
#' positive definite is a `keopsr_input_error`. Interrupts (Ctrl-C) are
#' honoured within each iteration.
#'
#' @param a a LazyTensor K of dimension 1 depending on i and j, square.
#' @param b the right-hand side: a vector of length n, an n x r matrix, or
#'   (as in rkeops/pykeops) a LazyTensor that is one i- or j-variable.
#' @param alpha the ridge \eqn{\alpha}{alpha} added to the diagonal (default
#'   `1e-10`, as KeOps).
#' @param tol relative residual at which to stop.
#' @param max_iter most iterations (reductions).
#' @param precond `"auto"`, `"none"`, `"jacobi"` or `"pivchol"`.
#' @param rank the rank of the `"pivchol"` preconditioner.
#' @param ... unused.
#' @return The solution a: a vector when b is a vector, else an n x r
#'   matrix, with attributes `iterations` (number of reductions),
#'   `residuals` (relative residual of each column after 0, 1, ...,
#'   `iterations` iterations: a matrix with one row per iteration) and
#'   `converged` (logical).
#' @export
#' @examples
#' x <- matrix(runif(200), 100, 2)
#' K <- exp(-sqdist(Vi(x), Vj(x)) / 0.1)
#' b <- sin(6 * x[, 1])
#' a <- solve(K, b, alpha = 0.1, tol = 1e-8)
#' attr(a, "iterations")
#' # the same with a dense matrix
#' Kd <- exp(-as.matrix(dist(x))^2 / 0.1)
#' max(abs(a - solve(Kd + 0.1 * diag(100), b)))
solve.LazyTensor <- function(a, b, alpha = 1e-10, tol = 1e-6, max_iter = 1000L,
                             precond = c("auto", "none", "jacobi", "pivchol"), rank = 100L, ...) {
  call <- sys.call()
  K <- a
  if (isTRUE(K$is_complex)) keopsr_abort("input", "K must be a real LazyTensor, not a complex one", call)
  if (K$dimres != 1) {
    keopsr_abort("dimension", sprintf("K must have dimension 1, got dimension %d", K$dimres), call)
  }
  rhs <- rhs_matrix(b, call)
  B <- Vj(rhs$b)
  vars <- merge_variables(list(K, B))
  formula <- sprintf("Sum_Reduction((%s) * %s, 1)", K$formula, B$formula)
  var <- match(B$formula, variable_names(vars$args)) - 1L
  run_solver(formula, vars$args, unname(vars$data), var, rhs, alpha, tol, max_iter, precond, call,
             kernel = function() K, rank = rank)
}

#' @rdname solve.LazyTensor
#' @param op an operator from [keops_kernel()] whose formula is
#'   `Sum_Reduction(F, axis)`, with F linear in the argument `var` (for
#'   instance `"Sum_Reduction(Exp(-SqDist(x, y) / 2) * a, 1)"`).
#' @param input the operator's other inputs: a list named after its
#'   arguments (the unknown's entry may be left out), or positional with all
#'   of them (the unknown's entry is then ignored).
#' @param var the name of the unknown argument (indexed by the reduced index).
#' @export
keops_solve <- function(op, input, b, var, alpha = 1e-10, tol = 1e-6, max_iter = 1000L,
                        precond = c("auto", "none", "jacobi", "pivchol"), rank = 100L) {
  call <- sys.call()
  if (!is.function(op) || !is.list(info <- tryCatch(op(), error = function(e) NULL)) || is.null(info$formula)) {
    keopsr_abort("input", "op must be an operator made by keops_kernel()", call)
  }
  names <- info$args_info$name
  if (!is.character(var) || length(var) != 1 || !var %in% names) {
    keopsr_abort("input", sprintf(
      "var must name the unknown, one of the arguments %s", paste(sQuote(names, FALSE), collapse = ", ")
    ), call)
  }
  rhs <- rhs_matrix(b, call)
  if (!is.list(input) || is.data.frame(input)) {
    keopsr_abort("input", "input must be a list of matrices and vectors, one per argument", call)
  }
  if (!is.null(names(input)) && all(names(input) != "")) {
    input[[var]] <- rhs$b
    missing_args <- setdiff(names, names(input))
    if (length(missing_args)) {
      keopsr_abort("input", sprintf("no input named %s", paste(sQuote(missing_args, FALSE), collapse = ", ")), call)
    }
    input <- input[names]
  } else {
    if (length(input) != length(names)) {
      keopsr_abort("input", sprintf("input must have %d elements, one per argument", length(names)), call)
    }
    input[[match(var, names)]] <- rhs$b
  }
  pos <- match(var, names)
  run_solver(info$formula, info$args, unname(input), pos - 1L, rhs, alpha, tol, max_iter, precond, call,
             kernel = function() operator_kernel(info, input, pos, call), rank = rank)
}

# The kernel K of an operator Sum_Reduction(F, axis) linear in its argument
# at position `pos` (dimension 1), as a LazyTensor whose j index is the
# reduced one: F with the unknown bound to ones (for the diagonal and the
# columns the pivoted Cholesky preconditioner reads).
operator_kernel <- function(info, input, pos, call) {
  m <- regmatches(info$formula, regexec("^\\s*Sum_Reduction\\((.*),\\s*([01])\\s*\\)\\s*$", info$formula))[[1]]
  if (length(m) != 3 || info$args_info$dim[pos] != 1) {
    keopsr_abort("option", "precond = \"pivchol\" needs an operator Sum_Reduction(F, axis) with an unknown of dimension 1", call)
  }
  cats <- info$args_info$category
  if (m[3] == "0") cats <- c(Vi = "Vj", Vj = "Vi", Pm = "Pm")[cats]
  input[[pos]] <- matrix(1, NROW(input[[pos]]), 1)
  data <- stats::setNames(input, info$args_info$name)
  args <- sprintf("%s = %s(%d)", info$args_info$name, cats, info$args_info$dim)
  new_lazy_tensor(m[2], args, data, call)
}

# b as an n x r double matrix, and whether to return a vector.
rhs_matrix <- function(b, call) {
  if (is.LazyTensor(b)) {
    if (length(b$data) != 1 || b$formula != names(b$data) || !b$index %in% c("i", "j")) {
      keopsr_abort("input", "b must be a matrix, a vector, or a LazyTensor made of one i- or j-variable", call)
    }
    return(list(b = as.matrix(b$data[[1]]), vector = FALSE))
  }
  if (!is.numeric(b) || is.object(b) || (!is.null(dim(b)) && length(dim(b)) != 2)) {
    keopsr_abort("input", "b must be a numeric vector or matrix (one row per point)", call)
  }
  vector <- is.null(dim(b))
  b <- if (vector) matrix(as.double(b), ncol = 1) else b
  storage.mode(b) <- "double"
  if (ncol(b) == 0) keopsr_abort("input", "b must have at least one column", call)
  list(b = b, vector = vector)
}

variable_names <- function(args) trimws(sub("=.*$", "", args))

# "none" and "jacobi" run the CG of the Rust core (src/rust/core/src/solve.rs);
# "pivchol" runs mbcg() (R/gp-linalg.R), whose Woodbury preconditioner is
# dense O(n k) algebra, one reduction per iteration either way.
run_solver <- function(formula, args, inputs, var, rhs, alpha, tol, max_iter, precond, call,
                       kernel = NULL, rank = 100L) {
  check_inputs(inputs, args, call)
  precond <- match_precond(precond, call)
  check_solver_numbers(alpha, tol, max_iter, call)
  if (precond == "auto") {
    # Operators that are not a scalar kernel times the unknown get "none".
    K <- if (nrow(rhs$b) >= 1000) tryCatch(kernel(), keopsr_error = function(e) NULL)
    precond <- if (is.null(K)) "none" else auto_precond(K, alpha, nrow(rhs$b))
  } else if (precond == "pivchol") {
    K <- kernel()
  }
  if (precond == "pivchol") {
    check_square_kernel(K, call)
    if (nrow(rhs$b) != index_size(K, "i")) {
      keopsr_abort("input", sprintf("b must have %d rows (one per point)", index_size(K, "i")), call)
    }
    pre <- make_preconditioner(K, alpha, "pivchol", rank, call)
    # Its products are reductions, split across future workers when
    # keops_options(distributed = "future").
    res <- mbcg(kernel_matvec(K, alpha), rhs$b, pre$solve, tol, as.integer(max_iter))
    res$x <- unname(res$x)
    storage.mode(res$residuals) <- "double"
    dimnames(res$residuals) <- NULL
  } else {
    res <- if (distributed_active()) {
      distributed_solve(
        formula, args, inputs, var, rhs$b, as.double(alpha), as.double(tol), as.integer(max_iter), precond == "jacobi", call
      )
    }
    if (is.null(res)) {
      res <- keopsr_solve(
        formula, args, inputs, as.integer(var), rhs$b, as.double(alpha), as.double(tol), as.integer(max_iter),
        precond == "jacobi", engine_settings()
      )
    }
    res <- check_result(res, call)
  }
  warn_convergence(res, tol, call)
  x <- if (rhs$vector) as.vector(res$x) else res$x
  attr(x, "iterations") <- res$iterations
  attr(x, "residuals") <- res$residuals
  attr(x, "converged") <- res$converged
  x
}
