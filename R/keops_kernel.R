#' Compile a KeOps formula string into an R function
#'
#' `keops_kernel(formula, args)` checks a formula such as
#' `"Sum_Reduction(Exp(-SqDist(x,y)/2)*b, 1)"` with its argument declarations
#' (`c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)")`) and returns a function that
#' evaluates it on a list of matrices. Nothing is compiled: the first call is
#' as fast as the next ones.
#'
#' The formula language: variables declared in `args` (`Vi(dim)`, `Vj(dim)`,
#' `Pm(dim)`, also `Vi(pos, dim)` and `Var(pos, dim, cat)`) or written inline
#' with a 0-based position (`Vi(0, 3)`); numbers (`2`, `0.5`, `1e-3`); infix
#' `+ - * /`, unary `-`, `(x | y)` (scalar product); functions `Exp`, `Log`,
#' `Sqrt`, `Rsqrt`, `Inv`, `Square`, `Pow(x, n)`, `Abs`, `Sin`, `Cos`, `Sum`,
#' `SqNorm2`, `Norm2`, `SqDist`, `Scalprod`, `IntCst(n)`; and one outer
#' reduction: `Sum_Reduction(F, axis)`, `Min_`, `Max_`, `ArgMin_`, `ArgMax_`,
#' `Min_ArgMin_`, `Max_ArgMax_Reduction(F, axis)`, `KMin_`, `ArgKMin_`,
#' `KMin_ArgKMin_Reduction(F, K, axis)`, `LogSumExp_Reduction(F, axis[, G])`,
#' `SumSoftMaxWeight_Reduction(F, axis, G)`. `axis = 0` reduces over i,
#' `axis = 1` over j.
#'
#' @param formula the formula string.
#' @param args the argument declarations, in the order of the inputs.
#' @param sum_scheme accumulation of sums, `"auto"` to follow
#'   [keops_options()], or `"block"`, `"kahan"`, `"direct"`.
#' @return A function `op(input, inner_dim = "col", ranges = NULL)`:
#'   `input` is a list of matrices (one row per point) and vectors,
#'   positional or named after the arguments; `inner_dim = "row"` takes
#'   matrices with one point per column instead, as rkeops allows (the
#'   result keeps one row per point); `ranges` makes the reduction
#'   block-sparse (see [keops_ranges()]). `op()` with no argument returns
#'   the formula, the arguments, their types and the summation scheme (the
#'   four fields of rkeops' operators).
#' @export
#' @examples
#' op <- keops_kernel(
#'   "Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)",
#'   c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)")
#' )
#' x <- matrix(rnorm(30), 10, 3)
#' y <- matrix(rnorm(60), 20, 3)
#' op(list(x, y, rnorm(20)))
#' op()
keops_kernel <- function(formula, args = character(), sum_scheme = "auto") {
  call <- sys.call()
  if (!is.character(formula) || length(formula) != 1 || is.na(formula)) {
    keopsr_abort("formula", "formula must be one string (not NA)", call)
  }
  if (!is.character(args) || anyNA(args)) keopsr_abort("formula", "args must be a character vector without NA", call)
  check_option("sum_scheme", sum_scheme)
  info <- check_result(keopsr_formula_info(formula, args), call)
  arg_info <- data.frame(
    name = info$names, category = info$categories, dim = info$dims,
    stringsAsFactors = FALSE
  )
  function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (is.null(input)) {
      return(list(formula = formula, args = args, args_info = arg_info, sum_scheme = sum_scheme))
    }
    call <- sys.call()
    if (!is.list(input) || is.data.frame(input)) {
      keopsr_abort("input", "input must be a list of matrices and vectors, one per argument", call)
    }
    if (!is.null(names(input)) && all(names(input) != "")) {
      missing_args <- setdiff(arg_info$name, names(input))
      if (length(missing_args)) {
        keopsr_abort("input", sprintf("no input named %s", paste(sQuote(missing_args, FALSE), collapse = ", ")), call)
      }
      input <- input[arg_info$name]
    }
    input <- points_by_row(input, arg_info$category, inner_dim, call)
    evaluate_formula(formula, args, input,
      sum_scheme = sum_scheme, call = call,
      ranges = ranges_for(ranges, if (info$reduced_index == "j") "j" else "i", call)
    )
  }
}

# rkeops' `inner_dim`: "col" (default) takes one point per row, as keopsr
# does; "row" one point per column, so i- and j-inputs are transposed.
points_by_row <- function(input, categories, inner_dim, call) {
  if (!is.character(inner_dim) || length(inner_dim) != 1 || !inner_dim %in% c("col", "row")) {
    keopsr_abort("input", "inner_dim must be \"col\" (one point per row) or \"row\" (one point per column)", call)
  }
  if (inner_dim == "col") return(input)
  for (k in which(categories[seq_along(input)] %in% c("Vi", "Vj"))) {
    if (is.matrix(input[[k]])) input[[k]] <- t(input[[k]])
  }
  input
}
