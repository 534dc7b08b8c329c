.keopsr_defaults <- list(
  backend = "auto",
  precision = "float64",
  threads = 0L,
  sum_scheme = "auto",
  verbosity = 0L
)

.keopsr_state <- new.env(parent = emptyenv())
.keopsr_state$options <- .keopsr_defaults
.keopsr_state$counter <- 0L

#' Get or set keopsr options
#'
#' Called with no argument, returns the current options. Called with
#' `name = value` pairs, sets them and returns the previous values invisibly
#' (so `old <- keops_options(...); keops_options(old)` restores them).
#'
#' @param ... options to set, as `name = value` pairs or one list:
#'   - `backend`: `"auto"` (default) or `"cpu"`. This build evaluates on CPU
#'     threads; `"gpu"` is refused with a `keopsr_backend_error`.
#'   - `precision`: `"float64"` (default) or `"float32"`.
#'   - `threads`: number of CPU threads, `0` (default) for all cores.
#'   - `sum_scheme`: accumulation of sums: `"auto"`/`"block"` (default: each
#'     tile of the reduced index is summed, then added to the running sum),
#'     `"kahan"` (compensated summation) or `"direct"`.
#'   - `verbosity`: `0` (silent) or `1` (a message per reduction with its
#'     formula, sizes and time).
#' @return The options (a list), invisibly when setting.
#' @export
#' @examples
#' old <- keops_options(precision = "float32", threads = 1)
#' keops_options()$precision
#' keops_options(old)
keops_options <- function(...) {
  new <- list(...)
  if (length(new) == 1 && is.null(names(new)) && is.list(new[[1]])) new <- new[[1]]
  current <- .keopsr_state$options
  if (length(new) == 0) return(current)
  if (is.null(names(new)) || any(names(new) == "")) {
    keopsr_abort("option", "keops_options() takes name = value pairs")
  }
  unknown <- setdiff(names(new), names(.keopsr_defaults))
  if (length(unknown)) {
    keopsr_abort("option", sprintf(
      "unknown option(s) %s; known options: %s",
      paste(sQuote(unknown, FALSE), collapse = ", "),
      paste(names(.keopsr_defaults), collapse = ", ")
    ))
  }
  updated <- current
  for (name in names(new)) updated[[name]] <- check_option(name, new[[name]])
  .keopsr_state$options <- updated
  invisible(current[names(new)])
}

check_option <- function(name, value) {
  one_of <- function(choices) {
    if (!is.character(value) || length(value) != 1 || !value %in% choices) {
      keopsr_abort("option", sprintf(
        "option '%s' must be one of %s", name, paste0('"', choices, '"', collapse = ", ")
      ), call = NULL)
    }
    value
  }
  count <- function() {
    if (!is.numeric(value) || length(value) != 1 || is.na(value) || value < 0 || value != round(value)) {
      keopsr_abort("option", sprintf("option '%s' must be a non-negative whole number", name), call = NULL)
    }
    as.integer(value)
  }
  switch(name,
    backend = {
      one_of(c("auto", "cpu", "gpu"))
      if (value == "gpu") {
        keopsr_abort("backend", paste(
          "the GPU backend is not available in this build of keopsr;",
          "use backend = \"cpu\" or \"auto\""
        ), call = NULL)
      }
      value
    },
    precision = one_of(c("float64", "float32")),
    threads = {
      n <- count()
      if (n > 1024) keopsr_abort("option", "option 'threads' must be at most 1024", call = NULL)
      n
    },
    sum_scheme = one_of(c("auto", "block", "kahan", "direct")),
    verbosity = count()
  )
}

#' rkeops-compatible switches
#'
#' `rkeops_use_cpu()` selects CPU threads (optionally their number),
#' `rkeops_use_float32()` and `rkeops_use_float64()` the precision. They are
#' shortcuts for [keops_options()], kept so that rkeops scripts run unchanged.
#'
#' @param ncore number of CPU threads; `NULL` (default) keeps the current
#'   setting, `0` uses all cores.
#' @return The previous options, invisibly.
#' @export
#' @examples
#' old <- rkeops_use_float32()
#' rkeops_use_float64()
#' keops_options(old)
rkeops_use_cpu <- function(ncore = NULL) {
  if (is.null(ncore)) keops_options(backend = "cpu") else keops_options(backend = "cpu", threads = ncore)
}

#' @rdname rkeops_use_cpu
#' @export
rkeops_use_float32 <- function() keops_options(precision = "float32")

#' @rdname rkeops_use_cpu
#' @export
rkeops_use_float64 <- function() keops_options(precision = "float64")
