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
#' reduction defined by `op` (from [keops_kernel()] or `keops_grad()`) with
#' respect to one of its variables, as in rkeops 2.x: for weights
#' \eqn{\eta} (one per output value), the gradient of
#' \eqn{\sum \eta \cdot \mathrm{op}(\ldots)}. The new operator is the
#' formula `Grad(<formula of op>, var, eta)` with `eta` declared on the
#' output index, with the output's dimension; it takes the inputs of `op`
#' followed by `eta` (last, or named `eta`): a vector for formulas of
#' dimension 1, or a matrix with one row per output row and one column per
#' output value for vector-valued formulas. For a parameter (`Pm`) `var`,
#' an `eta` with one value per output column (rkeops' `Pm` eta) is used for
#' every output row.
#'
#' Gradients of gradients: `keops_grad(keops_grad(op, "x"), "x")` is the
#' second-order operator `Grad(Grad(F, x, eta), x, eta2)`; its new weight
#' (named `eta2`, then `eta3`, ...) has the first gradient's dimension, one
#' row per point of `x`'s index.
#'
#' Every reduction can be differentiated. A variable indexed by the
#' output index gets one gradient row per output row; a variable indexed by
#' the reduced index one row per point (a reduction over the other index);
#' a parameter (`Pm`) a single row (summed over both indices). Sum, LogSumExp
#' (weighted too) and SumSoftMaxWeight gradients are exact; Min, Max, KMin
#' (and the values of Min_ArgMin, Max_ArgMax, KMin_ArgKMin) differentiate
#' through the selected index (on ties, the smallest index, the one the
#' reduction returns); ArgMin, ArgMax and ArgKMin have zero gradient (their
#' eta has one column per returned index). Inside
#' formulas, non-smooth operations have the derivatives listed in
#' [keops_operations()]: Sign, Step, Floor, Round, comparisons, ArgMin,
#' ArgMax and OneHot have zero derivative; Abs has Sign; Sqrt, Rsqrt and
#' Norm2 have derivative 0 at 0 (a subgradient). Formula strings can also use
#' `Grad(F, v, e)` and `Diff(F, v, u)` directly, nested to any order.
#'
#' rkeops differs for a variable of the reduced index: see
#' `vignette("migrating-from-rkeops")`.
#'
#' @param op an operator from [keops_kernel()] or `keops_grad()`.
#' @param var the variable: its name in the formula's arguments, or its
#'   0-based position.
#' @return A function `grad_op(input, inner_dim = "col")` returning the
#'   gradient matrix; called without input, it describes itself like
#'   [keops_kernel()] operators (with `var` and `eta`, the name of its
#'   weight).
#' @export
#' @examples
#' op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
#' dx <- keops_grad(op, "x")
#' x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(60), 20, 3); b <- rnorm(20)
#' dx(list(x, y, b, rep(1, 10))) # 10 x 3
#' # second order: the product of the Hessian in x by directions u
#' dxx <- keops_grad(dx, "x")
#' u <- matrix(rnorm(30), 10, 3)
#' dxx(list(x, y, b, rep(1, 10), u)) # 10 x 3
keops_grad <- function(op, var) {
  call <- sys.call()
  info <- if (is.function(op)) tryCatch(op(), error = function(e) NULL)
  if (!is.list(info) || is.null(info$formula) || is.null(info$args_info)) {
    keopsr_abort("input", "op must be an operator returned by keops_kernel() or keops_grad()", call)
  }
  names <- info$args_info$name
  pos <- variable_position(var, names, call)
  spec <- gradient_formula(info, pos, call)
  grad_op <- keops_kernel(spec$formula, spec$args, sum_scheme = if (is.null(info$sum_scheme)) "auto" else info$sum_scheme)
  function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (!is.null(ranges)) {
      keopsr_abort("input", "gradient operators do not take ranges: block-sparse gradients are not supported", sys.call())
    }
    if (is.null(input)) return(c(grad_op(), list(var = names[pos + 1], eta = spec$eta)))
    call <- sys.call()
    if (!is.list(input) || is.data.frame(input)) {
      keopsr_abort("input", "input must be a list: the inputs of the operator, then eta", call)
    }
    if (!is.null(names(input)) && all(names(input) != "")) {
      missing_args <- setdiff(c(names, spec$eta), names(input))
      if (length(missing_args)) {
        keopsr_abort("input", sprintf("no input named %s", paste(sQuote(missing_args, FALSE), collapse = ", ")), call)
      }
      input <- unname(input[c(names, spec$eta)])
    } else if (length(input) != length(names) + 1) {
      keopsr_abort("input", sprintf(
        "the gradient operator needs %d inputs (%s, then %s), got %d",
        length(names) + 1, paste(names, collapse = ", "), spec$eta, length(input)
      ), call)
    }
    if (info$args_info$category[pos + 1] == "Pm") {
      input[[length(input)]] <- rows_of_eta(input, info$args_info, spec, inner_dim)
    }
    withCallingHandlers(grad_op(input, inner_dim), keopsr_error = function(e) {
      e$call <- call
      stop(e)
    })
  }
}

# The formula and arguments of the gradient of `info`'s formula with respect
# to its variable at 0-based position `pos`, with a new weight variable of
# the output index and the output's dimension (the index count for Arg
# reductions, whose gradient is zero). Formulas with inline variables
# (`Vi(0, 3)`, no `args`) get inline spellings.
gradient_formula <- function(info, pos, call) {
  out <- check_result(keopsr_formula_info(info$formula, info$args), call)
  category <- if (out$reduced_index == "j") "Vi" else "Vj"
  dim <- if (out$value_cols > 0) out$value_cols else out$index_cols
  names <- info$args_info$name
  eta <- c("eta", paste0("eta", seq(2, length(names) + 2)))
  eta <- eta[!eta %in% names][1]
  if (length(info$args) == 0) {
    v <- info$args_info[pos + 1, ]
    var <- sprintf("%s(%d,%d)", v$category, pos, v$dim)
    return(list(
      formula = sprintf("Grad(%s, %s, %s(%d,%d))", info$formula, var, category, length(names), dim),
      args = character(), eta = eta, eta_category = category, eta_dim = dim
    ))
  }
  list(
    formula = sprintf("Grad(%s, %s, %s)", info$formula, names[pos + 1], eta),
    args = c(info$args, sprintf("%s = %s(%d)", eta, category, dim)),
    eta = eta, eta_category = category, eta_dim = dim
  )
}

# rkeops declares the weight of a parameter's gradient as a parameter: one
# value per output column, the same for every output row. Such an eta is
# repeated over the output rows (the points of the output index), in the
# layout `inner_dim` asks for.
rows_of_eta <- function(input, args_info, spec, inner_dim) {
  eta <- input[[length(input)]]
  if (!is.numeric(eta) || is.object(eta) || length(eta) != spec$eta_dim) return(eta)
  points <- which(args_info$category == spec$eta_category)
  if (!length(points)) return(eta)
  first <- input[[points[1]]]
  rows <- if (!is.matrix(first)) length(first) / args_info$dim[points[1]] else if (inner_dim == "row") ncol(first) else nrow(first)
  if (rows == 1) return(eta)
  eta <- matrix(as.double(eta), rows, spec$eta_dim, byrow = TRUE)
  if (inner_dim == "row") t(eta) else eta
}

# The variables of a LazyTensor objective and the reduction formula.
lazy_reduction <- function(f, index, reduction, call) {
  if (!is.LazyTensor(f)) keopsr_abort("input", "f must be a LazyTensor", call)
  if (isTRUE(f$is_complex)) keopsr_abort("input", "gradients of complex LazyTensors are not supported", call)
  if (!is.character(reduction) || length(reduction) != 1) {
    keopsr_abort("reduction", "`opstr` input should be a string text corresponding to a reduction formula. For example \"Sum\".", call)
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
