# Every operation of the formula language against a dense base-R reference:
# F(x_i, y_j) is evaluated for all pairs by a plain R function of the two
# rows, then reduced with base R. Each operation is checked inside a sum
# over j and inside a min over i, in float64 (1e-12) and float32 (1e-5), on
# data with zeros, negative numbers and large magnitudes.

set.seed(11)
M <- 7; N <- 9

# Points with edge values: a zero row, a negative row, a large row.
edge_points <- function(n, d) {
  p <- matrix(runif(n * d, -2, 2), n, d)
  p[1, ] <- 0
  p[2, ] <- -abs(p[2, ]) - 0.5
  p[3, ] <- p[3, ] * 20
  p
}

# F for all pairs: an M x N x dim array from a function of two rows.
dense_pairs_of <- function(fun, X, Y) {
  first <- fun(X[1, ], Y[1, ])
  out <- array(0, c(nrow(X), nrow(Y), length(first)))
  for (i in seq_len(nrow(X))) for (j in seq_len(nrow(Y))) out[i, j, ] <- fun(X[i, ], Y[j, ])
  out
}

# Min as keopsr defines it: NaN ranks after every number.
nan_last_min <- function(v) if (all(is.nan(v))) NaN else min(v[!is.nan(v)])

# Equal non-finite values at the same places, relative error below tol elsewhere.
expect_same_values <- function(actual, expected, tol) {
  actual <- unname(as.matrix(actual)); expected <- unname(as.matrix(expected))
  expect_equal(dim(actual), dim(expected))
  expect_identical(is.nan(actual), is.nan(expected))
  inf <- is.infinite(expected)
  expect_identical(actual[inf], expected[inf])
  ok <- is.finite(expected)
  err <- max(abs(actual[ok] - expected[ok]) / pmax(1, abs(expected[ok])), 0)
  expect_lt(err, tol)
}

check_vec <- function(lazy, dense, dx = 3, dy = 3, X = edge_points(M, dx), Y = edge_points(N, dy), f32 = TRUE) {
  b <- runif(N, 0.5, 1.5)
  D <- dense_pairs_of(dense, X, Y)
  sum_ref <- apply(D, c(1, 3), function(v) sum(v * b))
  min_ref <- apply(D, c(2, 3), nan_last_min)
  F <- lazy(Vi(X), Vj(Y))
  # F depends on both indices whatever the operation.
  F <- F + 0 * Vi(X[, 1]) + 0 * Vj(Y[, 1])
  for (precision in if (f32) c("float64", "float32") else "float64") {
    old <- keops_options(precision = precision)
    tol <- if (precision == "float64") 1e-12 else 1e-5
    expect_same_values(sum(F * Vj(b), index = "j"), matrix(sum_ref, M), tol)
    expect_same_values(min(F, index = "i"), matrix(min_ref, N), tol)
    keops_options(old)
  }
}

test_that("element-wise unary operations", {
  check_vec(function(x, y) exp(x - y), function(a, b) exp(a - b))
  check_vec(function(x, y) log(abs(x * y)), function(a, b) log(abs(a * b)))
  check_vec(function(x, y) sin(x) + cos(y), function(a, b) sin(a) + cos(b))
  check_vec(function(x, y) asin(clamp(x * y, -1, 1)), function(a, b) asin(pmin(pmax(a * b, -1), 1)))
  check_vec(function(x, y) acos(clamp(x - y, -1, 1)), function(a, b) acos(pmin(pmax(a - b, -1), 1)))
  check_vec(function(x, y) atan(x * y), function(a, b) atan(a * b))
  check_vec(function(x, y) sqrt(abs(x - y)), function(a, b) sqrt(abs(a - b)))
  check_vec(function(x, y) rsqrt(abs(x * y)), function(a, b) ifelse(a * b == 0, 0, 1 / sqrt(abs(a * b))))
  check_vec(function(x, y) inv(x + y + 0.25), function(a, b) 1 / (a + b + 0.25))
  check_vec(function(x, y) square(x - y) + abs(x), function(a, b) (a - b)^2 + abs(a))
  check_vec(function(x, y) sign(x * y) + step(x - y) + relu(y - x), function(a, b) sign(a * b) + (a - b >= 0) + pmax(b - a, 0))
  check_vec(function(x, y) xlogx(abs(x)) + sinxdivx(x - y), function(a, b) {
    ifelse(a == 0, 0, abs(a) * log(abs(a))) + ifelse(a == b, 1, sin(a - b) / (a - b))
  })
  check_vec(function(x, y) floor(x * 3) + round(y * 7, 1) + round(x), function(a, b) {
    v <- b * 7 * 10; floor(a * 3) + sign(v) * floor(abs(v) + 0.5) / 10 + sign(a) * floor(abs(a) + 0.5)
  }, f32 = FALSE)
  check_vec(function(x, y) (x - y)^3 + (x + 3)^-2 + x^0 - y^1, function(a, b) (a - b)^3 + (a + 3)^-2 + 1 - b)
  check_vec(function(x, y) (abs(x) + 0.1)^1.7 + (abs(y) + 1)^(x / 4), function(a, b) (abs(a) + 0.1)^1.7 + (abs(b) + 1)^(a / 4))
  check_vec(function(x, y) -x, function(a, b) -a)
})

test_that("element-wise binary and ternary operations", {
  check_vec(function(x, y) x + y * 2 - x / (abs(y) + 0.5), function(a, b) a + b * 2 - a / (abs(b) + 0.5))
  check_vec(function(x, y) atan2(x, y), function(a, b) atan2(a, b))
  check_vec(function(x, y) (x == y) + 2 * (x != y) + 4 * (x < y) + 8 * (x <= y) + 16 * (x > y) + 32 * (x >= y),
    function(a, b) (a == b) + 2 * (a != b) + 4 * (a < b) + 8 * (a <= b) + 16 * (a > b) + 32 * (a >= b))
  check_vec(function(x, y) ifelse(x - y, x, y * 2), function(a, b) base::ifelse(a - b >= 0, a, b * 2))
  check_vec(function(x, y) clamp(x, -1, y) + clampint(y, -1, 1), function(a, b) {
    # As KeOps: the lower bound wins when the bounds cross.
    base::ifelse(a < -1, -1, base::ifelse(a > b, b, a)) + pmin(pmax(b, -1), 1)
  })
  check_vec(function(x, y) mod(x * 5, 3, -1) + mod(y, 2), function(a, b) {
    a * 5 - 3 * floor((a * 5 + 1) / 3) + b - 2 * floor(b / 2)
  }, f32 = FALSE)
  # Broadcasting a scalar against a vector.
  check_vec(function(x, y) elem(x, 1) * y, function(a, b) a[2] * b)
})

test_that("vector operations", {
  check_vec(function(x, y) sum(x * y) + sqnorm2(x) + norm2(y) + (x | y), function(a, b) {
    sum(a * b) + sum(a^2) + sqrt(sum(b^2)) + sum(a * b)
  })
  check_vec(function(x, y) normalize(x - y), function(a, b) if (all(a == b)) 0 * a else (a - b) / sqrt(sum((a - b)^2)))
  check_vec(function(x, y) sqdist(x, y), function(a, b) sum((a - b)^2))
  check_vec(function(x, y) concat(max(x - y), concat(min(x * y), concat(argmax(x - y), argmin(y)))), function(a, b) {
    c(max(a - b), min(a * b), which.max(a - b) - 1, which.min(b) - 1)
  })
  s <- c(0.5, 2, 1.5)
  S <- crossprod(matrix(rnorm(9), 3)) # symmetric positive, row-major = column-major
  check_vec(function(x, y) weightedsqnorm(x, 2) + weightedsqnorm(x, s) + weightedsqnorm(x, as.vector(t(S))),
    function(a, b) 2 * sum(a^2) + sum(s * a^2) + drop(t(a) %*% S %*% a))
  check_vec(function(x, y) weightedsqdist(x, y, 0.5) + weightedsqdist(x, y, s) + weightedsqdist(x, y, as.vector(t(S))),
    function(a, b) { d <- a - b; 0.5 * sum(d^2) + sum(s * d^2) + drop(t(d) %*% S %*% d) })
  # Weights indexed by i: a different matrix per point.
  W <- matrix(runif(M * 9), M, 9)
  X <- edge_points(M, 3)
  check_vec(function(x, y) weightedsqnorm(x, Vi(W)), function(a, b) {
    i <- which(apply(X, 1, function(r) all(r == a)))[1]
    drop(t(a) %*% matrix(W[i, ], 3, 3, byrow = TRUE) %*% a)
  }, X = X)
})

test_that("indexing and assembly", {
  check_vec(function(x, y) elem(x, 0) + elem(y, 2), function(a, b) a[1] + b[3])
  check_vec(function(x, y) extract(x, 1, 2) * extract(y, 0, 2), function(a, b) a[2:3] * b[1:2])
  check_vec(function(x, y) elemT(elem(x, 2), 1, 4) + extractT(y, 1, 4), function(a, b) c(0, a[3], 0, 0) + c(0, b))
  check_vec(function(x, y) concat(x, y * 2), function(a, b) c(a, b * 2))
  check_vec(function(x, y) one_hot(elem(x, 0) + 1.6, 4) * elem(y, 1), function(a, b) {
    k <- round(a[1] + 1.6)
    v <- numeric(4)
    if (k >= 0 && k < 4) v[k + 1] <- 1
    v * b[2]
  }, f32 = FALSE)
})

test_that("per-point matrices are row-major", {
  # A_i is a 2 x 3 matrix per point, v_j a 3-vector.
  check_vec(function(A, v) matvecmult(A, v), function(a, v) drop(matrix(a, 2, 3, byrow = TRUE) %*% v), dx = 6, dy = 3)
  check_vec(function(v, A) vecmatmult(v, A), function(v, a) drop(v %*% matrix(a, 2, 3, byrow = TRUE)), dx = 2, dy = 6)
  check_vec(function(x, y) tensorprod(x, y), function(a, b) as.vector(t(outer(a, b))), dx = 2, dy = 3)
  check_vec(function(A, v) tensordot(A, v, c(2, 3), 3, 1, 0), function(a, v) drop(matrix(a, 2, 3, byrow = TRUE) %*% v), dx = 6, dy = 3)
  # Contract the first axes of two 2 x 3 tensors, then transpose the result.
  check_vec(function(A, B) tensordot(A, B, c(2, 3), c(2, 3), 0, 0, c(1, 0)), function(a, b) {
    res <- t(matrix(a, 2, 3, byrow = TRUE)) %*% matrix(b, 2, 3, byrow = TRUE)
    as.vector(t(t(res)))
  }, dx = 6, dy = 6)
  check_vec(function(A, B) kron(A, B, c(2, 2), c(1, 3)), function(a, b) {
    as.vector(t(kronecker(matrix(a, 2, 2, byrow = TRUE), matrix(b, 1, 3, byrow = TRUE))))
  }, dx = 4, dy = 3)
})

test_that("complex LazyTensors match R's complex arithmetic", {
  z <- matrix(complex(real = rnorm(M * 2), imaginary = rnorm(M * 2)), M, 2)
  w <- matrix(complex(real = rnorm(N * 2), imaginary = rnorm(N * 2)), N, 2)
  t_j <- matrix(rnorm(N * 2), N, 2)
  z_i <- LazyTensor(z, "i", is_complex = TRUE)
  w_j <- LazyTensor(w, "j", is_complex = TRUE)
  expect_s3_class(z_i, "ComplexLazyTensor")
  expect_equal(z_i$dimres, 2L)
  # Dense: all pairs, then sum over j.
  dense_sum <- function(f) {
    out <- matrix(0i, M, length(f(z[1, ], w[1, ], t_j[1, ])))
    for (i in seq_len(M)) for (j in seq_len(N)) out[i, ] <- out[i, ] + f(z[i, ], w[j, ], t_j[j, ])
    out
  }
  check <- function(lazy, dense) {
    got <- sum(lazy, index = "j")
    expect_true(is.complex(got))
    ref <- dense_sum(dense)
    expect_lt(max(Mod(got - ref) / pmax(1, Mod(ref))), 1e-12)
  }
  check(z_i * w_j + w_j / z_i - z_i, function(z, w, t) z * w + w / z - z)
  check(exp(z_i) * Conj(w_j) + 2 * z_i + z_i * Vj(t_j), function(z, w, t) exp(z) * Conj(w) + 2 * z + z * t)
  check(exp1j(Vj(t_j)) + real2complex(Vj(t_j)) + imag2complex(Mod(z_i)) + z_i / 2, function(z, w, t) {
    exp(1i * t) + t + 1i * Mod(z) + z / 2
  })
  check(z_i * (1 + 2i) + z_i + 1i + 0 * w_j, function(z, w, t) z * (1 + 2i) + z + 1i)
  check(sum(z_i * w_j), function(z, w, t) sum(z * w))
  # Real-valued functions of complex LazyTensors.
  real <- sum(Re(z_i * w_j) + Im(w_j) + Mod(z_i - w_j) + Arg(w_j) + abs(z_i), index = "j")
  ref <- matrix(0, M, 2)
  for (i in seq_len(M)) for (j in seq_len(N)) {
    ref[i, ] <- ref[i, ] + Re(z[i, ] * w[j, ]) + Im(w[j, ]) + Mod(z[i, ] - w[j, ]) + Arg(w[j, ]) + Mod(z[i, ])
  }
  expect_close(real, ref)
})

test_that("complex data are never silently made real", {
  z <- matrix(1i, 3, 2)
  expect_s3_class(Vi(z), "ComplexLazyTensor")
  expect_equal(sum(Vi(z) * Vj(matrix(1, 2, 1)), index = "j"), 2 * z)
  expect_s3_class(Vi(matrix(1, 3, 2)) + 1i, "ComplexLazyTensor") # a complex constant makes the result complex
  expect_error(Vi(matrix(1, 3, 2)) + z, "convert it to LazyTensor", class = "keopsr_input_error")
  expect_error(min(LazyTensor(z, "i", is_complex = TRUE) * Vj(matrix(1, 2, 2)), index = "j"), class = "keopsr_reduction_error")
  expect_error(sin(LazyTensor(z, "i", is_complex = TRUE)), class = "keopsr_formula_error")
})

test_that("invalid combinations give classed errors naming the operation", {
  x_i <- Vi(matrix(1, 3, 3)); y_j <- Vj(matrix(1, 4, 2))
  expect_error(elem(x_i, 3), "Elem", class = "keopsr_formula_error")
  expect_error(extract(x_i, 2, 2), "Extract", class = "keopsr_formula_error")
  expect_error(elem(x_i, 1.5), class = "keopsr_formula_error")
  expect_error(matvecmult(x_i, y_j), "MatVecMult", class = "keopsr_dimension_error")
  expect_error(weightedsqnorm(x_i, y_j), "WeightedSqNorm", class = "keopsr_dimension_error")
  expect_error(clamp(x_i, y_j, 1), "Clamp", class = "keopsr_dimension_error")
  expect_error(one_hot(x_i, 3), "OneHot", class = "keopsr_dimension_error")
  expect_error(tensordot(x_i, y_j, 3, 2, 0, 0), "TensorDot", class = "keopsr_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(ComplexReal(x), 1)", c("x = Vi(3)")), "complex", class = "keopsr_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(Elem(x, y), 1)", c("x = Vi(3)", "y = Vj(1)")), "integer", class = "keopsr_formula_error")
})

test_that("decimal literals and simplification in formula strings", {
  x <- matrix(runif(12), 4, 3); y <- matrix(runif(15), 5, 3)
  op <- keops_kernel("Sum_Reduction(Exp(-0.37 * SqDist(x, y)) * (x - x + 1.5) + 0 * Log(x), 1)", c("x = Vi(3)", "y = Vj(3)"))
  expect_close(op(list(x, y)), 1.5 * exp(-0.37 * dense_sqdist(x, y)) %*% matrix(1, 5, 3))
})

test_that("the operation table documents every operation the engine accepts", {
  ops <- keops_operations()
  expect_true(all(c("Exp", "Powf", "IfElse", "TensorDot", "ComplexMult", "OneHot", "WeightedSqDist") %in% ops$name))
  expect_false(anyDuplicated(ops$name) > 0)
  # Every listed R function exists in the package (or is an R operator/generic).
  r_names <- setdiff(unique(ops$r_function[nzchar(ops$r_function)]), c("+", "-", "*", "/", "^", "==", "!=", "<", "<="))
  exported <- getNamespaceExports("keopsr")
  base_generics <- c("exp", "log", "sqrt", "abs", "sin", "cos", "asin", "acos", "atan", "sign", "floor", "round",
    "sum", "max", "min", "Re", "Im", "Mod", "Arg", "Conj", "|")
  expect_true(all(r_names %in% c(exported, base_generics)), info = paste(setdiff(r_names, c(exported, base_generics)), collapse = ", "))
  # The installed help page was generated from the same table (regenerate
  # man/ with tools/document.R when it changes).
  rd <- paste(capture.output(tools::Rd2txt(tools::Rd_db("keopsr")[["keops_operations.Rd"]], options = list(underline_titles = FALSE))), collapse = "\n")
  for (name in ops$name) expect_true(grepl(name, rd, fixed = TRUE), info = name)
})
