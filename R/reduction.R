# Reductions of LazyTensors: each builds `<Name>_Reduction(F, [K,] axis[, G])`
# and evaluates it.

# 0 for a reduction over i, 1 over j (KeOps' axis codes).
axis_code <- function(index, call, na_ok = FALSE) {
  if (!is.character(index) || length(index) != 1 || !index %in% c("i", "j")) {
    keopsr_abort("reduction", sprintf(
      "`index` input argument should be a character, either 'i' or 'j'%s. It is the index reduced over.",
      if (na_ok) ", or NA" else ""
    ), call)
  }
  if (index == "i") "0" else "1"
}

check_K <- function(K, call) {
  if (!is.numeric(K) || length(K) != 1 || is.na(K) || K < 1 || K != round(K) || K > .Machine$integer.max) {
    keopsr_abort("reduction", "`K` input argument should be an integer. It must be a positive whole number.", call)
  }
  format(as.integer(K))
}

reduce_lazy <- function(name, x, index, K = NULL, weight = NULL, ranges = NULL, call = sys.call(-1), na_ok = FALSE) {
  if (name %in% c("ArgMin", "ArgMax") && length(index) == 1 && is.na(index)) {
    return(apply_op(name, x, call = call))
  }
  if (!is.LazyTensor(x)) keopsr_abort("input", "`x` input should be a LazyTensor or a ComplexLazyTensor.", call)
  complex <- is_complex_operand(x)
  if (complex && name != "Sum") {
    keopsr_abort("reduction", sprintf(
      "%s reductions are not defined for complex LazyTensors (only sum); reduce Re(), Im() or Mod() instead", name
    ), call)
  }
  axis <- axis_code(index, call, na_ok)
  if (!is.null(K)) K <- check_K(K, call)
  operands <- list(x)
  if (!is.null(weight)) operands <- list(x, as_operand(weight))
  pieces <- c(x$formula, K, axis, if (!is.null(weight)) operands[[2]]$formula)
  formula <- sprintf("%s_Reduction(%s)", name, paste(pieces, collapse = ", "))
  vars <- merge_variables(operands)
  res <- evaluate_formula(formula, vars$args, vars$data, ranges = ranges_for(ranges, index, call), call = call)
  if (complex) return(deinterleave_complex(res))
  if (!is.null(K) && x$dimres > 1) res <- k_arrays(res, as.integer(K), x$dimres)
  res
}

# K-reductions of a formula of dimension D > 1: column (k - 1) D + c holds
# the k-th value of component c; as rkeops, return n x K x D arrays.
k_arrays <- function(res, K, D) {
  shape <- function(m) {
    a <- array(m, c(nrow(m), D, K))
    aperm(a, c(1, 3, 2))
  }
  if (is.list(res)) lapply(res, shape) else shape(res)
}

# Inputs are plain numeric matrices and vectors. Classed objects (Date,
# difftime, factor, data frames, integer64, ...) are refused: their numbers
# are not what the user sees.
check_inputs <- function(inputs, args, call) {
  names <- variable_names(args)
  for (k in seq_along(inputs)) {
    x <- inputs[[k]]
    if (!is.numeric(x) || is.object(x)) {
      keopsr_abort("input", sprintf(
        "argument %s must be a numeric matrix or vector, got %s%s",
        if (k <= length(names)) sQuote(names[k], FALSE) else k, describe_object(x),
        if (is.data.frame(x)) " (use as.matrix())" else ""
      ), call)
    }
  }
}

# Runs a reduction formula with the current options.
evaluate_formula <- function(formula, args, inputs, sum_scheme = NULL, call = sys.call(-1), ranges = NULL) {
  check_inputs(inputs, args, call)
  opts <- keops_options()
  start <- proc.time()[["elapsed"]]
  res <- if (distributed_active() &&
    !is.null(split <- distributed_reduce(formula, args, unname(inputs), sum_scheme, ranges, call))) {
    split
  } else if (is.null(ranges)) {
    keopsr_reduce(formula, args, unname(inputs), engine_settings(sum_scheme))
  } else {
    keopsr_reduce_ranges(
      formula, args, unname(inputs), engine_settings(sum_scheme),
      ranges$out_start, ranges$out_end, ranges$slices, ranges$red_start, ranges$red_end
    )
  }
  res <- check_result(res, call)
  if (opts$verbosity > 0) {
    message(sprintf(
      "keopsr: %s on %s (%s, %s threads) in %.3f s",
      formula, if (is.null(ranges) && gpu_in_use()) "GPU" else "CPU", opts$precision,
      if (opts$threads == 0) keopsr_default_threads() else opts$threads,
      proc.time()[["elapsed"]] - start
    ))
  }
  with_index_base(res, opts$index_base)
}

# Indices come from the core 1-based; keops_options(index_base = 0L) makes
# them 0-based, as rkeops returns them (for scripts ported from rkeops).
# Index results are the integer matrices (alone or as `indices`).
with_index_base <- function(res, base) {
  if (base == 1L) return(res)
  if (is.list(res) && is.integer(res$indices)) {
    res$indices <- res$indices - 1L
  } else if (is.integer(res)) {
    res <- res - 1L
  }
  res
}

#' Sum, min and max of LazyTensors
#'
#' With `index = "i"` or `"j"`, reduces the symbolic matrix over that index:
#' `sum(F, index = "j")` is the M x d matrix \eqn{\sum_j F(x_i, y_j)}.
#' With `index = NA` (default), `sum()`, `min()` and `max()` act on the
#' components of each value (a LazyTensor of dimension 1; `sum()` of a
#' complex LazyTensor is a complex scalar). Only `sum()` reduces complex
#' LazyTensors over an index, giving a complex matrix.
#'
#' @param ... a LazyTensor, then optionally `index`.
#' @param na.rm unused (NA and NaN follow IEEE arithmetic, see [keopsr]).
#' @section Block-sparse reductions: every reduction takes an optional
#'   `ranges` argument (built by [keops_ranges()]): each cluster of output
#'   points is then reduced only over the listed clusters of the other index.
#' @return A matrix with one row per point of the index not reduced (and one
#'   column per component), or a LazyTensor when `index = NA`.
#' @name Summary.LazyTensor
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3))
#' y_j <- Vj(matrix(rnorm(60), 20, 3))
#' sum(exp(-sqdist(x_i, y_j)), index = "j")
#' min(sqdist(x_i, y_j), index = "i")
Summary.LazyTensor <- function(..., na.rm = FALSE) {
  call <- sys.call()
  args <- list(...)
  index <- if ("index" %in% names(args)) args$index else if (length(args) >= 2) args[[2]] else NA
  x <- args[[1]]
  if (length(index) == 1 && is.na(index)) {
    if (is_complex_operand(x) && .Generic == "sum") return(apply_op("ComplexSum", x, call = call, complex = TRUE))
    op <- c(sum = "Sum", min = "Min", max = "Max")[.Generic]
    if (is.na(op)) keopsr_abort("reduction", sprintf("%s() is not defined for LazyTensors", .Generic), call)
    return(apply_op(op, x, call = call))
  }
  name <- switch(.Generic,
    sum = "Sum", min = "Min", max = "Max",
    keopsr_abort("reduction", sprintf("%s() is not a reduction of LazyTensors", .Generic), call)
  )
  reduce_lazy(name, x, index, ranges = args$ranges, call = call, na_ok = TRUE)
}

#' Arg-min and arg-max reductions
#'
#' `argmin(x, index)` returns, for each row, the 1-based index of the smallest
#' value over the reduced index (component-wise); `min_argmin()` returns both
#' the values and the indices. Ties go to the smallest index; NaN ranks last.
#' rkeops returns 0-based indices: a script ported from rkeops that adds 1
#' to them would be off by one, so set `keops_options(index_base = 0L)` for
#' such scripts (see [keops_options()]).
#'
#' @param x a LazyTensor.
#' @param index `"i"` or `"j"`: the index reduced over. For `argmin()` and
#'   `argmax()`, `NA` (default) gives instead the 0-based position of the
#'   extreme component of each value (a LazyTensor of dimension 1).
#' @param ranges optional block-sparse ranges from [keops_ranges()]: output
#'   rows outside every kept block get the reduction's value on an empty set.
#' @return `argmin()`, `argmax()`: an integer matrix. `min_argmin()`,
#'   `max_argmax()`: a list with `values` (numeric matrix) and `indices`
#'   (integer matrix).
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3))
#' y_j <- Vj(matrix(rnorm(60), 20, 3))
#' argmin(sqdist(x_i, y_j), "j") # nearest y for each x
argmin <- function(x, index = NA, ranges = NULL) reduce_lazy("ArgMin", x, index, ranges = ranges, na_ok = TRUE)

#' @rdname argmin
#' @export
argmax <- function(x, index = NA, ranges = NULL) reduce_lazy("ArgMax", x, index, ranges = ranges, na_ok = TRUE)

#' @rdname argmin
#' @export
min_argmin <- function(x, index, ranges = NULL) reduce_lazy("Min_ArgMin", x, index, ranges = ranges)

#' @rdname argmin
#' @export
max_argmax <- function(x, index, ranges = NULL) reduce_lazy("Max_ArgMax", x, index, ranges = ranges)

#' K-min reductions: k-nearest neighbours
#'
#' `Kmin(x, K, index)` returns the K smallest values over the reduced index,
#' sorted ascending, `argKmin()` their 1-based indices, `Kmin_argKmin()` both
#' (0-based with `keops_options(index_base = 0L)`, as rkeops returns them,
#' for ported scripts).
#' For a LazyTensor of dimension d > 1, each component is treated separately
#' and the result is an n x K x d array (as in rkeops): `[r, k, c]` is the
#' k-th smallest value of component c for output row r.
#' K larger than the number of points reduced over is a
#' `keopsr_reduction_error`.
#'
#' @inheritParams argmin
#' @param K the number of smallest values.
#' @return `Kmin()`: a numeric matrix with K columns (an n x K x d array for
#'   d > 1); `argKmin()`: an integer matrix (or array); `Kmin_argKmin()`: a
#'   list with `values` and `indices`.
#' @export
#' @examples
#' x <- matrix(rnorm(300), 100, 3)
#' nn <- argKmin(sqdist(Vi(x), Vj(x)), K = 5, index = "j")
#' head(nn) # each point is its own nearest neighbour
Kmin <- function(x, K, index, ranges = NULL) reduce_lazy("KMin", x, index, K = K, ranges = ranges)

#' @rdname Kmin
#' @export
argKmin <- function(x, K, index, ranges = NULL) reduce_lazy("ArgKMin", x, index, K = K, ranges = ranges)

#' @rdname Kmin
#' @export
Kmin_argKmin <- function(x, K, index, ranges = NULL) reduce_lazy("KMin_ArgKMin", x, index, K = K, ranges = ranges)

#' Log-sum-exp and soft-max weighted sums
#'
#' `logsumexp(x, index)` is \eqn{\log \sum_j \exp(x_{ij})}, computed with a
#' running maximum so that it never overflows; with a `weight` w (and x of
#' dimension 1) it is \eqn{\log \sum_j \exp(x_{ij}) w_{ij}}.
#' `sumsoftmaxweight(x, index, weight)` (rkeops' argument order) is
#' \eqn{\sum_j \exp(x_{ij}) w_{ij} / \sum_j \exp(x_{ij})}.
#'
#' @inheritParams argmin
#' @param weight a LazyTensor of weights (optional for `logsumexp()`); for
#'   `sumsoftmaxweight()`, the values to average.
#' @return A numeric matrix.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3))
#' y_j <- Vj(matrix(rnorm(60), 20, 3))
#' logsumexp(-sqdist(x_i, y_j), "j")
#' sumsoftmaxweight(-sqdist(x_i, y_j), "j", y_j)
logsumexp <- function(x, index, weight = NULL, ranges = NULL) {
  reduce_lazy("LogSumExp", x, index, weight = weight, ranges = ranges)
}

#' @rdname logsumexp
#' @export
sumsoftmaxweight <- function(x, index, weight, ranges = NULL) {
  # keopsr 0.1's order (x, v, index) is still understood: unambiguous,
  # since the index is a string and the weights are not.
  if (!is.character(index) && is.character(weight)) {
    swap <- index
    index <- weight
    weight <- swap
  }
  reduce_lazy("SumSoftMaxWeight", x, index, weight = weight, ranges = ranges)
}

#' Any reduction by name
#'
#' `reduction.LazyTensor(x, opstr, index)` applies the reduction `opstr`
#' (`"Sum"`, `"Min"`, `"ArgKMin"`, `"LogSumExp"`, ...; the formula-string
#' name without `_Reduction`), as in rkeops.
#'
#' @inheritParams argmin
#' @param opstr the reduction's name.
#' @param opt_arg K for the K-min reductions, or the weight (a LazyTensor)
#'   for `"LogSumExp"` and `"SumSoftMaxWeight"`.
#' @return The reduction's result, as for the named functions.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3))
#' y_j <- Vj(matrix(rnorm(60), 20, 3))
#' reduction.LazyTensor(sqdist(x_i, y_j), "ArgKMin", "j", opt_arg = 2)
reduction.LazyTensor <- function(x, opstr, index, opt_arg = NA) {
  call <- sys.call()
  if (!is.character(opstr) || length(opstr) != 1) keopsr_abort("reduction", "`opstr` input should be a string text. It names a reduction, such as \"Sum\".", call)
  if (opstr %in% c("KMin", "ArgKMin", "KMin_ArgKMin")) {
    return(reduce_lazy(opstr, x, index, K = opt_arg, call = call))
  }
  weight <- if (is.LazyTensor(opt_arg) || (is.numeric(opt_arg) && !anyNA(opt_arg))) opt_arg
  reduce_lazy(opstr, x, index, weight = weight, call = call)
}
