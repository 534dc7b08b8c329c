#' Symbolic matrices: LazyTensor
#'
#' `LazyTensor()` wraps an R matrix as a symbolic variable indexed by `i`
#' (one row per point x_i), by `j` (one row per point y_j), or as a parameter
#' shared by all pairs. Arithmetic and math functions on LazyTensors build a
#' formula \eqn{F(x_i, y_j)}; nothing is computed until a reduction such as
#' `sum(F, index = "j")`. `Vi(x)`, `Vj(x)` and `Pm(x)` are shortcuts.
#'
#' Dimensions are checked when a formula is built: element-wise operations
#' need equal dimensions or one operand of dimension 1, and a mismatch is a
#' `keopsr_dimension_error`.
#'
#' @param x a numeric matrix (one row per point) or vector (one column for
#'   `"i"`/`"j"`; the parameter's values when `index = NA`), or a number. A
#'   matrix needs an index (as in rkeops): `Pm()` takes vectors.
#' @param index `"i"`, `"j"`, or `NA` (default) for a parameter.
#' @param is_complex `TRUE` for complex data (an R complex matrix or vector
#'   is complex whatever `is_complex` says; real data given with
#'   `is_complex = TRUE` are real parts). The result is a `ComplexLazyTensor`:
#'   arithmetic, `exp()`, `Re()`, `Im()`, `Mod()`, `Arg()`, `Conj()` and
#'   `sum()` work on it, and its reductions return complex matrices. Inside
#'   formulas a complex vector of dimension d is stored as 2d reals, real and
#'   imaginary parts interleaved (as in KeOps). Complex data are never
#'   silently made real.
#' @return An object of class `LazyTensor` (and `ComplexLazyTensor` for
#'   complex data): a list with the `formula` string, the argument
#'   declarations `args`, the `data` they refer to, the output dimension
#'   `dimres` (complex components for complex LazyTensors), the indices it
#'   depends on (`index`) and `is_complex`.
#' @export
#' @examples
#' x <- matrix(rnorm(30), 10, 3)
#' y <- matrix(rnorm(60), 20, 3)
#' x_i <- LazyTensor(x, "i")
#' y_j <- Vj(y)
#' K <- exp(-sqdist(x_i, y_j) / 2)
#' K
#' sum(K, index = "j") # 10 x 1
LazyTensor <- function(x, index = NA, is_complex = FALSE) {
  if (!is.logical(is_complex) || length(is_complex) != 1 || is.na(is_complex)) {
    keopsr_abort("input", "is_complex must be TRUE or FALSE")
  }
  # rkeops refuses a LazyTensor here; returning it would silently ignore
  # `index` (Vi() of a j-variable stays indexed by j).
  if (inherits(x, "LazyTensor")) keopsr_abort("input", "Input `x` is already a LazyTensor.")
  # Complex data make a complex LazyTensor (as in rkeops), never a real one.
  if (is.complex(x)) is_complex <- TRUE
  if (!((is.numeric(x) || is.complex(x)) && !is.object(x))) {
    keopsr_abort("input", sprintf(
      "`x` input argument should be a matrix, a vector, a scalar or a complex value. LazyTensor() got %s", describe_object(x)
    ))
  }
  if (!is.null(dim(x)) && length(dim(x)) != 2) {
    keopsr_abort("input", "LazyTensor() needs a matrix or a vector, not an array")
  }
  if (length(index) != 1 || !(is.na(index) || index %in% c("i", "j"))) {
    keopsr_abort("input", "index must be \"i\", \"j\" or NA (a parameter)")
  }
  if (is.matrix(x) && is.na(index)) {
    keopsr_abort("input", paste(
      "missing `index` argument.",
      "A matrix is one point per row: give index = \"i\" or \"j\" (a parameter is a vector)"
    ))
  }
  if (is.integer(x)) storage.mode(x) <- "double"
  if (is.na(index)) {
    if (is_complex) x <- interleave_complex(x)
    dim <- length(x)
    keyword <- "Pm"
    x <- as.vector(x)
  } else {
    # A vector is one column: one value (real or complex) per point.
    if (is.null(dim(x))) x <- matrix(x, ncol = 1)
    if (is_complex) x <- interleave_complex(x)
    dim <- ncol(x)
    keyword <- if (index == "i") "Vi" else "Vj"
  }
  if (dim == 0) keopsr_abort("dimension", "a LazyTensor needs at least one column (or value)")
  name <- new_variable_name()
  new_lazy_tensor(
    formula = name,
    args = sprintf("%s = %s(%d)", name, keyword, dim),
    data = stats::setNames(list(x), name),
    complex = is_complex
  )
}

# A complex matrix (or vector) as reals: real and imaginary parts of each
# column side by side, the layout of complex vectors inside formulas.
interleave_complex <- function(z) {
  if (is.null(dim(z))) {
    return(as.vector(rbind(Re(z), Im(z))))
  }
  out <- matrix(0, nrow(z), 2 * ncol(z))
  out[, seq(1, by = 2, length.out = ncol(z))] <- Re(z)
  out[, seq(2, by = 2, length.out = ncol(z))] <- Im(z)
  out
}

# The inverse of interleave_complex() for a result matrix.
deinterleave_complex <- function(m) {
  odd <- seq(1, ncol(m), by = 2)
  matrix(complex(real = m[, odd], imaginary = m[, odd + 1]), nrow(m), length(odd))
}

is_complex_operand <- function(x) is.complex(x) || (is.LazyTensor(x) && isTRUE(x$is_complex))

#' @rdname LazyTensor
#' @export
Vi <- function(x, is_complex = FALSE) LazyTensor(x, "i", is_complex)

#' @rdname LazyTensor
#' @export
Vj <- function(x, is_complex = FALSE) LazyTensor(x, "j", is_complex)

#' @rdname LazyTensor
#' @export
Pm <- function(x, is_complex = FALSE) LazyTensor(x, NA, is_complex)

#' @rdname LazyTensor
#' @export
is.LazyTensor <- function(x) inherits(x, "LazyTensor")

# Builds a LazyTensor from a formula, checking it (and getting its
# dimension) in Rust: dimension errors surface when the formula is written.
new_lazy_tensor <- function(formula, args, data, call = sys.call(-1), complex = FALSE, precedence = 3L) {
  info <- check_result(keopsr_expression_info(formula, args), call)
  structure(
    list(
      formula = formula, args = args, data = data, dimres = if (complex) info$dim %/% 2L else info$dim,
      index = info$index, is_complex = complex, precedence = precedence
    ),
    class = c(if (complex) "ComplexLazyTensor", "LazyTensor")
  )
}

# A fresh variable name, unique by construction: a random token drawn from
# the operating system when the package is loaded (R's random numbers are
# left alone) and drawn again in a forked child, plus a counter. LazyTensors
# made in other sessions (saveRDS, callr, future workers) thus never reuse a
# name by accident.
new_variable_name <- function() {
  pid <- Sys.getpid()
  if (!identical(.keopsr_state$pid, pid)) {
    .keopsr_state$pid <- pid
    .keopsr_state$token <- keopsr_random_token()
    .keopsr_state$counter <- 0
  }
  .keopsr_state$counter <- .keopsr_state$counter + 1
  sprintf("V%s_%.0f", .keopsr_state$token, .keopsr_state$counter)
}

# The union of the operands' variables: declarations and data, in the same
# order. A name shared by two operands must be the same variable (same
# declaration, identical data); anything else (edited fields, objects from
# an older keopsr whose names were a plain counter) is a classed error, never
# a silent merge of two data sets.
merge_variables <- function(operands, call = sys.call(-1)) {
  args <- unlist(lapply(operands, `[[`, "args"), use.names = FALSE)
  data <- do.call(c, unname(lapply(operands, function(x) x$data)))
  names <- variable_names(args)
  if (length(data) != length(args) || !identical(as.character(names(data)), names)) {
    keopsr_abort("variable", "a LazyTensor's variables and data do not match (were its fields edited?)", call)
  }
  first <- match(names, names)
  for (k in which(first != seq_along(names))) {
    if (!identical(args[[k]], args[[first[k]]]) || !identical(data[[k]], data[[first[k]]])) {
      keopsr_abort("variable", sprintf(
        "two different variables share the name '%s' (LazyTensors from another session or with edited fields); make them again with LazyTensor(), Vi(), Vj() or Pm()",
        names[k]
      ), call)
    }
  }
  keep <- first == seq_along(names)
  list(args = args[keep], data = data[keep])
}

# Combines the variables of several LazyTensors into a new formula.
combine <- function(formula, operands, call = sys.call(-1), complex = FALSE, precedence = 3L) {
  vars <- merge_variables(operands, call)
  new_lazy_tensor(formula, vars$args, vars$data, call, complex, precedence)
}

# Binding strength of a formula's outermost operation, for parentheses:
# 3 for names, calls and parenthesised literals, 2 for `*` and `/`, 1 for `+`
# and `-`, 0 for `|`. LazyTensors without it (saved by an older keopsr) get 0,
# so they are always parenthesised.
.precedence <- c("|" = 0L, "+" = 1L, "-" = 1L, "*" = 2L, "/" = 2L)

precedence_of <- function(x) if (is.null(x$precedence)) 0L else x$precedence

# `a op b` with parentheses only where the grammar needs them to keep the
# tree (left to right, as the parser reads it): a sum of many LazyTensors is
# one flat chain, not a formula nested as deep as it is long.
infix <- function(op, a, b, call) {
  p <- .precedence[[op]]
  lhs <- if (precedence_of(a) < p) paste0("(", a$formula, ")") else a$formula
  rhs <- if (precedence_of(b) <= p) paste0("(", b$formula, ")") else b$formula
  combine(paste(lhs, op, rhs), list(a, b), call, precedence = p)
}

# A LazyTensor, or a number turned into a literal (or a parameter when it is
# a vector or not finite).
as_operand <- function(x) {
  if (is.LazyTensor(x)) return(x)
  if (is.numeric(x) && !is.object(x) && length(x) == 1 && is.finite(x)) {
    literal <- sprintf("%.17g", x)
    if (x < 0) literal <- paste0("(", literal, ")")
    return(list(formula = literal, args = character(), data = list(), precedence = 3L))
  }
  if (is.matrix(x) && (is.numeric(x) || is.complex(x))) {
    keopsr_abort("input", paste0(
      "a matrix cannot be combined with a LazyTensor: `x` input argument should be a LazyTensor, a vector or a scalar.",
      "\nIf you want to use a matrix, convert it to LazyTensor first (Vi(), Vj())."
    ), call = sys.call(-2))
  }
  if (is.numeric(x) && !is.object(x)) return(Pm(x))
  if (is.complex(x) && !is.object(x)) return(LazyTensor(x, NA, is_complex = TRUE))
  keopsr_abort("input", sprintf(
    "cannot combine a LazyTensor with %s", describe_object(x)
  ), call = sys.call(-2))
}

describe_object <- function(x) {
  if (is.object(x)) return(paste0("an object of class ", paste(class(x), collapse = "/")))
  paste0("a ", typeof(x), if (is.matrix(x)) " matrix" else " vector")
}

#' @export
print.LazyTensor <- function(x, ...) {
  cat(format(x, ...), sep = "\n")
  invisible(x)
}

#' @export
format.LazyTensor <- function(x, ...) {
  index <- switch(x$index, i = "indexed by i", j = "indexed by j", ij = "indexed by i and j", "constant")
  c(
    sprintf("%s of dimension %d, %s", if (isTRUE(x$is_complex)) "ComplexLazyTensor" else "LazyTensor", x$dimres, index),
    paste0("formula: ", x$formula),
    paste0("arguments: ", paste(x$args, collapse = ", "))
  )
}
