# Bad input gives a classed R error naming the argument; never a crash.

x <- random_points(10, 3); y <- random_points(12, 3)
gauss <- keops_kernel("Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 1)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))

test_that("malformed formulas are formula errors with a position", {
  expect_error(keops_kernel("Sum_Reduction(Exp(x, 1)", "x = Vi(1)"), class = "keopsr_formula_error")
  expect_error(keops_kernel("Sum_Reduction(Exp(x), 1) +", "x = Vi(1)"), "column", class = "keopsr_formula_error")
  expect_error(keops_kernel("Sum_Reduction(Foo(x), 1)", "x = Vi(1)"), "unknown function 'Foo'", class = "keopsr_formula_error")
  expect_error(keops_kernel("Sum_Reduction(z, 1)", "x = Vi(1)"), "unknown variable 'z'", class = "keopsr_formula_error")
  expect_error(keops_kernel("Exp(x)", "x = Vi(1)"), "must be a reduction", class = "keopsr_formula_error")
  expect_error(keops_kernel("Sum_Reduction(x, 1)", "x = Vq(1)"), class = "keopsr_formula_error")
  expect_error(keops_kernel("Sum_Reduction(x, 3)", "x = Vi(1)"), "axis", class = "keopsr_formula_error")
})

test_that("unknown reductions are formula errors", {
  expect_error(keops_kernel("Mean_Reduction(x, 1)", "x = Vi(1)"), "unknown reduction", class = "keopsr_formula_error")
  expect_error(reduction.LazyTensor(Vi(x), "Mean", "j"), class = "keopsr_formula_error")
  expect_error(sum(Vi(x), index = "k"), class = "keopsr_reduction_error")
})

test_that("dimension mismatches are caught when the formula is written", {
  expect_error(Vi(x) + Vj(y[, 1:2]), "dimension", class = "keopsr_dimension_error")
  expect_error(sqdist(Vi(x), Vj(y[, 1:2])), class = "keopsr_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(x - y, 1)", c("x = Vi(3)", "y = Vj(2)")), class = "keopsr_dimension_error")
})

test_that("inputs that do not match the declarations are input errors", {
  b <- rnorm(12)
  expect_error(gauss(list(x, y)), "3 argument", class = "keopsr_input_error")
  expect_error(gauss(list(x, y[, 1:2], b)), "'y'", class = "keopsr_input_error")
  expect_error(gauss(list(x, y, b[1:5])), "same number of rows", class = "keopsr_input_error")
  expect_error(gauss(list(x, matrix(letters[1:36], 12), b)), "numeric", class = "keopsr_input_error")
  expect_error(gauss(list(x, y + 0i, b)), "complex", class = "keopsr_input_error")
  expect_error(gauss(list(x, y, list(1))), class = "keopsr_input_error")
  expect_error(gauss(list(x = x, y = y)), "no input named", class = "keopsr_input_error")
  expect_error(gauss("x"), class = "keopsr_input_error")
  expect_s3_class(LazyTensor(matrix(0i, 2, 2), "i"), "ComplexLazyTensor")
  expect_error(LazyTensor(matrix(0, 2, 2)), "missing `index` argument", class = "keopsr_input_error")
  expect_error(Pm(matrix(0, 2, 2)), "missing `index` argument", class = "keopsr_input_error")
  expect_error(LazyTensor("a", "i"), class = "keopsr_input_error")
  expect_error(LazyTensor(x, "k"), class = "keopsr_input_error")
  expect_error(Vi(x) + "a", class = "keopsr_input_error")
})

test_that("K larger than the reduced size is a reduction error", {
  expect_error(argKmin(sqdist(Vi(x), Vj(y)), K = 13, index = "j"), "larger than", class = "keopsr_reduction_error")
  expect_error(argKmin(sqdist(Vi(x), Vj(y)), K = 0, index = "j"), class = "keopsr_reduction_error")
  expect_error(argKmin(sqdist(Vi(x), Vj(y)), K = 2.5, index = "j"), class = "keopsr_reduction_error")
})

test_that("errors carry the user's call and the keopsr_error class", {
  err <- tryCatch(argKmin(sqdist(Vi(x), Vj(y)), K = 99, index = "j"), error = identity)
  expect_s3_class(err, "keopsr_error")
  expect_match(deparse(conditionCall(err))[1], "argKmin")
})

test_that("options are validated", {
  expect_error(keops_options(precision = "float16"), class = "keopsr_option_error")
  expect_error(keops_options(threads = -1), class = "keopsr_option_error")
  expect_error(keops_options(threads = 1e6), "at most", class = "keopsr_option_error")
  expect_error(keops_options(foo = 1), "unknown option", class = "keopsr_option_error")
  expect_error(keops_options(backend = "gpu"), class = "keopsr_backend_error")
})

test_that("absurd formulas are errors, not crashes", {
  deep <- paste0("Sum_Reduction(", strrep("(", 3000), "x", strrep(")", 3000), ", 1)")
  expect_error(keops_kernel(deep, "x = Vi(1)"), "nested", class = "keopsr_formula_error")
  expect_error(keops_kernel("Sum_Reduction(Vi(99999999999, 2), 1)"), "too large", class = "keopsr_formula_error")
})
