# Gradients against central finite differences of the value (float64,
# relative error below 1e-6), for every reduction and every kind of variable.

set.seed(5)
M <- 6; N <- 8
x <- matrix(rnorm(M * 2), M, 2); y <- matrix(rnorm(N * 2), N, 2)
b <- runif(N, 0.5, 1.5); p <- 0.7

# Central finite differences of a scalar function of a matrix.
fd_grad <- function(fun, v, h = 1e-6) {
  g <- v
  for (k in seq_along(v)) {
    vp <- v; vp[k] <- vp[k] + h
    vm <- v; vm[k] <- vm[k] - h
    g[k] <- (fun(vp) - fun(vm)) / (2 * h)
  }
  g
}

expect_grad <- function(got, expected, tol = 1e-6) {
  expect_equal(dim(as.matrix(got)), dim(as.matrix(expected)))
  expect_lt(max(abs(got - expected) / pmax(1, abs(expected))), tol)
}

args <- c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "p = Pm(1)")
inputs <- list(x = x, y = y, b = b, p = p)

# keops_grad of `formula` for every variable against finite differences.
check_reduction <- function(formula) {
  op <- keops_kernel(formula, args)
  out <- op(inputs)
  values <- if (is.list(out)) out$values else out
  eta <- matrix(rnorm(length(values)), nrow(as.matrix(values)))
  for (v in names(inputs)) {
    objective <- function(z) {
      inp <- inputs; inp[[v]] <- z
      res <- op(inp)
      sum(eta * (if (is.list(res)) res$values else res))
    }
    got <- keops_grad(op, v)(c(inputs, list(eta = eta)))
    ref <- fd_grad(objective, inputs[[v]])
    expect_grad(got, if (v == "p") matrix(ref, 1) else as.matrix(ref))
  }
}

test_that("gradients of every reduction match finite differences", {
  check_reduction("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)")
  check_reduction("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 0)")
  check_reduction("Sum_Reduction(Concat(Sin(x * y) * b, Norm2(x - y) * p), 1)")
  check_reduction("LogSumExp_Reduction(-SqDist(x, y) * p + b, 1)")
  check_reduction("LogSumExp_Reduction(-SqDist(x, y) * p, 0, Exp(b) + Square(y))")
  check_reduction("SumSoftMaxWeight_Reduction(-SqDist(x, y) * p, 1, y * b)")
  check_reduction("Min_Reduction(SqDist(x, y) * p + b, 1)")
  check_reduction("Max_Reduction(x * y * p + b, 0)")
  check_reduction("Min_ArgMin_Reduction(SqDist(x, y) + b * p, 1)")
  check_reduction("KMin_Reduction(SqDist(x, y) + b * p, 3, 1)")
  check_reduction("KMin_ArgKMin_Reduction(x - y + p * b, 2, 0)")
})

test_that("arg reductions have zero gradient and take an eta like any other", {
  op <- keops_kernel("ArgMin_Reduction(SqDist(x, y) + b * p, 1)", args)
  expect_equal(keops_grad(op, "y")(c(inputs, list(eta = rnorm(M)))), matrix(0, N, 2))
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 3, 1)", args)
  expect_equal(keops_grad(op, "x")(c(inputs, list(eta = matrix(1, M, 3)))), matrix(0, M, 2))
  expect_error(keops_grad(op, "x")(c(inputs, list(eta = rnorm(M)))), class = "keopsr_input_error")
})

test_that("a parameter's gradient takes rkeops' one-value eta, used for every output row", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)", args)
  g <- keops_grad(op, "p")
  expect_equal(g(c(inputs, list(eta = 2))), g(c(inputs, list(eta = rep(2, M)))))
  expect_grad(g(c(inputs, list(eta = 2))), matrix(fd_grad(function(z) 2 * sum(op(list(x, y, b, z))), p), 1))
  expect_equal(g(c(inputs, list(eta = 2)))[1, 1], g(list(t(x), t(y), b, p, 2), inner_dim = "row")[1, 1])
  op2 <- keops_kernel("Sum_Reduction(Concat(b, b * p), 1)", args)
  expect_equal(keops_grad(op2, "p")(c(inputs, list(eta = c(1, 3)))), matrix(3 * M * sum(b), 1, 1))
  # a variable of an index keeps its strict eta: one value per output row
  expect_error(keops_grad(op, "x")(c(inputs, list(eta = 2))), class = "keopsr_input_error")
})

test_that("keops_grad of keops_grad is the second-order gradient (Hessian times directions)", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) * p) * b, 1)", args)
  gx <- keops_grad(op, "x")
  gxx <- keops_grad(gx, "x")
  expect_equal(gxx()$eta, "eta2")
  expect_match(gxx()$formula, "^Grad\\(Grad\\(Sum_Reduction")
  eta <- rnorm(M); u <- matrix(rnorm(M * 2), M, 2)
  got <- gxx(c(inputs, list(eta = eta, eta2 = u)))
  ref <- fd_grad(function(z) sum(u * gx(list(z, y, b, p, eta))), x)
  expect_grad(got, ref)
  expect_equal(gxx(list(x, y, b, p, eta, u)), got)
  # mixed: d/dy of <u, d/dx>, and d/dp
  gxy <- keops_grad(gx, "y")
  expect_grad(gxy(list(x, y, b, p, eta, u)), fd_grad(function(z) sum(u * gx(list(x, z, b, p, eta))), y))
  gxp <- keops_grad(gx, "p")
  expect_grad(gxp(list(x, y, b, p, eta, u)), matrix(fd_grad(function(z) sum(u * gx(list(x, y, b, z, eta))), p), 1))
})

test_that("keops_grad works on formulas with inline variables", {
  op <- keops_kernel("Sum_Reduction(SqNorm2(Vi(0,2) - Vj(1,2)), 1)")
  g <- keops_grad(op, 0)
  e <- rnorm(M)
  expect_grad(g(list(x, y, e)), fd_grad(function(z) sum(e * op(list(z, y))), x))
  expect_grad(keops_grad(g, 0)(list(x, y, e, x)), fd_grad(function(z) sum(x * g(list(z, y, e))), x))
})

test_that("keops_grad takes variables by name or 0-based position, eta last or named", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", args[1:3])
  eta <- rnorm(M)
  by_name <- keops_grad(op, "y")(list(x, y, b, eta))
  expect_equal(keops_grad(op, 1)(list(x, y, b, eta)), by_name)
  expect_equal(keops_grad(op, "y")(list(eta = eta, b = b, y = y, x = x)), by_name)
  expect_equal(keops_grad(op, "y")()$var, "y")
  expect_error(keops_grad(op, "z"), class = "keopsr_input_error")
  expect_error(keops_grad(op, 3), class = "keopsr_input_error")
  expect_error(keops_grad(op, "x")(list(x, y, b)), class = "keopsr_input_error")
  expect_error(keops_grad(op, "x")(list(x, y, b, rnorm(M + 1))), class = "keopsr_input_error")
  expect_error(keops_grad(function() 1, "x"), class = "keopsr_input_error")
})

test_that("grad() and keops_value_and_grad() on LazyTensors", {
  x_i <- Vi(x); y_j <- Vj(y); s <- Pm(p)
  K <- exp(-sqdist(x_i, y_j) * s) * Vj(b)
  eta <- rnorm(M)
  dense <- function(x, y, p) exp(-dense_sqdist(x, y) * p) %*% b
  expect_grad(grad(K, eta, "Sum", x_i, "j"), fd_grad(function(z) sum(eta * dense(z, y, p)), x))
  expect_grad(grad(K, eta, "Sum", y_j, "j"), fd_grad(function(z) sum(eta * dense(x, z, p)), y))
  vg <- keops_value_and_grad(K, "j", list(x = x_i, y = y_j, s = s), eta = eta)
  expect_equal(vg$value, sum(eta * dense(x, y, p)), tolerance = 1e-12)
  expect_close(vg$reduction, dense(x, y, p))
  expect_grad(vg$gradients$x, fd_grad(function(z) sum(eta * dense(z, y, p)), x))
  expect_grad(vg$gradients$y, fd_grad(function(z) sum(eta * dense(x, z, p)), y))
  expect_grad(vg$gradients$s, matrix(fd_grad(function(z) sum(eta * dense(x, y, z)), p), 1))
  # A LogSumExp objective, as in a likelihood.
  L <- -sqdist(x_i, y_j) * s
  vg <- keops_value_and_grad(L, "j", list(s), reduction = "LogSumExp")
  lse <- function(p) sum(apply(-dense_sqdist(x, y) * p, 1, function(r) max(r) + log(sum(exp(r - max(r))))))
  expect_equal(vg$value, lse(p), tolerance = 1e-12)
  expect_grad(vg$gradients[[1]], matrix(fd_grad(lse, p), 1))
  expect_error(grad(K, eta, "Sum", Vi(x), "j"), class = "keopsr_input_error")
})

test_that("Grad and Diff in formula strings, to second order", {
  a <- c("x = Vi(2)", "y = Vj(2)", "u = Vi(2)", "e = Vi(1)")
  u <- matrix(rnorm(M * 2), M, 2); e <- rnorm(M)
  F <- "Exp(-SqDist(x, y)) * Sin((x | y))"
  base <- keops_kernel(sprintf("Sum_Reduction(%s, 1)", F), a)
  g1 <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, x, e), 1)", F), a)
  diff <- keops_kernel(sprintf("Sum_Reduction(Diff(%s, x, u), 1)", F), a)
  hvp <- keops_kernel(sprintf("Sum_Reduction(Grad(Grad(%s, x, e), x, u), 1)", F), a)
  h <- 1e-6
  along <- function(op, t) op(list(x + t * u, y, u, e))
  expect_grad(diff(list(x, y, u, e)), (along(base, h) - along(base, -h)) / (2 * h))
  expect_grad(hvp(list(x, y, u, e)), (along(g1, h) - along(g1, -h)) / (2 * h))
})

test_that("gradient edge cases: zeros, ties, -Inf", {
  # Rsqrt and Norm2 at zero: derivative 0 (a subgradient), never NaN.
  z <- matrix(0, 3, 2)
  op <- keops_kernel("Sum_Reduction(Norm2(x - y) + Rsqrt(SqNorm2(x - y)) + Sqrt(SqNorm2(x)), 1)", c("x = Vi(2)", "y = Vj(2)"))
  expect_equal(keops_grad(op, "x")(list(z, z, rep(1, 3))), matrix(0, 3, 2))
  # Min on ties: the gradient goes to the smallest index only.
  yy <- matrix(c(1, 1, 2), 3, 1)
  op <- keops_kernel("Min_Reduction(SqDist(x, y), 1)", c("x = Vi(1)", "y = Vj(1)"))
  expect_equal(keops_grad(op, "y")(list(matrix(0, 1, 1), yy, 1)), matrix(c(2, 0, 0), 3, 1))
  # LogSumExp with -Inf entries: they get zero weight, the gradient stays finite.
  op <- keops_kernel("LogSumExp_Reduction(Log(b) * x, 1)", c("x = Vi(1)", "b = Vj(1)"))
  g <- keops_grad(op, "x")(list(matrix(2, 2, 1), c(0, 1, 2), rep(1, 2)))
  expect_equal(g, matrix(log(2) * 4 / 5, 2, 1), tolerance = 1e-12)
})

test_that("gradients need no compilation: nothing is written to disk", {
  cache <- tools::R_user_dir("keopsr", "cache")
  before <- list.files(c(tempdir(), if (dir.exists(cache)) cache), recursive = TRUE, all.files = TRUE)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) * 0.123456) * b, 1)", args[1:3])
  expect_true(all(is.finite(keops_grad(op, "y")(list(x, y, b, rep(1, M))))))
  after <- list.files(c(tempdir(), if (dir.exists(cache)) cache), recursive = TRUE, all.files = TRUE)
  expect_identical(after, before)
})

test_that("grad() takes a LazyTensor formula as gradin, never dropping it", {
  set.seed(21)
  x <- matrix(rnorm(12), 6, 2); y <- matrix(rnorm(10), 5, 2); e <- rnorm(6); e2 <- rnorm(6)
  x_i <- Vi(x); K <- exp(-sqdist(x_i, Vj(y)))
  expected <- grad(K, 2 * e * e2, "Sum", x_i, "j")
  expect_close(grad(K, Vi(e) * 2 * Vi(e2), "Sum", x_i, "j"), expected)
  expect_close(grad(K, Vi(e), "Sum", x_i, "j"), grad(K, e, "Sum", x_i, "j"))
  expect_close(grad(K, Pm(3), "Sum", x_i, "j"), grad(K, rep(3, 6), "Sum", x_i, "j"))
  expect_error(grad(K, Vj(rnorm(5)), "Sum", x_i, "j"), "should be indexed by 'i'", class = "keopsr_input_error")
})

test_that("gradient operators refuse ranges with a classed error", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x = Vi(2)", "y = Vj(2)"))
  g <- keops_grad(op, "x")
  expect_error(g(list(matrix(0, 2, 2), matrix(0, 3, 2), c(1, 1)), ranges = list()), "ranges", class = "keopsr_input_error")
})
