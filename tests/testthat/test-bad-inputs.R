# Bad inputs, table-driven: each gives a documented result or a classed
# keopsr error, and the R session survives (the table runs in a callr child,
# so a crash would show as a failed child, not a dead test run).

bad_input_cases <- function() {
  x <- matrix(rnorm(12), 6, 2); y <- matrix(rnorm(10), 5, 2)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)"))
  knn <- function(xx, K = 2) argKmin(sqdist(Vi(xx), Vj(y)), K, "j")
  list(
    # Special values are data: they propagate as in dense R.
    na_data = list(function() op(list(replace(x, 1, NA), y, rnorm(5)))[1], "value", NA_real_),
    inf_data = list(function() op(list(x, y, c(Inf, 1, 1, 1, 1)))[2], "value", Inf),
    nan_weight = list(function() is.nan(op(list(x, y, c(NaN, 1, 1, 1, 1)))[3]), "value", TRUE),
    # Shapes.
    zero_rows = list(function() dim(op(list(x[0, , drop = FALSE], y, rnorm(5)))), "value", c(0L, 1L)),
    zero_rows_reduced = list(function() op(list(x, y[0, , drop = FALSE], numeric(0)))[1], "value", 0),
    one_by_one = list(function() dim(sum(Vi(matrix(1)) * Vj(matrix(2)), index = "j")), "value", c(1L, 1L)),
    wrong_columns = list(function() op(list(x, y[, 1], rnorm(5))), "keopsr_input_error"),
    wrong_rows = list(function() op(list(x, y, rnorm(4))), "keopsr_input_error"),
    array_3d = list(function() op(list(array(0, c(6, 2, 1)), y, rnorm(5))), "keopsr_input_error"),
    # Types.
    integer_matrix = list(function() {
      yi <- round(y * 10)
      storage.mode(yi) <- "integer"
      op(list(x, yi, 1:5))[1] > -1
    }, "value", TRUE),
    logical_matrix = list(function() op(list(x > 0, y, rnorm(5))), "keopsr_input_error"),
    data_frame = list(function() op(list(as.data.frame(x), y, rnorm(5))), "keopsr_input_error"),
    list_input = list(function() op(list(as.list(x), y, rnorm(5))), "keopsr_input_error"),
    factor_input = list(function() op(list(x, y, factor(1:5))), "keopsr_input_error"),
    date_input = list(function() op(list(x, y, Sys.Date() + 1:5)), "keopsr_input_error"),
    complex_input = list(function() op(list(x, y + 1i, rnorm(5))), "keopsr_input_error"),
    character_input = list(function() op(list(x, y, letters[1:5])), "keopsr_input_error"),
    lazy_logical = list(function() Vi(x > 0), "keopsr_input_error"),
    lazy_data_frame = list(function() Vi(as.data.frame(x)), "keopsr_input_error"),
    lazy_complex = list(function() class(Vi(x + 1i))[1], "value", "ComplexLazyTensor"),
    lazy_matrix_no_index = list(function() LazyTensor(x), "keopsr_input_error"),
    lazy_empty = list(function() Vi(matrix(0, 3, 0)), "keopsr_dimension_error"),
    # K.
    k_zero = list(function() knn(x, 0), "keopsr_reduction_error"),
    k_negative = list(function() knn(x, -1), "keopsr_reduction_error"),
    k_too_large = list(function() knn(x, 6), "keopsr_reduction_error"),
    k_na = list(function() knn(x, NA), "keopsr_reduction_error"),
    k_equal_n = list(function() ncol(knn(x, 5)), "value", 5L),
    # Formulas and options.
    formula_na = list(function() keops_kernel(NA_character_), "keopsr_formula_error"),
    formula_two = list(function() keops_kernel(c("a", "b")), "keopsr_formula_error"),
    args_na = list(function() keops_kernel("Sum_Reduction(x, 1)", NA_character_), "keopsr_formula_error"),
    threads_inf = list(function() keops_options(threads = Inf), "keopsr_option_error"),
    threads_nan = list(function() keops_options(threads = NaN), "keopsr_option_error"),
    threads_text = list(function() keops_options(threads = "2"), "keopsr_option_error"),
    nvrtc_not_a_library = list(function() keops_options(nvrtc = "/etc/passwd"), "keopsr_option_error"),
    nvrtc_missing = list(function() keops_options(nvrtc = "/nonexistent/libnvrtc.so"), "keopsr_option_error"),
    linop_character = list(function() keops_linop(exp(-sqdist(Vi(x), Vj(x))))(letters[1:6]), "keopsr_input_error"),
    linop_wrong_length = list(function() keops_linop(exp(-sqdist(Vi(x), Vj(x))))(1:3), "keopsr_input_error"),
    grad_date = list(function() keops_grad(op, "x")(list(x, y, Sys.Date() + 1:5, rnorm(6))), "keopsr_input_error"),
    solve_data_frame = list(function() {
      keops_solve(keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")),
        list(as.data.frame(x), x, rnorm(6)), rnorm(6), "b", alpha = 1)
    }, "keopsr_input_error"),
    grad_ranges = list(function() keops_grad(op, "x")(list(x, y, rnorm(5), rnorm(6)), ranges = list()), "keopsr_input_error"),
    deep_string = list(function() keops_kernel(paste0(strrep("Exp(", 5000), "x", strrep(")", 5000)), "x = Vi(1)"), "keopsr_formula_error"),
    spaces = list(function() keops_kernel(strrep(" ", 1e6)), "keopsr_formula_error")
  )
}

test_that("every bad input gives its documented result or classed error, and the session survives", {
  skip_if_not_installed("callr")
  cases <- bad_input_cases
  outcome <- callr::r(function(cases) {
    library(keopsr)
    set.seed(1)
    lapply(cases(), function(case) {
      tryCatch(list(value = case[[1]]()), error = function(e) list(class = class(e)[1], message = conditionMessage(e)))
    })
  }, args = list(cases = cases))
  expected <- cases()
  expect_setequal(names(outcome), names(expected))
  for (name in names(expected)) {
    want <- expected[[name]]
    got <- outcome[[name]]
    if (identical(want[[2]], "value")) {
      expect_identical(got$value, want[[3]], label = name)
    } else {
      expect_identical(got$class, want[[2]], label = paste(name, "->", got$message))
    }
  }
})
