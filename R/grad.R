# Gradients of reductions: keops_grad() for formula operators (rkeops 2.x),
# grad() for LazyTensors, keops_value_and_grad() for optimisers. The Rust
# core differentiates the formula symbolically and evaluates the gradients
# of every requested variable in at most two passes over the data.

# Runs the core: value and gradients of sum(eta * value) with respect to the
# variables at 0-based positions `wrt`.
value_and_grad <- function(formula, args, inputs, wrt, eta = NULL, want_value = FALSE, sum_scheme = NULL,
                           call = sys.call(-1)) {
  if (!is.null(eta) && !(is.numeric(eta) && !is.object(eta))) {
    keopsr_abort("input", "eta must be a numeric matrix (one row per output row) or vector", call)
  }
  check_inputs(inputs, args, call)
  if (distributed_active()) {
    res <- distributed_value_and_grad(formula, args, unname(inputs), as.integer(wrt), eta, want_value, sum_scheme, call)
    if (!is.null(res)) return(res)
  }
  res <- keopsr_value_and_grad(formula, args, unname(inputs), as.integer(wrt), eta, want_value, engine_settings(sum_scheme))
  check_result(res, call)
}

# 0-based position of a variable given by name or by 0-based position.
variable_position <- function(var, names, call) {
  if (is.character(var) && length(var) == 1 && var %in% names) return(match(var, names) - 1L)
  if (is.numeric(var) && length(var) == 1 && !is.na(var) && var == round(var) && var >= 0 && var < length(names)) {
    return(as.integer(var))
  }
  keopsr_abort("input", sprintf(
    "var must name a variable of the formula (%s) or give its 0-based position (0 to %d)",
    paste(names, collapse = ", "), length(names) - 1
  ), call)
}

#' Gradient of a formula operator
#'
#' `keops_grad(op, var)` returns the operator computing the gradient of the
#' reduction defined by `op` (from [keops_kernel()]) with respect to one of
#' its variables, as in rkeops 2.x: for weights \eqn{\eta} (one per output
#' value), the gradient of \eqn{\sum \eta \cdot \mathrm{op}(\ldots)}. The new
#' operator takes the inputs of `op` followed by `eta` (last, or named
#' `eta`): a vector for formulas of dimension 1, or a matrix with one row per
#' output row and one column per output value for vector-valued formulas.
#'
#' Every reduction can be differentiated. A variable indexed by the
#' output index gets one gradient row per output row; a variable indexed by
#' the reduced index one row per point (a reduction over the other index);
#' a parameter (`Pm`) a single row (summed over both indices). Sum, LogSumExp
#' (weighted too) and SumSoftMaxWeight gradients are exact; Min, Max, KMin
#' (and the values of Min_ArgMin, Max_ArgMax, KMin_ArgKMin) differentiate
#' through the selected index (on ties, the smallest index, the one the
#' reduction returns); ArgMin, ArgMax and ArgKMin have zero gradient. Inside
#' formulas, non-smooth operations have the derivatives listed in
#' [keops_operations()]: Sign, Step, Floor, Round, comparisons, ArgMin,
#' ArgMax and OneHot have zero derivative; Abs has Sign; Sqrt, Rsqrt and
#' Norm2 have derivative 0 at 0 (a subgradient). Formula strings can also use
#' `Grad(F, v, e)` and `Diff(F, v, u)` directly, nested to any order.
#'
#' @param op an operator from [keops_kernel()].
#' @param var the variable: its name in the formula's arguments, or its
#'   0-based position.
#' @return A function of `input` (a list) returning the gradient matrix;
#'   called without input, it describes itself like [keops_kernel()]
#'   operators.
#' @export
#' @examples
#' op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
#' dx <- keops_grad(op, "x")
#' x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(60), 20, 3); b <- rnorm(20)
#' dx(list(x, y, b, rep(1, 10))) # 10 x 3
keops_grad <- function(op, var) {
  call <- sys.call()
  info <- if (is.function(op)) tryCatch(op(), error = function(e) NULL)
  if (!is.list(info) || is.null(info$formula) || is.null(info$args_info)) {
    keopsr_abort("input", "op must be an operator returned by keops_kernel() or keops_grad()", call)
  }
  names <- info$args_info$name
  pos <- variable_position(var, names, call)
  function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (!is.null(ranges)) {
      keopsr_abort("input", "gradient operators do not take ranges: block-sparse gradients are not supported", sys.call())
    }
    if (is.null(input)) {
      return(list(formula = info$formula, args = info$args, args_info = info$args_info, var = names[pos + 1]))
    }
    call <- sys.call()
    if (!is.list(input) || is.data.frame(input)) {
      keopsr_abort("input", "input must be a list: the inputs of the operator, then eta", call)
    }
    if (!is.null(names(input)) && all(names(input) != "")) {
      missing_args <- setdiff(c(names, "eta"), names(input))
      if (length(missing_args)) {
        keopsr_abort("input", sprintf("no input named %s", paste(sQuote(missing_args, FALSE), collapse = ", ")), call)
      }
      eta <- input$eta
      input <- input[names]
    } else {
      if (length(input) != length(names) + 1) {
        keopsr_abort("input", sprintf(
          "the gradient operator needs %d inputs (%s, then eta), got %d",
          length(names) + 1, paste(names, collapse = ", "), length(input)
        ), call)
      }
      eta <- input[[length(input)]]
      input <- input[seq_along(names)]
    }
    input <- points_by_row(input, info$args_info$category, inner_dim, call)
    if (inner_dim == "row" && is.matrix(eta)) eta <- t(eta)
    res <- value_and_grad(info$formula, info$args, input, pos, eta, call = call)
    res$gradients[[1]]
  }
}

# The variables of a LazyTensor objective and the reduction formula.
lazy_reduction <- function(f, index, reduction, call) {
  if (!is.LazyTensor(f)) keopsr_abort("input", "f must be a LazyTensor", call)
  if (isTRUE(f$is_complex)) keopsr_abort("input", "gradients of complex LazyTensors are not supported", call)
  if (!is.character(reduction) || length(reduction) != 1) {
    keopsr_abort("reduction", "`opstr` input should be a string text corresponding to a reduction formula (such as \"Sum\").", call)
  }
  list(
    formula = sprintf("%s_Reduction(%s, %s)", reduction, f$formula, axis_code(index, call)),
    args = f$args, data = f$data, names = trimws(sub("=.*$", "", f$args))
  )
}

# Position of a LazyTensor variable (a LazyTensor made by Vi/Vj/Pm) in `names`.
lazy_position <- function(var, names, call) {
  if (is.LazyTensor(var)) {
    pos <- match(var$formula, names)
    if (is.na(pos)) {
      keopsr_abort("input", "var must be a variable (made by LazyTensor(), Vi(), Vj() or Pm()) that the formula uses", call)
    }
    return(pos - 1L)
  }
  variable_position(var, names, call)
}

#' Gradient of a LazyTensor reduction
#'
#' `grad(f, gradin, opstr, var, index)` (as in rkeops 2.x) is the gradient of
#' \eqn{\sum \mathrm{gradin} \cdot \mathrm{red}(f)} with respect to the
#' variable `var`, where `red` is the reduction `opstr` over `index`. See
#' [keops_grad()] for the rules (which reductions, parameters, ties).
#'
#' @param f a LazyTensor.
#' @param gradin the weights \eqn{\eta}: a matrix with one row per output row
#'   and one column per output value, a vector, or a LazyTensor of the
#'   output index (a variable such as `Vi(e)`, or a formula such as
#'   `Vi(e) * 2`, evaluated at each output point) or a constant one.
#' @param opstr the reduction: `"Sum"` (default), `"LogSumExp"`, `"Min"`,
#'   `"Max"`, `"Min_ArgMin"`, ... (reductions with a K, such as KMin, through
#'   [keops_grad()] on a formula).
#' @param var the variable: the LazyTensor (from `Vi()`, `Vj()`, `Pm()`)
#'   or its 0-based position among `f`'s variables.
#' @param index `"i"` or `"j"`: the index reduced over.
#' @return The gradient: one row per point of `var`'s index (one row for a
#'   parameter).
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3)); y_j <- Vj(matrix(rnorm(60), 20, 3))
#' K <- exp(-sqdist(x_i, y_j))
#' grad(K, rep(1, 10), "Sum", x_i, "j") # 10 x 3
grad <- function(f, gradin, opstr = "Sum", var, index) {
  call <- sys.call()
  red <- lazy_reduction(f, index, opstr, call)
  if (is.LazyTensor(gradin)) gradin <- cotangent_values(gradin, f, index, call)
  pos <- lazy_position(var, red$names, call)
  value_and_grad(red$formula, red$args, red$data, pos, gradin, call = call)$gradients[[1]]
}

# The values of a LazyTensor cotangent at each output row of the reduction
# of `f` over `index`: it may depend on the output index only (or on none).
cotangent_values <- function(gradin, f, index, call) {
  out_index <- if (index == "j") "i" else "j"
  if (!gradin$index %in% c(out_index, "")) {
    keopsr_abort("input", sprintf(
      "`gradin` input argument should be indexed by '%s' (one value per output row), not by '%s', which is reduced over",
      out_index, index
    ), call)
  }
  values <- pointwise_values(gradin, call)
  if (gradin$index == "") {
    values <- matrix(values, index_size(f, out_index), ncol(values), byrow = TRUE)
  }
  values
}

#' Value and gradients of a scalar objective, for optimisers
#'
#' Computes the reduction `reduction` of `f` over `index`, the scalar
#' objective \eqn{\sum \eta \cdot \mathrm{red}(f)} (with \eqn{\eta = 1} by
#' default), and its gradients with respect to every variable in `wrt`, in
#' one call: one pass for the value, then one pass for all the variables of
#' the output index and all parameters, and one for the variables of the
#' reduced index. Handy with [stats::optim()], whose `fn` and `gr` can share
#' one evaluation.
#'
#' @param f a LazyTensor.
#' @param index `"i"` or `"j"`: the index reduced over.
#' @param wrt a list of variables (LazyTensors made by `Vi()`, `Vj()`,
#'   `Pm()`, or 0-based positions); names are kept.
#' @param reduction the reduction, `"Sum"` by default (`"LogSumExp"`,
#'   `"Min"`, `"Max"`, ...).
#' @param eta optional weights (see [keops_grad()]).
#' @return A list: `value` (the scalar objective), `reduction` (the reduced
#'   matrix) and `gradients` (a list of matrices, one per element of `wrt`).
#' @export
#' @examples
#' x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(60), 20, 3)
#' s <- Pm(0.5)
#' vg <- keops_value_and_grad(-sqdist(Vi(x), Vj(y)) * s, "j", list(s = s), "LogSumExp")
#' vg$value; vg$gradients$s
keops_value_and_grad <- function(f, index, wrt, reduction = "Sum", eta = NULL) {
  call <- sys.call()
  red <- lazy_reduction(f, index, reduction, call)
  if (is.LazyTensor(wrt)) wrt <- list(wrt)
  if (!is.list(wrt) || length(wrt) == 0) keopsr_abort("input", "wrt must be a list of variables", call)
  pos <- vapply(wrt, lazy_position, 0L, names = red$names, call = call)
  res <- value_and_grad(red$formula, red$args, red$data, pos, eta, want_value = TRUE, call = call)
  values <- if (is.list(res$value)) res$value$values else res$value
  objective <- if (is.null(values) || !is.numeric(values) || is.integer(values)) 0 else sum(if (is.null(eta)) values else values * eta)
  list(value = objective, reduction = res$value, gradients = stats::setNames(res$gradients, names(wrt)))
}
