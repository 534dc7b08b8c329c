# Dense values of a LazyTensor: every entry of the symbolic matrix, for
# debugging and small problems (as.matrix()), and the values of a formula
# that depends on one index only (a cotangent given to grad()).

# The declarations of a LazyTensor's variables: name, category, dimension.
lazy_declarations <- function(x) {
  m <- regmatches(x$args, regexec("^\\s*(\\S+)\\s*=\\s*(Vi|Vj|Pm)\\(\\s*(\\d+)\\s*\\)\\s*$", x$args))
  if (any(lengths(m) != 4)) keopsr_abort("variable", "a LazyTensor's variable declarations are malformed (were its fields edited?)")
  data.frame(
    name = vapply(m, `[`, "", 2), cat = vapply(m, `[`, "", 3), dim = as.integer(vapply(m, `[`, "", 4)),
    stringsAsFactors = FALSE
  )
}

# Number of points of index "i" or "j" of a LazyTensor (NA if it has none).
index_size <- function(x, index) {
  decl <- lazy_declarations(x)
  hit <- which(decl$cat == c(i = "Vi", j = "Vj")[[index]])
  if (length(hit) == 0) NA_integer_ else NROW(x$data[[hit[1]]])
}

# The values of `x` at every point of its indices: a matrix with one row per
# i (index "i"), per j ("j"), per pair (i, j) in column-major order ("ij"),
# or a single row (a constant); one column per real component. Evaluated as
# a Sum reduction over a dummy index of one point, with each (i, j) pair
# made one row of the other index.
pointwise_values <- function(x, call) {
  decl <- lazy_declarations(x)
  m <- index_size(x, "i")
  n <- index_size(x, "j")
  data <- x$data
  pairs <- x$index == "ij"
  out_rows <- if (pairs) as.numeric(m) * n else if (x$index == "i") m else if (x$index == "j") n else 1
  width <- sum(decl$dim[decl$cat != "Pm"]) + x$dimres * (1 + isTRUE(x$is_complex))
  bytes <- 8 * out_rows * width
  limit <- keops_options()$max_dense_bytes
  if (bytes > limit) {
    keopsr_abort("input", sprintf(
      "the dense values of this LazyTensor need %s (limit %s): raise keops_options(max_dense_bytes = ) if that is intended",
      format(structure(bytes, class = "object_size"), units = "auto"),
      format(structure(limit, class = "object_size"), units = "auto")
    ), call)
  }
  cats <- decl$cat
  if (pairs) {
    # Pair (i, j) is row i + (j - 1) m of an i-index of m n points.
    for (k in which(cats == "Vi")) data[[k]] <- as.matrix(data[[k]])[rep(seq_len(m), times = n), , drop = FALSE]
    for (k in which(cats == "Vj")) data[[k]] <- as.matrix(data[[k]])[rep(seq_len(n), each = m), , drop = FALSE]
    cats[cats == "Vj"] <- "Vi"
  }
  # Reduce over the index the formula does not use, with a dummy of one point.
  over_j <- x$index != "j"
  dummy <- paste0("keopsr_dummy_", if (over_j) "j" else "i")
  args <- c(sprintf("%s = %s(%d)", decl$name, cats, decl$dim), sprintf("%s = %s(1)", dummy, if (over_j) "Vj" else "Vi"))
  formula <- sprintf("Sum_Reduction(%s, %d)", x$formula, as.integer(over_j))
  res <- evaluate_formula(formula, args, c(unname(data), list(matrix(0, 1, 1))), call = call)
  if (isTRUE(x$is_complex)) deinterleave_complex(res) else res
}

#' Dense values of a LazyTensor
#'
#' `as.matrix()` computes every entry of a symbolic matrix and stores it:
#' for a LazyTensor of dimension 1 depending on i and j, the M x N matrix
#' \eqn{F(x_i, y_j)}; for one depending on i only (or j only), the M x d
#' (N x d) matrix of its values; for a constant, a 1 x d matrix.
#' `as.array()` also takes vector-valued formulas of i and j, as an
#' M x N x d array. This is for debugging and small problems: the whole point
#' of keopsr is never to store these matrices. Results larger than the
#' `max_dense_bytes` option of [keops_options()] (1 GiB by default, counting
#' the expanded inputs) are a `keopsr_input_error`.
#'
#' @param x a LazyTensor.
#' @param ... unused.
#' @return A numeric (or complex) matrix or array.
#' @export
#' @examples
#' x <- matrix(rnorm(6), 3, 2); y <- matrix(rnorm(8), 4, 2)
#' K <- exp(-sqdist(Vi(x), Vj(y)))
#' as.matrix(K) # 3 x 4
#' all.equal(as.matrix(K), exp(-outer(rowSums(x^2), rowSums(y^2), "+") + 2 * x %*% t(y)))
as.matrix.LazyTensor <- function(x, ...) {
  call <- sys.call()
  if (x$index == "ij" && x$dimres != 1) {
    keopsr_abort("dimension", sprintf(
      "as.matrix() of a LazyTensor of i and j needs dimension 1, not %d: use as.array()", x$dimres
    ), call)
  }
  values <- pointwise_values(x, call)
  if (x$index == "ij") matrix(values, index_size(x, "i"), index_size(x, "j")) else values
}

#' @rdname as.matrix.LazyTensor
#' @export
as.array.LazyTensor <- function(x, ...) {
  call <- sys.call()
  values <- pointwise_values(x, call)
  if (x$index != "ij") return(values)
  array(values, c(index_size(x, "i"), index_size(x, "j"), x$dimres))
}
