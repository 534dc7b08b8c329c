# Operators and math functions on LazyTensors. Each maps to one operation of
# the formula language (see keops_operations()); the Rust core checks
# dimensions and integer arguments, so these functions only build strings.

# The formula of an n-ary operation `name(f1, f2, ..., extra)`; `extra` are
# integer arguments or Ind() lists, already formatted.
apply_op <- function(name, ..., extra = NULL, call = sys.call(-1), complex = FALSE) {
  operands <- lapply(list(...), as_operand)
  # Operations on the interleaved reals of a complex LazyTensor would give
  # silently wrong numbers: only the complex operations take one.
  if (!name %in% .complex_operations && any(vapply(operands, is_complex_operand, NA))) {
    keopsr_abort("formula", sprintf(
      "`%s` cannot be applied to a ComplexLazyTensor (see ?Complex.LazyTensor for what is defined on complex numbers)", name
    ), call)
  }
  inner <- c(vapply(operands, `[[`, "", "formula"), extra)
  combine(sprintf("%s(%s)", name, paste(inner, collapse = ", ")), operands, call, complex)
}

# The operations that take complex operands (see ops/complex.rs).
.complex_operations <- c(
  "ComplexReal", "ComplexImag", "ComplexAbs", "ComplexAngle", "ComplexSum", "Conj", "ComplexExp",
  "ComplexAdd", "ComplexSubtract", "ComplexMult", "ComplexDivide", "ComplexRealScal", "ComplexSquareAbs"
)

# An integer argument of a formula (a position, a dimension), as a literal.
int_arg <- function(n, what, call = sys.call(-1)) {
  if (!is.numeric(n) || length(n) != 1 || is.na(n) || n != round(n) || abs(n) > .Machine$integer.max) {
    keopsr_abort("formula", sprintf("`%s` input argument should be an integer.", what), call)
  }
  format(as.integer(n))
}

# Positions and slices checked in R with rkeops' messages, before the core
# checks the formula again (naming the operation): `x`'s dimension.
dim_of <- function(x) if (is.LazyTensor(x)) x$dimres else length(x)

check_dimension <- function(op, ok, message, call, kind = "formula") {
  if (!ok) keopsr_abort(kind, paste0(op, ": ", message), call)
}

# An integer list argument, written Ind(a, b, ...).
ind_arg <- function(v, what, call = sys.call(-1)) {
  if (!is.numeric(v) || length(v) == 0 || anyNA(v) || any(v != round(v))) {
    keopsr_abort("formula", sprintf("%s must be a vector of whole numbers", what), call)
  }
  sprintf("Ind(%s)", paste(format(as.integer(v)), collapse = ", "))
}

# A complex operand: complex LazyTensors as they are, real ones promoted.
as_complex_operand <- function(x) {
  if (is_complex_operand(x)) return(as_operand(x))
  apply_op("Real2Complex", x, complex = TRUE)
}

#' Arithmetic and comparisons on LazyTensors
#'
#' `+`, `-`, `*`, `/` are element-wise, broadcasting a dimension-1 operand;
#' `x | y` is the scalar product (dimension 1). `x^p` is `Square` for p = 2,
#' `Sqrt` for 0.5, `Rsqrt` for -0.5, `Pow(x, p)` for other integers and
#' `Powf(x, p)` otherwise (also when p is a LazyTensor). Comparisons `==`,
#' `!=`, `<`, `<=`, `>`, `>=` give 1 (true) or 0 (false); with NaN they are
#' false, except `!=`. On complex LazyTensors, `+ - * /` are complex
#' operations; a real operand (or a complex scalar) broadcasts.
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
#' x_i > y_j
Ops.LazyTensor <- function(e1, e2) {
  call <- sys.call()
  if (missing(e2)) {
    return(switch(.Generic,
      "-" = apply_op("Minus", e1, call = call, complex = is_complex_operand(e1)),
      "+" = e1,
      keopsr_abort("formula", sprintf("unary '%s' is not defined for LazyTensors", .Generic), call)
    ))
  }
  if (is_complex_operand(e1) || is_complex_operand(e2)) return(complex_arith(.Generic, e1, e2, call))
  if (.Generic %in% c("+", "-", "*", "/", "|")) {
    return(infix(.Generic, as_operand(e1), as_operand(e2), call))
  }
  switch(.Generic,
    "^" = power(e1, e2, call),
    "==" = apply_op("Equal", e1, e2, call = call),
    "!=" = apply_op("NotEqual", e1, e2, call = call),
    "<" = apply_op("LessThan", e1, e2, call = call),
    "<=" = apply_op("LessOrEqual", e1, e2, call = call),
    ">" = apply_op("LessThan", e2, e1, call = call),
    ">=" = apply_op("LessOrEqual", e2, e1, call = call),
    keopsr_abort("formula", sprintf("operator '%s' is not supported for LazyTensors", .Generic), call)
  )
}

power <- function(x, p, call) {
  if (is.LazyTensor(p)) return(apply_op("Powf", x, p, call = call))
  if (!is.numeric(p) || length(p) != 1 || is.na(p)) {
    keopsr_abort("formula", "the exponent of a LazyTensor must be a number or a LazyTensor", call)
  }
  if (p == 2) return(apply_op("Square", x, call = call))
  if (p == 0.5) return(apply_op("Sqrt", x, call = call))
  if (p == -0.5) return(apply_op("Rsqrt", x, call = call))
  if (p == round(p) && abs(p) < .Machine$integer.max) {
    return(apply_op("Pow", x, extra = format(as.integer(p)), call = call))
  }
  apply_op("Powf", x, p, call = call)
}

complex_arith <- function(op, e1, e2, call) {
  op_name <- c("+" = "ComplexAdd", "-" = "ComplexSubtract", "*" = "ComplexMult", "/" = "ComplexDivide")[op]
  if (is.na(op_name)) {
    keopsr_abort("formula", sprintf("operator '%s' is not defined for complex LazyTensors", op), call)
  }
  # A real factor scales both parts without being promoted to complex.
  if (op == "*" && !is_complex_operand(e1)) return(apply_op("ComplexRealScal", e1, e2, call = call, complex = TRUE))
  if (op == "*" && !is_complex_operand(e2)) return(apply_op("ComplexRealScal", e2, e1, call = call, complex = TRUE))
  if (op == "/" && !is_complex_operand(e2)) {
    return(apply_op("ComplexRealScal", apply_op("Inv", e2, call = call), e1, call = call, complex = TRUE))
  }
  apply_op(op_name, as_complex_operand(e1), as_complex_operand(e2), call = call, complex = TRUE)
}

.math_ops <- c(
  exp = "Exp", log = "Log", sqrt = "Sqrt", abs = "Abs", sin = "Sin", cos = "Cos",
  asin = "Asin", acos = "Acos", atan = "Atan", sign = "Sign", floor = "Floor"
)

#' Math functions on LazyTensors
#'
#' `exp`, `log` (also `log(x, base)`, `log2`, `log10`), `sqrt`, `abs`,
#' `sin`, `cos`, `asin`, `acos`, `atan`,
#' `sign` (0 at 0), `floor` and `round(x, digits)` (halves away from zero)
#' apply element-wise, as do `rsqrt()` (\eqn{1/\sqrt{x}}, 0 at 0), `inv()`
#' (\eqn{1/x}), `square()`, `relu()` (\eqn{\max(x, 0)}), `step()` (0 for
#' x < 0, 1 otherwise), `xlogx()` (\eqn{x \log x}, 0 at 0) and `sinxdivx()`
#' (\eqn{\sin(x)/x}, 1 at 0). On complex LazyTensors, `exp()` is the complex
#' exponential and `abs()` the modulus. `step()` on anything else is
#' [stats::step()].
#'
#' @param x a LazyTensor (`rsqrt()`, `inv()`, `square()`, `relu()`,
#'   `xlogx()` and `sinxdivx()` also accept numbers).
#' @param ... `digits` for `round()`, `base` for `log()`; passed to
#'   [stats::step()] by `step()`.
#' @return A LazyTensor.
#' @name Math.LazyTensor
#' @export
#' @examples
#' x_i <- Vi(matrix(runif(6), 2, 3))
#' exp(-x_i)
#' rsqrt(x_i)
#' round(x_i * 10, 1)
Math.LazyTensor <- function(x, ...) {
  call <- sys.call()
  if (is_complex_operand(x)) {
    return(switch(.Generic,
      exp = apply_op("ComplexExp", x, call = call, complex = TRUE),
      abs = apply_op("ComplexAbs", x, call = call),
      keopsr_abort("formula", sprintf("%s() is not defined for complex LazyTensors; use exp, abs, Re, Im, Mod, Arg or Conj", .Generic), call)
    ))
  }
  if (.Generic %in% c("log", "log2", "log10")) {
    base <- switch(.Generic, log2 = 2, log10 = 10, if (...length() > 0) ..1 else exp(1))
    if (!is.numeric(base) || is.object(base) || length(base) != 1) {
      keopsr_abort("formula", "the base of log() must be one number", call)
    }
    # log(x, base) = log(x) / log(base), as base R computes it.
    if (base == exp(1)) return(apply_op("Log", x, call = call))
    return(infix("/", apply_op("Log", x, call = call), as_operand(log(base)), call))
  }
  if (.Generic == "round") {
    digits <- list(...)$digits
    if (is.null(digits)) digits <- if (...length() > 0) ..1 else 0
    if (!is.numeric(digits) || is.object(digits) || length(digits) != 1 || is.na(digits)) {
      keopsr_abort("formula", "`digits` input argument should be a scalar.", call)
    }
    # As base R, a fractional number of digits is rounded (3.6 digits are 4).
    return(apply_op("Round", x, extra = int_arg(round(digits), "digits", call), call = call))
  }
  op <- .math_ops[.Generic]
  if (is.na(op)) {
    keopsr_abort("formula", sprintf(
      "%s() is not supported for LazyTensors; supported: %s, log2, log10, round, rsqrt, inv, square, relu, step, xlogx, sinxdivx",
      .Generic, paste(names(.math_ops), collapse = ", ")
    ), call)
  }
  apply_op(op, x, call = call)
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

#' @rdname Math.LazyTensor
#' @export
relu <- function(x) if (is.LazyTensor(x)) apply_op("ReLU", x) else pmax(x, 0)

#' @rdname Math.LazyTensor
#' @export
step <- function(x, ...) if (is.LazyTensor(x)) apply_op("Step", x) else stats::step(x, ...)

#' @rdname Math.LazyTensor
#' @export
xlogx <- function(x) if (is.LazyTensor(x)) apply_op("XLogX", x) else ifelse(x == 0, 0, x * log(x))

#' @rdname Math.LazyTensor
#' @export
sinxdivx <- function(x) if (is.LazyTensor(x)) apply_op("SinXDivX", x) else ifelse(x == 0, 1, sin(x) / x)

#' Element-wise functions of several LazyTensors
#'
#' `atan2(y, x)` is the angle of the point (x, y); `ifelse(test, yes, no)`
#' is `yes` where `test >= 0` and `no` elsewhere (as KeOps' IfElse: the test
#' is a number, not a logical); `clamp(x, a, b)` is a where x < a, b where
#' x > b and x elsewhere (`clampint()` for whole-number bounds); `mod(x, n, offset)` is
#' \eqn{x - n \lfloor (x - offset)/n \rfloor}, in `[offset, offset + n)`.
#' Operands broadcast as in arithmetic. Without LazyTensors, `atan2()` and
#' `ifelse()` are the base R functions.
#'
#' @param x,y,test,yes,no,a,b,n,offset LazyTensors or numbers.
#' @return A LazyTensor.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 2, 3))
#' y_j <- Vj(matrix(rnorm(9), 3, 3))
#' clamp(x_i - y_j, -1, 1)
#' ifelse(x_i - y_j, x_i, y_j)
atan2 <- function(y, x) {
  if (is.LazyTensor(y) || is.LazyTensor(x)) apply_op("Atan2", y, x) else base::atan2(y, x)
}

#' @rdname atan2
#' @export
ifelse <- function(test, yes, no) {
  if (is.LazyTensor(test) || is.LazyTensor(yes) || is.LazyTensor(no)) {
    apply_op("IfElse", test, yes, no)
  } else {
    base::ifelse(test, yes, no)
  }
}

#' @rdname atan2
#' @export
clamp <- function(x, a, b) apply_op("Clamp", x, a, b)

#' @rdname atan2
#' @export
clampint <- function(x, a, b) {
  call <- sys.call()
  if (is.LazyTensor(a) || is.LazyTensor(b)) {
    keopsr_abort("formula", paste(
      "`clampint(x, y, z)` expects integer arguments for `y` and `z`.",
      "Use clamp(x, y, z) for different `y` and `z` types."
    ), call)
  }
  if (is_complex_operand(x)) keopsr_abort("formula", "`x` cannot be a ComplexLazyTensor.", call)
  apply_op("ClampInt", x, extra = c(int_arg(a, "a", call), int_arg(b, "b", call)), call = call)
}

#' @rdname atan2
#' @export
mod <- function(x, n, offset = 0) apply_op("Mod", x, n, offset)

#' Norms and distances of LazyTensors
#'
#' `sqnorm2(x)` is \eqn{\sum_k x_k^2}, `norm2(x)` its square root,
#' `normalize(x)` is \eqn{x/|x|} (0 for x = 0), `sqdist(x, y)` is
#' \eqn{\sum_k (x_k - y_k)^2}. `weightedsqnorm(x, s)` is \eqn{x' S x} where
#' S is isotropic (`s` of dimension 1), diagonal (`s` of dimension d) or a
#' full symmetric matrix (`s` of dimension \eqn{d^2}, row-major), and
#' `weightedsqdist(x, y, s)` is `weightedsqnorm(x - y, s)`.
#'
#' @param x,y LazyTensors of the same dimension.
#' @param s weights: a LazyTensor or a numeric vector.
#' @return A LazyTensor of dimension 1 (`normalize()`: of dimension d).
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 2, 3))
#' y_j <- Vj(matrix(rnorm(9), 3, 3))
#' sqdist(x_i, y_j)
#' weightedsqdist(x_i, y_j, c(1, 2, 3))
sqnorm2 <- function(x) apply_op("SqNorm2", x)

#' @rdname sqnorm2
#' @export
norm2 <- function(x) apply_op("Norm2", x)

#' @rdname sqnorm2
#' @export
normalize <- function(x) apply_op("Normalize", x)

#' @rdname sqnorm2
#' @export
sqdist <- function(x, y) apply_op("SqDist", x, y)

#' @rdname sqnorm2
#' @export
weightedsqnorm <- function(x, s) apply_op("WeightedSqNorm", s, x)

#' @rdname sqnorm2
#' @export
weightedsqdist <- function(x, y, s) apply_op("WeightedSqDist", s, x, y)

#' Selecting and assembling components
#'
#' Positions are 0-based, as in KeOps formulas. `elem(x, m)` is component m;
#' `extract(x, m, d)` components m to m + d - 1; `elemT(x, m, n)` the vector
#' of dimension n holding the scalar x at position m (zeros elsewhere);
#' `extractT(x, m, d)` the vector of dimension d holding x from position m;
#' `concat(x, y)` the components of x then those of y; `one_hot(x, D)` the
#' vector of dimension D with 1 at position `round(x)`.
#'
#' @param x,y LazyTensors.
#' @param m a 0-based position.
#' @param n,d,D dimensions.
#' @return A LazyTensor.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 2, 3))
#' elem(x_i, 0)
#' extract(x_i, 1, 2)
#' concat(x_i, elem(x_i, 2))
elem <- function(x, m) {
  call <- sys.call()
  m_arg <- int_arg(m, "m", call)
  dim <- dim_of(x)
  check_dimension("Elem", m >= 0 && m < dim, sprintf("Index `m` is out of bounds. Should be in [0, %d).", dim), call)
  apply_op("Elem", x, extra = m_arg, call = call)
}

#' @rdname elem
#' @export
elemT <- function(x, m, n) {
  call <- sys.call()
  check_dimension("ElemT", dim_of(x) == 1, sprintf(
    "`x` input argument should be a `LazyTensor` encoding a single value. Got dimension %d.", dim_of(x)
  ), call, kind = "dimension")
  m_arg <- int_arg(m, "m", call)
  n_arg <- int_arg(n, "n", call)
  check_dimension("ElemT", m >= 0 && m < n, sprintf("Index `m` is out of bounds. Should be in [0, %s).", n_arg), call)
  apply_op("ElemT", x, extra = c(n_arg, m_arg), call = call)
}

#' @rdname elem
#' @export
extract <- function(x, m, d) {
  call <- sys.call()
  m_arg <- int_arg(m, "m", call)
  d_arg <- int_arg(d, "d", call)
  dim <- dim_of(x)
  check_dimension("Extract", m >= 0 && m < dim, sprintf("Index `m` is out of bounds. Should be in [0, %d).", dim), call)
  check_dimension("Extract", d >= 1 && m + d <= dim, sprintf(
    "Slice dimension is out of bounds. Input `d` should be in [1, %d-m] where `m` is the starting index.", dim
  ), call)
  apply_op("Extract", x, extra = c(m_arg, d_arg), call = call)
}

#' @rdname elem
#' @export
extractT <- function(x, m, d) {
  call <- sys.call()
  m_arg <- int_arg(m, "m", call)
  d_arg <- int_arg(d, "d", call)
  dim <- dim_of(x)
  check_dimension("ExtractT", d >= dim, sprintf(
    "Input `d` is out of bounds. Should be at least equal to `x` inner dimension, which is %d.", dim
  ), call)
  check_dimension("ExtractT", m >= 0 && m < d, "Index `m` is out of bounds. Should be in [0, `d`).", call)
  check_dimension("ExtractT", d - m >= dim, sprintf(
    "Slice dimension is out of bounds: `d` - `m` should be at least `x` inner dimension, which is %d.", dim
  ), call)
  apply_op("ExtractT", x, extra = c(m_arg, d_arg), call = call)
}

#' @rdname elem
#' @export
concat <- function(x, y) apply_op("Concat", x, y)

#' @rdname elem
#' @export
one_hot <- function(x, D) {
  call <- sys.call()
  if (is_complex_operand(x)) {
    keopsr_abort("formula", "`one_hot` operation can only be applied to `LazyTensor`, not `ComplexLazyTensor`", call)
  }
  check_dimension("OneHot", dim_of(x) == 1, sprintf(
    "One-hot encoding is only supported for scalar formulas. Got dimension %d.", dim_of(x)
  ), call, kind = "dimension")
  apply_op("OneHot", x, extra = int_arg(D, "D", call), call = call)
}

#' Small per-point matrices and tensors
#'
#' A LazyTensor of dimension n * m can hold an n x m matrix per point,
#' **row-major** (entry (r, c) is component r * m + c, 0-based), as in
#' KeOps; for an R matrix `A`, that vector is `as.vector(t(A))`.
#' `matvecmult(A, v)` is \eqn{A v}, `vecmatmult(v, A)` is \eqn{v' A},
#' `tensorprod(x, y)` is the outer product \eqn{x y'} (row-major);
#' `tensordot(x, y, dimfa, dimfb, contfa, contfb, permute)` contracts
#' row-major tensors of shapes `dimfa` and `dimfb` over the 0-based axes
#' `contfa` and `contfb` (as `numpy.tensordot`: free axes of x, then of y),
#' then permutes the output axes as KeOps does: axis m of the contracted
#' tensor goes to output position `permute[m + 1]` (the inverse of
#' `numpy.transpose(t, permute)`, which takes output axis k from axis
#' `permute[k + 1]`; the two agree for swaps of two axes);
#' `kron(x, y, dimfa, dimfb)` is the Kronecker product.
#'
#' @param A,v,x,y LazyTensors.
#' @param dimfa,dimfb shapes of x and y.
#' @param contfa,contfb 0-based axes to contract.
#' @param permute optional permutation of the output axes (0-based, KeOps'
#'   convention: see above).
#' @return A LazyTensor.
#' @export
#' @examples
#' A_i <- Vi(matrix(rnorm(8), 2, 4)) # one 2 x 2 matrix per point
#' v_j <- Vj(matrix(rnorm(6), 3, 2))
#' matvecmult(A_i, v_j)
matvecmult <- function(A, v) apply_op("MatVecMult", A, v)

#' @rdname matvecmult
#' @export
vecmatmult <- function(v, A) apply_op("VecMatMult", v, A)

#' @rdname matvecmult
#' @export
tensorprod <- function(x, y) apply_op("TensorProd", x, y)

#' @rdname matvecmult
#' @export
tensordot <- function(x, y, dimfa, dimfb, contfa, contfb, permute = NULL) {
  extra <- c(ind_arg(dimfa, "dimfa"), ind_arg(dimfb, "dimfb"), ind_arg(contfa, "contfa"), ind_arg(contfb, "contfb"))
  if (!is.null(permute)) extra <- c(extra, ind_arg(permute, "permute"))
  apply_op("TensorDot", x, y, extra = extra)
}

#' @rdname matvecmult
#' @export
kron <- function(x, y, dimfa, dimfb) {
  apply_op("Kron", x, y, extra = c(ind_arg(dimfa, "dimfa"), ind_arg(dimfb, "dimfb")))
}

#' Kernel matrix product
#'
#' `K %*% b` with a LazyTensor `K` (depending on i and j, of dimension 1) and
#' a matrix or vector `b` with one row per j is \eqn{\sum_j K_{ij} b_j}, the
#' same as `sum(K * Vj(b), index = "j")`. Without LazyTensors it is base R's
#' matrix product.
#'
#' @param x a LazyTensor, or anything base R multiplies.
#' @param y a matrix, a vector or a j-indexed LazyTensor.
#' @return A matrix with one row per i.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 2, 3))
#' y_j <- Vj(matrix(rnorm(9), 3, 3))
#' exp(-sqdist(x_i, y_j)) %*% c(1, 2, 3)
`%*%` <- function(x, y) {
  if (!is.LazyTensor(x)) {
    if (is.LazyTensor(y)) {
      keopsr_abort("input", paste0(
        "`x` input argument should be a LazyTensor, a vector or a scalar.",
        "\nIf you want to use a matrix, convert it to LazyTensor first."
      ))
    }
    return(base::`%*%`(x, y))
  }
  b <- if (is.LazyTensor(y)) y else Vj(as.matrix(y))
  sum(x * b, index = "j")
}

#' Complex LazyTensors
#'
#' `Re()`, `Im()`, `Mod()` (modulus), `Arg()` (angle) and `Conj()` work on
#' complex LazyTensors (see [LazyTensor()] with `is_complex = TRUE`).
#' `real2complex(x)` is \eqn{x + 0i}, `imag2complex(x)` is \eqn{0 + x i} and
#' `exp1j(x)` is \eqn{e^{ix}} for a real LazyTensor x. Reductions of complex
#' LazyTensors with `sum()` return complex matrices.
#'
#' @param z a LazyTensor.
#' @param x a real LazyTensor.
#' @return A LazyTensor (complex for `Conj()`, `real2complex()`,
#'   `imag2complex()` and `exp1j()`, real for the others).
#' @name Complex.LazyTensor
#' @export
#' @examples
#' z_i <- LazyTensor(matrix(complex(real = rnorm(4), imaginary = rnorm(4)), 2, 2), "i", is_complex = TRUE)
#' y_j <- Vj(matrix(rnorm(6), 3, 2))
#' sum(z_i * exp1j(y_j), index = "j")
Complex.LazyTensor <- function(z) {
  call <- sys.call()
  if (!is_complex_operand(z)) {
    return(switch(.Generic,
      Re = z, Conj = z, Im = 0 * z, Mod = apply_op("Abs", z, call = call),
      Arg = apply_op("Atan2", 0 * z, z, call = call)
    ))
  }
  switch(.Generic,
    Re = apply_op("ComplexReal", z, call = call),
    Im = apply_op("ComplexImag", z, call = call),
    Mod = apply_op("ComplexAbs", z, call = call),
    Arg = apply_op("ComplexAngle", z, call = call),
    Conj = apply_op("Conj", z, call = call, complex = TRUE)
  )
}

#' @rdname Complex.LazyTensor
#' @export
real2complex <- function(x) apply_op("Real2Complex", x, complex = TRUE)

#' @rdname Complex.LazyTensor
#' @export
imag2complex <- function(x) apply_op("Imag2Complex", x, complex = TRUE)

#' @rdname Complex.LazyTensor
#' @export
exp1j <- function(x) apply_op("ComplexExp1j", x, complex = TRUE)

#' The operations of the formula language
#'
#' `keops_operations()` lists every operation that formula strings (for
#' [keops_kernel()]) and LazyTensors can use: its name in formulas, the R
#' function that builds it, its usage, its dimension rule and what it
#' computes. The table comes from the Rust engine's own operation tables, so
#' it always matches what the engine accepts.
#'
#' Reductions (`Sum_Reduction`, `Min_ArgMin_Reduction`, ...) are listed in
#' [keops_kernel()]. Positions are 0-based; per-point matrices are row-major
#' (see [matvecmult()]); complex vectors hold interleaved real and imaginary
#' parts (see [Complex.LazyTensor]). Simplifications are applied when a
#' formula is read: constants are folded and identical sub-expressions are
#' computed once. Only rewrites exact for every IEEE input are made (such as
#' `x * 1` and `x / 1` to x): unlike KeOps, `x * 0`, `0 / x` and `x - x` are
#' not 0, since x may be infinite or NaN, so NA, NaN and Inf propagate as in
#' dense R.
#'
#' @eval operation_table_rd()
#' @return A data frame with columns `name`, `r_function`, `usage`,
#'   `dimension`, `description` and `family`.
#' @export
#' @examples
#' ops <- keops_operations()
#' ops[ops$family == "vector", c("name", "usage", "dimension")]
keops_operations <- function() {
  as.data.frame(keopsr_operation_table(), stringsAsFactors = FALSE)
}

# The operation table as an Rd section (used by roxygen when documenting).
operation_table_rd <- function() {
  ops <- keops_operations()
  esc <- function(s) gsub("([][])", "\\\\\\1", gsub("([%{}\\\\])", "\\\\\\1", s))
  rows <- sprintf(
    "\\code{%s} \\tab %s \\tab \\code{%s} \\tab %s \\tab %s \\cr",
    esc(ops$name), ifelse(nzchar(ops$r_function), paste0("\\code{", esc(ops$r_function), "}"), ""),
    esc(ops$usage), esc(ops$dimension), esc(ops$description)
  )
  c(
    "@section Operations:",
    "\\tabular{lllll}{",
    "\\strong{formula} \\tab \\strong{R} \\tab \\strong{usage} \\tab \\strong{dimension} \\tab \\strong{description} \\cr",
    rows,
    "}"
  )
}
