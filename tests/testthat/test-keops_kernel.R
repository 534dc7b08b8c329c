set.seed(3)
x <- random_points(40, 3); y <- random_points(60, 3); b <- rnorm(60)
gauss <- "Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 1)"
gauss_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)")

test_that("keops_kernel evaluates formula strings like the LazyTensor API", {
  op <- keops_kernel(gauss, gauss_args)
  ref <- exp(-dense_sqdist(x, y) / 2) %*% b
  expect_close(op(list(x, y, b)), ref)
  expect_close(op(list(b = b, x = x, y = y)), ref) # named, any order
  expect_equal(op(list(x, y, b)), sum(exp(-sqdist(Vi(x), Vj(y)) / 2) * Vj(b), index = "j"))
})

test_that("op() with no input describes the formula", {
  info <- keops_kernel(gauss, gauss_args)()
  expect_equal(info$formula, gauss)
  expect_equal(info$args_info$name, c("x", "y", "b"))
  expect_equal(info$args_info$category, c("Vi", "Vj", "Vj"))
  expect_equal(info$args_info$dim, c(3L, 3L, 1L))
})

test_that("positional variables, parameters, decimals and axis 0", {
  op <- keops_kernel("Sum_Reduction(Exp(-Vi(0,3)|Vj(1,3)) * Pm(2,1) + 0.25, 0)")
  ref <- t(exp(-x %*% t(y)) * 1.5 + 0.25)
  expect_close(op(list(x, y, 1.5)), rowSums(ref))
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 3, 1)", c("x = Vi(3)", "y = Vj(3)"))
  expect_equal(unname(op(list(x, y))), dense_reduce(dense_sqdist(x, y), "ArgKMin", K = 3))
  op <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 2, 0)", c("x = Var(0, 3, 0)", "y = Var(1, 3, 1)"))
  res <- op(list(x, y))
  expect_equal(unname(res$indices), dense_reduce(t(dense_sqdist(x, y)), "ArgKMin", K = 2))
})

test_that("integer input is converted", {
  op <- keops_kernel("Sum_Reduction(x * y, 1)", c("x = Vi(1)", "y = Vj(1)"))
  expect_equal(op(list(1:3, 1:4)), matrix(c(10, 20, 30)))
})

test_that("a parameter given a long vector is an error before its data are read", {
  op <- keops_kernel("Sum_Reduction(x * p, 1)", c("x = Vi(1)", "y = Vj(1)", "p = Pm(1)"))
  p <- 1:2e6 # an ALTREP sequence: reading its data would expand it
  expect_error(op(list(rnorm(3), rnorm(4), p)), "needs 1 value", class = "keopsr_input_error")
  expect_match(paste(capture.output(.Internal(inspect(p))), collapse = ""), "(compact)", fixed = TRUE)
})
