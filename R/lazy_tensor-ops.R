# Operators and math functions on LazyTensors. Each maps to one operation of
# the formula language; the Rust core checks dimensions.

# The formula of an n-ary operation `name(f1, f2, ...)`.
apply_op <- function(name, ..., extra = NULL, call = sys.call(-1)) {
  operands <- lapply(list(...), as_operand)
  inner <- c(vapply(operands, `[[`, "", "formula"), extra)
  combine(sprintf("%s(%s)", name, paste(inner, collapse = ", ")), operands, call)
}

#' Arithmetic on LazyTensors
#'
#' `+`, `-`, `*`, `/` are element-wise, broadcasting a dimension-1 operand;
#' `x | y` is the scalar product (dimension 1); `x^p` is `Square` for p = 2,
#' `Sqrt` for 0.5, `Rsqrt` for -0.5 and `Pow(x, p)` for other integers.
#' Numbers are inserted as literals; numeric vectors become parameters.
#'
#' @param e1,e2 LazyTensors or numbers.
#' @return A LazyTensor.
#' @name Ops.LazyTensor
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 2, 3))
#' y_j <- Vj(matrix(rnorm(9), 3, 3))
#' (x_i - y_j)^2
#' x_i | y_j
Ops.LazyTensor <- function(e1, e2) {
  call <- sys.call()
  if (missing(e2)) {
    return(switch(.Generic,
      "-" = apply_op("Minus", e1, call = call),
      "+" = e1,
      keopsr_abort("formula", sprintf("unary '%s' is not defined for LazyTensors", .Generic), call)
    ))
  }
  if (.Generic %in% c("+", "-", "*", "/", "|")) {
    a <- as_operand(e1)
    b <- as_operand(e2)
    return(combine(sprintf("(%s %s %s)", a$formula, .Generic, b$formula), list(a, b), call))
  }
  if (.Generic == "^") {
    if (is.LazyTensor(e2) || !is.numeric(e2) || length(e2) != 1 || is.na(e2)) {
      keopsr_abort("formula", "the exponent of a LazyTensor must be a number", call)
    }
    if (e2 == 2) return(apply_op("Square", e1, call = call))
    if (e2 == 0.5) return(apply_op("Sqrt", e1, call = call))
    if (e2 == -0.5) return(apply_op("Rsqrt", e1, call = call))
    if (e2 == round(e2) && abs(e2) < .Machine$integer.max) {
      return(apply_op("Pow", e1, extra = format(as.integer(e2)), call = call))
    }
    keopsr_abort("formula", sprintf(
      "x^%s: non-integer exponents other than 0.5 and -0.5 are not supported by this version", format(e2)
    ), call)
  }
  keopsr_abort("formula", sprintf("operator '%s' is not supported for LazyTensors", .Generic), call)
}

.math_ops <- c(exp = "Exp", log = "Log", sqrt = "Sqrt", abs = "Abs", sin = "Sin", cos = "Cos")

#' Math functions on LazyTensors
#'
#' `exp`, `log`, `sqrt`, `abs`, `sin`, `cos` apply element-wise, as do
#' `rsqrt()` (\eqn{1/\sqrt{x}}, 0 at 0), `inv()` (\eqn{1/x}) and `square()`.
#'
#' @param x a LazyTensor (`rsqrt()`, `inv()` and `square()` also accept numbers).
#' @param ... unused.
#' @return A LazyTensor.
#' @name Math.LazyTensor
#' @export
#' @examples
#' x_i <- Vi(matrix(runif(6), 2, 3))
#' exp(-x_i)
#' rsqrt(x_i)
Math.LazyTensor <- function(x, ...) {
  op <- .math_ops[.Generic]
  if (is.na(op)) {
    keopsr_abort("formula", sprintf(
      "%s() is not supported for LazyTensors; supported: %s, rsqrt, inv, square",
      .Generic, paste(names(.math_ops), collapse = ", ")
    ), sys.call())
  }
  apply_op(op, x, call = sys.call())
}

#' @rdname Math.LazyTensor
#' @export
rsqrt <- function(x) if (is.LazyTensor(x)) apply_op("Rsqrt", x) else ifelse(x == 0, 0, 1 / sqrt(x))

#' @rdname Math.LazyTensor
#' @export
inv <- function(x) if (is.LazyTensor(x)) apply_op("Inv", x) else 1 / x

#' @rdname Math.LazyTensor
#' @export
square <- function(x) if (is.LazyTensor(x)) apply_op("Square", x) else x^2

#' Norms and distances of LazyTensors
#'
#' `sqnorm2(x)` is \eqn{\sum_k x_k^2}, `norm2(x)` its square root,
#' `sqdist(x, y)` is \eqn{\sum_k (x_k - y_k)^2}; all have dimension 1.
#' `x` and `y` must have the same dimension.
#'
#' @param x,y LazyTensors.
#' @return A LazyTensor of dimension 1.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 2, 3))
#' y_j <- Vj(matrix(rnorm(9), 3, 3))
#' sqdist(x_i, y_j)
sqnorm2 <- function(x) apply_op("SqNorm2", x)

#' @rdname sqnorm2
#' @export
norm2 <- function(x) apply_op("Norm2", x)

#' @rdname sqnorm2
#' @export
sqdist <- function(x, y) apply_op("SqDist", x, y)
