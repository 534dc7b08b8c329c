# rkeops 2.x compatibility: the set-up calls rkeops scripts start with,
# its option accessors, the `*_reduction` aliases, predicates and the
# generic operation builders. Each maps onto keopsr's own functions; see
# vignette("migrating-from-rkeops") for what deliberately differs.

#' rkeops set-up calls
#'
#' rkeops scripts start with calls that set up its Python stack. keopsr has
#' none to set up; these functions do what makes sense natively:
#' `check_rkeops()` runs a small CPU self-test against dense R, reports the
#' GPU as [keops_info()] does and returns `TRUE` when keopsr works;
#' `install_rkeops()` installs nothing and says so; `helloWorld()` greets.
#'
#' @param verbose whether to print what was checked.
#' @param ... ignored (rkeops' arguments for installing Python packages).
#' @return `check_rkeops()`: `TRUE` or `FALSE`. `install_rkeops()`: `TRUE`,
#'   invisibly.
#' @export
#' @examples
#' check_rkeops()
check_rkeops <- function(verbose = TRUE) {
  x <- matrix(seq(-1, 1, length.out = 12), 6, 2)
  y <- x[6:1, ] / 2
  dense <- exp(-as.matrix(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * x %*% t(y))) %*% rep(1, 6)
  got <- tryCatch(sum(exp(-sqdist(Vi(x), Vj(y))), index = "j"), error = function(e) e)
  ok <- is.matrix(got) && max(abs(got - dense)) < 1e-10 * max(abs(dense))
  if (verbose) {
    message(if (ok) "keopsr works on the CPU (self-test against dense R passed)." else {
      paste("keopsr's CPU self-test failed:", if (inherits(got, "error")) conditionMessage(got) else "wrong values")
    })
    info <- keops_info()
    message(if (info$usable) {
      sprintf("GPU backend usable: %s.", paste(info$gpus$name, collapse = ", "))
    } else {
      sprintf("GPU backend not usable (%s); the CPU is used.", gpu_diagnosis())
    })
  }
  ok
}

#' @rdname check_rkeops
#' @export
install_rkeops <- function(...) {
  message("keopsr needs nothing installed: no Python, no pykeops, no compiler at run time.")
  invisible(TRUE)
}

#' @rdname check_rkeops
#' @export
helloWorld <- function() print("Hello user of KeOps")

# rkeops' view of keopsr's options.
rkeops_view <- function() {
  o <- keops_options()
  structure(list(
    backend = if (o$backend == "gpu") "GPU" else "CPU",
    device_id = if (is.null(o$devices)) -1L else o$devices[[1]],
    precision = o$precision,
    verbosity = as.integer(o$verbosity > 0),
    debug = 0L,
    cache_dir = rkeops_cache_folder()
  ), class = "rkeops_options")
}

#' rkeops options, mapped onto keops_options()
#'
#' `get_rkeops_options()` returns keopsr's options as rkeops names them
#' (`backend` `"CPU"`/`"GPU"`, `device_id` (-1: all), `precision`,
#' `verbosity` 0/1, `debug` (always 0) and `cache_dir`): all of them (a list
#' of class `rkeops_options`), one value, or a named list of several.
#' `set_rkeops_options(input)` sets those given in the list `input` (NULL:
#' keopsr's defaults); a `"GPU"` backend without a usable GPU warns and uses
#' the CPU, as [rkeops_use_gpu()]. `rkeops_enable_verbosity()` and
#' `rkeops_disable_verbosity()` switch the per-reduction messages.
#' The cache functions handle the folder of compiled GPU kernels (see
#' [keops_cache_clear()]): `get_rkeops_cache_dir()` returns it (creating
#' it), `set_rkeops_cache_dir()` sets it (NULL: the default),
#' `stat_rkeops_cache_dir()` returns its size as a string, and
#' `clean_rkeops()` removes the compiled kernels (and the folder with
#' `remove_cache_dir = TRUE`). keopsr's own interface is [keops_options()].
#'
#' @param option NULL (all) or option names.
#' @param input a named list of options.
#' @param cache_dir a folder, or NULL for the default one.
#' @param verbose whether to print a message.
#' @param startup unused (rkeops' start-up flag).
#' @param all unused: there is only one cache.
#' @param remove_cache_dir whether to remove the cache folder itself.
#' @return `get_rkeops_options()`: the options. `stat_rkeops_cache_dir()`:
#'   the size, as a string. The others: the previous keopsr options,
#'   invisibly.
#' @export
#' @examples
#' get_rkeops_options("precision")
#' old <- set_rkeops_options(list(precision = "float32"))
#' get_rkeops_options()$precision
#' keops_options(old)
get_rkeops_options <- function(option = NULL) {
  view <- rkeops_view()
  if (is.null(option)) return(view)
  if (!is.character(option) || !all(option %in% names(view))) {
    keopsr_abort("option", sprintf("option must name rkeops options: %s", paste(names(view), collapse = ", ")))
  }
  if (length(option) == 1) view[[option]] else unclass(view)[option]
}

#' @rdname get_rkeops_options
#' @export
set_rkeops_options <- function(input = NULL) {
  if (is.null(input)) return(invisible(keops_options(.keopsr_defaults)))
  known <- c("backend", "device_id", "precision", "verbosity", "debug", "cache_dir", "formula_only")
  if (!is.list(input) || is.null(names(input)) || !all(names(input) %in% known)) {
    keopsr_abort("option", sprintf("input must be a named list of rkeops options (%s)", paste(known, collapse = ", ")))
  }
  if (isTRUE(input$formula_only)) {
    keopsr_abort("option", "formula_only = TRUE is not supported: keops_kernel() checks formulas without compiling anything")
  }
  old <- keops_options()
  new <- list()
  if (!is.null(input$precision)) new$precision <- input$precision
  if (!is.null(input$verbosity)) new$verbosity <- as.integer(as.logical(input$verbosity))
  if (!is.null(input$device_id)) {
    new["devices"] <- list(if (identical(as.numeric(input$device_id), -1)) NULL else input$device_id)
  }
  if ("cache_dir" %in% names(input)) new["cache_dir"] <- list(input$cache_dir)
  if (length(new)) keops_options(new)
  if (!is.null(input$backend)) {
    if (!is.character(input$backend) || length(input$backend) != 1 || !toupper(input$backend) %in% c("CPU", "GPU")) {
      keopsr_abort("option", "backend must be \"CPU\" or \"GPU\"")
    }
    if (toupper(input$backend) == "GPU") use_gpu_or_warn() else keops_options(backend = "cpu")
  }
  invisible(old)
}

# rkeops' and pykeops' behaviour: a GPU request without a usable GPU warns
# and runs on the CPU (keops_options(backend = "gpu") stays strict).
use_gpu_or_warn <- function(devices = NULL) {
  if (!keops_info()$usable) {
    warning(structure(
      class = c("keopsr_backend_warning", "warning", "condition"),
      list(message = paste("no GPU is usable:", gpu_diagnosis(), "- computations run on the CPU (see keops_info())"), call = NULL)
    ))
    return(keops_options(backend = "cpu"))
  }
  keops_options(backend = "gpu", devices = devices)
}

#' @rdname get_rkeops_options
#' @export
rkeops_enable_verbosity <- function() keops_options(verbosity = 1L)

#' @rdname get_rkeops_options
#' @export
rkeops_disable_verbosity <- function() keops_options(verbosity = 0L)

# The cache folder, created (rkeops' functions return an existing folder).
rkeops_cache_folder <- function() {
  dir <- current_cache_dir()
  if (is.na(dir)) return(NA_character_)
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  dir
}

#' @rdname get_rkeops_options
#' @export
get_rkeops_cache_dir <- function() rkeops_cache_folder()

#' @rdname get_rkeops_options
#' @export
set_rkeops_cache_dir <- function(cache_dir = NULL, verbose = TRUE) {
  old <- keops_options(cache_dir = cache_dir)
  if (verbose) message("keopsr's kernel cache folder is ", rkeops_cache_folder())
  invisible(old)
}

#' @rdname get_rkeops_options
#' @export
stat_rkeops_cache_dir <- function(verbose = TRUE, startup = FALSE) {
  info <- keops_info()
  size <- format(structure(info$cache_bytes, class = "object_size"), units = "auto")
  if (verbose) message(sprintf("keopsr's kernel cache (%s) holds %d kernels, %s", info$cache_dir, info$cache_entries, size))
  invisible(size)
}

#' @rdname get_rkeops_options
#' @export
clean_rkeops <- function(verbose = TRUE, all = TRUE, remove_cache_dir = FALSE) {
  removed <- keops_cache_clear()
  dir <- current_cache_dir()
  if (remove_cache_dir && !is.na(dir)) unlink(dir, recursive = TRUE)
  if (verbose) message(sprintf("removed %d compiled kernels from %s", removed, dir))
  invisible(removed)
}

#' rkeops' reduction names
#'
#' `sum_reduction()`, `min_reduction()`, ..., `sumsoftmaxweight_reduction()`
#' are rkeops' aliases of [sum()][Summary.LazyTensor], [min()][Summary.LazyTensor],
#' [argmin()], [Kmin()], [logsumexp()], [sumsoftmaxweight()], ... with the
#' same arguments.
#'
#' @inheritParams argmin
#' @inheritParams Kmin
#' @param weight optional weights (see [logsumexp()]).
#' @return As the function aliased.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 3, 2)); y_j <- Vj(matrix(rnorm(8), 4, 2))
#' sum_reduction(sqdist(x_i, y_j), "j")
sum_reduction <- function(x, index, ranges = NULL) reduce_lazy("Sum", x, index, ranges = ranges, na_ok = TRUE)

#' @rdname sum_reduction
#' @export
min_reduction <- function(x, index, ranges = NULL) reduce_lazy("Min", x, index, ranges = ranges)

#' @rdname sum_reduction
#' @export
max_reduction <- function(x, index, ranges = NULL) reduce_lazy("Max", x, index, ranges = ranges)

#' @rdname sum_reduction
#' @export
argmin_reduction <- argmin

#' @rdname sum_reduction
#' @export
argmax_reduction <- argmax

#' @rdname sum_reduction
#' @export
min_argmin_reduction <- min_argmin

#' @rdname sum_reduction
#' @export
max_argmax_reduction <- max_argmax

#' @rdname sum_reduction
#' @export
Kmin_reduction <- Kmin

#' @rdname sum_reduction
#' @export
argKmin_reduction <- argKmin

#' @rdname sum_reduction
#' @export
Kmin_argKmin_reduction <- Kmin_argKmin

#' @rdname sum_reduction
#' @export
logsumexp_reduction <- logsumexp

#' @rdname sum_reduction
#' @export
sumsoftmaxweight_reduction <- sumsoftmaxweight

#' What a LazyTensor is made of (rkeops predicates)
#'
#' `is.ComplexLazyTensor(x)`: a complex LazyTensor. For LazyTensors
#' (errors otherwise), `is.LazyVector(x)` tells whether x is a parameter
#' (made by `Pm()` or from a vector or number), `is.LazyMatrix(x)` whether
#' it is an i- or j-variable, `is.LazyParameter(x)` whether it is a real
#' parameter of one value, `is.ComplexLazyParameter(x)` a complex one.
#' `is.int(x)` tells whether x is one whole number.
#'
#' @param x an object.
#' @return `TRUE` or `FALSE`.
#' @export
#' @examples
#' is.LazyMatrix(Vi(matrix(1:6, 3)))
#' is.LazyParameter(Pm(2))
#' is.int(3)
is.ComplexLazyTensor <- function(x) inherits(x, "ComplexLazyTensor")

# The single variable a LazyTensor is, with its declaration (NULL for a
# formula of several variables or of none).
lazy_variable <- function(x) {
  if (length(x$args) != 1 || !identical(x$formula, variable_names(x$args))) return(NULL)
  lazy_declarations(x)
}

require_lazy <- function(x, complex_too = TRUE, call = sys.call(-1)) {
  if (!is.LazyTensor(x)) {
    keopsr_abort("input", if (complex_too) "`x` input must be a LazyTensor or a ComplexLazyTensor." else "`x` input must be a LazyTensor.", call)
  }
}

#' @rdname is.ComplexLazyTensor
#' @export
is.LazyVector <- function(x) {
  require_lazy(x)
  v <- lazy_variable(x)
  !is.null(v) && v$cat == "Pm"
}

#' @rdname is.ComplexLazyTensor
#' @export
is.LazyMatrix <- function(x) {
  require_lazy(x)
  v <- lazy_variable(x)
  !is.null(v) && v$cat != "Pm"
}

#' @rdname is.ComplexLazyTensor
#' @export
is.LazyParameter <- function(x) {
  require_lazy(x, complex_too = FALSE)
  is.LazyVector(x) && !is.ComplexLazyTensor(x) && x$dimres == 1
}

#' @rdname is.ComplexLazyTensor
#' @export
is.ComplexLazyParameter <- function(x) {
  require_lazy(x)
  is.LazyVector(x) && is.ComplexLazyTensor(x) && x$dimres == 1
}

#' @rdname is.ComplexLazyTensor
#' @export
is.int <- function(x) is.numeric(x) && !is.object(x) && length(x) == 1 && !is.na(x) && x == round(x)

#' Any operation by name (rkeops' generic builders)
#'
#' `unaryop.LazyTensor(x, "Exp")`, `binaryop.LazyTensor(x, y, "-", is_operator = TRUE)`
#' and `ternaryop.LazyTensor(x, y, z, "IfElse")` build the formula-language
#' operation `opstr` (see [keops_operations()]) of LazyTensors (or numbers,
#' or vectors, made parameters), as in rkeops. `opt_arg`, `opt_arg2` are
#' integer arguments appended to the operation (`Pow(x, 3)`). The result's
#' dimension and the dimension checks come from the formula language;
#' `dim_res`, when given, must agree with it, and `res_type =
#' "ComplexLazyTensor"` marks the result complex.
#'
#' @param x,y,z LazyTensors, numbers or vectors (not matrices).
#' @param opstr the operation's name (for `is_operator = TRUE`, one of `+`,
#'   `-`, `*`, `/`, `|`).
#' @param opt_arg,opt_arg2 optional integer arguments.
#' @param is_operator whether `opstr` is an infix operator.
#' @param dim_check_type unused: dimensions are checked by the formula
#'   language's rules.
#' @param res_type `NA`, `"LazyTensor"` or `"ComplexLazyTensor"`.
#' @param dim_res `NA` or the expected dimension of the result.
#' @return A LazyTensor.
#' @export
#' @examples
#' x_i <- Vi(matrix(rnorm(6), 3, 2))
#' unaryop.LazyTensor(x_i, "Square")
#' binaryop.LazyTensor(x_i, 2, "Powf")
unaryop.LazyTensor <- function(x, opstr, opt_arg = NA, opt_arg2 = NA, res_type = NA, dim_res = NA) {
  call <- sys.call()
  extra <- c(if (!is.na(opt_arg)) int_arg(opt_arg, "opt_arg", call), if (!is.na(opt_arg2)) int_arg(opt_arg2, "opt_arg2", call))
  generic_op(opstr, list(x), extra = extra, res_type = res_type, dim_res = dim_res, call = call)
}

#' @rdname unaryop.LazyTensor
#' @export
binaryop.LazyTensor <- function(x, y, opstr, is_operator = FALSE, dim_check_type = "sameor1", res_type = NA,
                                dim_res = NA, opt_arg = NA) {
  call <- sys.call()
  # A function name given with is_operator = TRUE (rkeops' "Add") is written
  # as a function call, which the formula language also has.
  if (is_operator && is.character(opstr) && opstr %in% names(.precedence)) {
    check_generic_operands(list(x, y), call)
    res <- if (is_complex_operand(x) || is_complex_operand(y)) {
      complex_arith(opstr, x, y, call)
    } else {
      infix(opstr, as_operand(x), as_operand(y), call)
    }
    return(retype(res, res_type, dim_res, call))
  }
  extra <- if (!is.na(opt_arg)) int_arg(opt_arg, "opt_arg", call)
  generic_op(opstr, list(x, y), extra = extra, res_type = res_type, dim_res = dim_res, call = call)
}

#' @rdname unaryop.LazyTensor
#' @export
ternaryop.LazyTensor <- function(x, y, z, opstr, dim_check_type = "sameor1", dim_res = NA) {
  call <- sys.call()
  generic_op(opstr, list(x, y, z), res_type = NA, dim_res = dim_res, call = call)
}

check_generic_operands <- function(operands, call) {
  for (k in seq_along(operands)) {
    if (is.matrix(operands[[k]])) {
      keopsr_abort("input", sprintf(paste0(
        "`%s` input argument should be a LazyTensor, a ComplexLazyTensor, a vector or a scalar.",
        "\nIf you want to use a matrix, convert it to LazyTensor first."
      ), c("x", "y", "z")[k]), call)
    }
  }
}

generic_op <- function(opstr, operands, extra = NULL, res_type, dim_res, call) {
  if (!is.character(opstr) || length(opstr) != 1) keopsr_abort("formula", "opstr must be an operation name", call)
  check_generic_operands(operands, call)
  complex <- identical(res_type, "ComplexLazyTensor") || any(vapply(operands, is_complex_operand, NA))
  res <- do.call(apply_op, c(list(opstr), operands, list(extra = extra, call = call, complex = complex)))
  retype(res, res_type, dim_res, call)
}

# Applies rkeops' res_type and checks its dim_res against the formula's.
retype <- function(res, res_type, dim_res, call) {
  if (!(length(dim_res) == 1 && is.na(dim_res))) {
    if (!is.int(dim_res)) {
      keopsr_abort("input", sprintf("If not NA, `dim_res` input argument should be an integer. Received %s.", format(dim_res)), call)
    }
    if (dim_res != res$dimres) {
      keopsr_abort("dimension", sprintf("dim_res is %d but the operation has dimension %d", as.integer(dim_res), res$dimres), call)
    }
  }
  if (identical(res_type, "ComplexLazyTensor") && !is.ComplexLazyTensor(res)) {
    keopsr_abort("input", "res_type = \"ComplexLazyTensor\" but the operation gives a real LazyTensor", call)
  }
  res
}
