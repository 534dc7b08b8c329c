.keopsr_defaults <- list(
  backend = "auto",
  precision = "float64",
  threads = 0L,
  sum_scheme = "auto",
  gemm = "auto",
  verbosity = 0L,
  devices = NULL,
  nvrtc = NULL,
  cache_dir = NULL,
  max_dense_bytes = 2^30,
  progress = "auto",
  index_base = 1L,
  distributed = "none",
  distributed_split = "auto",
  distributed_chunks = 0L
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
#'   - `backend`: `"auto"` (default: a GPU when one is usable, see
#'     [keops_info()], else CPU threads), `"cpu"` or `"gpu"` (a
#'     `keopsr_backend_error` when no GPU is usable).
#'   - `devices`: GPU ordinals to use (`NULL`, the default: all); output rows
#'     are split across them.
#'   - `nvrtc`: path of libnvrtc (or its folder), when it is not found on its
#'     own (the environment variable `KEOPSR_NVRTC` does the same).
#'   - `cache_dir`: folder of compiled GPU kernels (default: the
#'     environment variable `KEOPSR_CACHE_DIR` when set, else
#'     `tools::R_user_dir("keopsr", "cache")`); `NA` disables the disk cache.
#'     See [keops_cache_clear()].
#'   - `precision`: `"float64"` (default) or `"float32"`.
#'   - `threads`: number of CPU threads, `0` (default) for all cores.
#'   - `sum_scheme`: accumulation of sums: `"auto"`/`"block"` (default: each
#'     tile of the reduced index is summed, then added to the running sum),
#'     `"kahan"` (compensated summation) or `"direct"`.
#'   - `gemm`: on the CPU, squared distances and scalar products of an i- and
#'     a j-variable of high dimension (`SqDist(x, y)`, `(x | y)`,
#'     `Norm2(x - y)`, in any formula) computed by blocked matrix products
#'     \eqn{|x - c|^2 + |y - c|^2 - 2 (x - c) \cdot (y - c)}{|x-c|^2 + |y-c|^2 - 2 (x-c).(y-c)}
#'     with c the mean of the output points, instead of one pass
#'     per pair: `"auto"` (default) for Sum, LogSumExp and SumSoftMaxWeight
#'     reductions from dimension 16 on (1.2 to 2x faster at D = 16 to 64,
#'     4 to 7x at D = 256 to 1024; `bench/RESULTS-gemm.md`), `"always"`
#'     (dimension >= 2), `"never"`. The rounding error of a squared distance
#'     is then at most about \eqn{(2 D + 8) \epsilon (|x - c|^2 + |y - c|^2)}{(2D + 8) eps (|x-c|^2 + |y-c|^2)}
#'     instead of \eqn{D \epsilon |x - y|^2}{D eps |x-y|^2}. Nearest
#'     neighbours (Min, ArgMin, KMin, ArgKMin and their value-and-index forms
#'     of `SqDist(x, y)` itself) use GEMM distances from dimension 16 on
#'     only to shortlist 2K + 8 candidates per point, recompute those by the
#'     direct loop and return the direct loop's values and indices bit for
#'     bit: a point is re-reduced directly when an error bound cannot prove
#'     that no other point ranks before its K-th neighbour (2 to 7x faster
#'     at D = 50 to 784; `bench/RESULTS-knn.md`). Other Min/Max reductions
#'     keep the direct loop. Non-finite or huge values
#'     take the direct loop, so NaN and Inf propagate as without it.
#'     The same option governs the weights GEMM: a Sum of a scalar term
#'     times weights with several columns, `sum(K * Vj(W), index = "j")`
#'     (a kernel times a matrix, as in batched CG), multiplies each block's
#'     kernel values by the weights as one matrix product: `"auto"` from 4
#'     columns on with the default block sums (1.6x at 11 columns, 7.7x
#'     at 111 in float64; `bench/RESULTS-gemm.md`), `"always"` from 2,
#'     never with `sum_scheme = "kahan"` or `"direct"`.
#'   - `verbosity`: `0` (silent) or `1` (a message per reduction with its
#'     formula, sizes and time).
#'   - `progress`: `"auto"` (default: a progress bar, from the cli
#'     package, for reductions and solves that run longer than about 2 s in
#'     interactive sessions, with the pairs (i, j) or iterations done and an
#'     estimated time left), `TRUE` (also when not interactive), `FALSE`, or
#'     a function `f(done, total, unit)` called during the computation
#'     (`unit` is `"pairs"` or `"iterations"`; about every 0.1 s, and at the
#'     end). Ctrl-C stops the computation either way.
#'   - `max_dense_bytes`: the largest result [as.matrix()][as.matrix.LazyTensor]
#'     may store (default 1 GiB).
#'   - `index_base`: `1L` (default) returns the indices of `argmin()`,
#'     `argKmin()`, ... 1-based, as R indexes; `0L` returns them 0-based, as
#'     rkeops does, for scripts ported from rkeops that add 1 themselves
#'     (see `vignette("migrating-from-rkeops")`). Positions inside formulas
#'     are 0-based either way.
#'   - `distributed`: `"none"` (default) or `"future"`: every reduction
#'     (LazyTensor reductions, [keops_kernel()] operators, gradients, `ranges`)
#'     and every solve is split across the workers of the current
#'     [future::plan()] (`plan(multisession)`, `plan(cluster, workers = hosts)`,
#'     `future.batchtools`, ...), with the same results as one process
#'     (float64: within 1e-12, indices identical). See
#'     `vignette("scaling-out")`. With `plan(sequential)` (or any plan of one
#'     worker) nothing changes. Needs the future package; progress is
#'     reported through progressr (one tick per chunk) when the user enables
#'     it. An error or a lost worker is a `keopsr_distributed_error` naming
#'     the chunk (its `chunk` field; the worker's condition in `parent`).
#'     Workers run with the caller's `precision`, `sum_scheme`, `threads` and
#'     `backend`, and their own GPU settings (`devices`, `nvrtc`,
#'     `cache_dir`): a worker with a usable GPU uses it under
#'     `backend = "auto"`. Problems of fewer than 2^20 pairs (i, j) run in the
#'     calling process unless `distributed_split` or `distributed_chunks` is set.
#'     Gradients split their output rows, and so does a formula written
#'     `Grad(R, v, e)` around a reduction ([keops_grad()] operators): R's
#'     output rows, whose gradients are stacked (v of R's output index) or
#'     added (v of the reduced index, or a parameter).
#'   - `distributed_split`: how a reduction is split: `"auto"` (default:
#'     output rows when there are at least 32 per chunk or as many as reduced
#'     indices, else the reduced index), `"rows"` (each worker reduces its
#'     output rows over the whole reduced index) or `"reduced"` (each worker
#'     reduces every output row over its chunk of the reduced index; the
#'     chunks' partial states are merged with the reduction's monoid).
#'   - `distributed_chunks`: number of chunks, `0` (default) for one per
#'     worker ([future::nbrOfWorkers()]).
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
  # `[<-` with a list keeps options whose value is NULL (`[[<-` would drop them).
  for (name in names(new)) updated[name] <- list(check_option(name, new[[name]]))
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
    if (!is.numeric(value) || length(value) != 1 || !is.finite(value) || value < 0 || value != round(value)) {
      keopsr_abort("option", sprintf("option '%s' must be a non-negative whole number", name), call = NULL)
    }
    as.integer(value)
  }
  path <- function() {
    if (is.null(value) || (length(value) == 1 && is.na(value))) return(value)
    if (!is.character(value) || length(value) != 1) {
      keopsr_abort("option", sprintf("option '%s' must be a path (one string) or NULL", name), call = NULL)
    }
    path.expand(value)
  }
  switch(name,
    backend = {
      one_of(c("auto", "cpu", "gpu"))
      if (value == "gpu" && !keops_info()$usable) {
        keopsr_abort("backend", paste(
          "backend = \"gpu\" but no GPU is usable:", gpu_diagnosis(),
          "(see keops_info()); use backend = \"cpu\" or \"auto\""
        ), call = NULL)
      }
      value
    },
    devices = {
      if (!is.null(value) && (!is.numeric(value) || anyNA(value) || any(value < 0 | value > 63 | value != round(value)))) {
        keopsr_abort("option", "option 'devices' must be NULL or GPU ordinals (0 to 63)", call = NULL)
      }
      if (is.null(value)) NULL else as.integer(value)
    },
    nvrtc = {
      value <- path()
      if (!is.null(value) && !is.na(value)) {
        info <- check_result(keopsr_cuda_info(value), NULL)
        if (!nzchar(info$nvrtc)) {
          keopsr_abort("option", sprintf("option 'nvrtc': %s", info$nvrtc_error), call = NULL)
        }
      }
      value
    },
    cache_dir = {
      value <- path()
      keopsr_set_cache_dir(if (is.null(value)) default_cache_dir() else if (is.na(value)) NULL else value)
      value
    },
    precision = one_of(c("float64", "float32")),
    threads = {
      n <- count()
      if (n > 1024) keopsr_abort("option", "option 'threads' must be at most 1024", call = NULL)
      n
    },
    sum_scheme = one_of(c("auto", "block", "kahan", "direct")),
    gemm = one_of(c("auto", "always", "never")),
    verbosity = count(),
    index_base = {
      if (!is.numeric(value) || length(value) != 1 || !value %in% c(0, 1)) {
        keopsr_abort("option", "option 'index_base' must be 0L (rkeops' 0-based indices) or 1L (R's, the default)", call = NULL)
      }
      as.integer(value)
    },
    progress = {
      if (!(is.function(value) || identical(value, "auto") || isTRUE(value) || isFALSE(value))) {
        keopsr_abort("option", "option 'progress' must be \"auto\", TRUE, FALSE or a function(done, total, unit)", call = NULL)
      }
      value
    },
    distributed = {
      one_of(c("none", "future"))
      if (value == "future" && !requireNamespace("future", quietly = TRUE)) {
        keopsr_abort("option", "option 'distributed' = \"future\" needs the future package (install.packages(\"future\"))", call = NULL)
      }
      value
    },
    distributed_split = one_of(c("auto", "rows", "reduced")),
    distributed_chunks = count(),
    max_dense_bytes = {
      if (!is.numeric(value) || length(value) != 1 || is.na(value) || value <= 0) {
        keopsr_abort("option", "option 'max_dense_bytes' must be a positive number of bytes", call = NULL)
      }
      as.double(value)
    }
  )
}

#' rkeops-compatible switches
#'
#' `rkeops_use_cpu()` selects CPU threads (optionally their number),
#' `rkeops_use_gpu()` the GPUs (optionally which ones; as in rkeops and
#' pykeops, when none is usable it warns, with the reason, and keeps the
#' CPU: `keops_options(backend = "gpu")` is the strict form, an error),
#' `rkeops_use_float32()` and `rkeops_use_float64()` the precision. They are
#' shortcuts for [keops_options()], kept so that rkeops scripts run unchanged.
#' `use_cpu()` and `use_gpu()` are rkeops 1.x names of the same switches
#' (rkeops' "Using RKeOps" vignette still calls them).
#'
#' @param ncore number of CPU threads; `NULL` (default) keeps the current
#'   setting, `0` uses all cores.
#' @param device GPU ordinals; `NULL` (default) or `-1` for all GPUs.
#' @return The previous options, invisibly.
#' @rdname rkeops_use_cpu
#' @export
#' @examples
#' old <- rkeops_use_float32()
#' if (keops_info()$usable) rkeops_use_gpu()
#' rkeops_use_float64()
#' keops_options(old)
rkeops_use_gpu <- function(device = NULL) {
  if (!is.null(device) && (!is.numeric(device) || anyNA(device))) {
    keopsr_abort("option", "device must be NULL, -1 (all GPUs) or GPU ordinals")
  }
  if (identical(as.numeric(device), -1)) device <- NULL
  use_gpu_or_warn(device)
}

#' @rdname rkeops_use_cpu
#' @export
rkeops_use_cpu <- function(ncore = NULL) {
  if (!is.null(ncore) && !is.numeric(ncore)) keopsr_abort("option", "ncore must be NULL or a number of threads")
  if (is.null(ncore)) keops_options(backend = "cpu") else keops_options(backend = "cpu", threads = ncore)
}

#' @rdname rkeops_use_cpu
#' @export
rkeops_use_float32 <- function() keops_options(precision = "float32")

#' @rdname rkeops_use_cpu
#' @export
use_cpu <- function(ncore = NULL) rkeops_use_cpu(ncore)

#' @rdname rkeops_use_cpu
#' @export
use_gpu <- function(device = NULL) rkeops_use_gpu(device)

#' @rdname rkeops_use_cpu
#' @export
rkeops_use_float64 <- function() keops_options(precision = "float64")

# The libnvrtc path option, NULL when unset.
nvrtc_option <- function() {
  path <- keops_options()$nvrtc
  if (is.null(path) || is.na(path)) NULL else path
}

# Evaluation settings passed to the Rust core.
# `frame`: the evaluating function's frame, which a progress bar belongs to
# (cli closes it when that function returns).
engine_settings <- function(sum_scheme = NULL, frame = parent.frame()) {
  opts <- keops_options()
  list(
    precision = opts$precision, threads = opts$threads,
    sum_scheme = if (is.null(sum_scheme) || sum_scheme == "auto") opts$sum_scheme else sum_scheme,
    backend = opts$backend, devices = opts$devices, gemm = opts$gemm,
    progress = progress_callback(opts$progress, frame)
  )
}

# The function the engine reports progress to: the user's own, a cli
# progress bar (shown by cli once the computation has run for 2 s), or none.
progress_callback <- function(progress, frame) {
  if (is.function(progress)) return(progress)
  if (isFALSE(progress) || (identical(progress, "auto") && !interactive())) return(NULL)
  if (!requireNamespace("cli", quietly = TRUE)) return(NULL)
  id <- NULL
  function(done, total, unit) {
    if (is.null(id)) {
      frame$unit <- unit
      id <<- cli::cli_progress_bar(
        name = "keopsr", total = total, clear = TRUE, .envir = frame,
        format = paste(
          "keopsr {cli::pb_bar} {cli::pb_percent} |",
          "{format(cli::pb_current, digits = 3)}/{format(cli::pb_total, digits = 3)} {unit} | ETA {cli::pb_eta}"
        )
      )
    }
    cli::cli_progress_update(id = id, set = done, total = total, .envir = frame)
  }
}

gpu_in_use <- function() {
  backend <- keops_options()$backend
  backend == "gpu" || (backend == "auto" && keops_info()$usable)
}

gpu_diagnosis <- function() {
  info <- keops_info()
  if (!info$driver) return("no CUDA driver (libcuda) was found")
  if (nrow(info$gpus) == 0) return(if (nzchar(info$gpu_error)) info$gpu_error else "the CUDA driver sees no GPU")
  if (!nzchar(info$nvrtc)) return(info$nvrtc_error)
  "unknown reason"
}

#' What keopsr found: CUDA driver, GPUs, NVRTC, kernel cache
#'
#' keopsr loads the CUDA driver and NVRTC at run time; nothing CUDA is
#' needed to build or install it. `keops_info()` reports in one call what was
#' found and what is missing, and whether the GPU backend is usable. The CPU
#' backend needs nothing and is always available.
#'
#' @return A list of class `keopsr_info`: `driver` (logical), `gpus` (a data
#'   frame: `ordinal`, `name`, `compute_capability`, `memory_gib`),
#'   `nvrtc` (path of libnvrtc, `""` if not found), `nvrtc_version`,
#'   `cache_dir` with `cache_entries` and `cache_bytes` (its compiled kernels
#'   and their total size), `usable` (whether `backend = "gpu"` can run), the current
#'   `backend`, `threads` (CPU threads used) and the reasons when something is
#'   missing (`gpu_error`, `nvrtc_error`).
#' @export
#' @examples
#' keops_info()
keops_info <- function() {
  opts <- keops_options()
  raw <- check_result(keopsr_cuda_info(nvrtc_option()), sys.call())
  gpus <- data.frame(
    ordinal = raw$ordinal, name = raw$name, compute_capability = raw$compute_capability,
    memory_gib = raw$memory_gib, stringsAsFactors = FALSE
  )
  cache <- current_cache_dir()
  usage <- if (is.na(cache)) list(entries = 0, bytes = 0) else keopsr_cache_usage(cache)
  structure(list(
    driver = raw$driver, gpus = gpus, gpu_error = raw$gpu_error, nvrtc = raw$nvrtc,
    nvrtc_version = raw$nvrtc_version, nvrtc_error = raw$nvrtc_error,
    cache_dir = if (is.na(cache)) "" else cache, cache_entries = usage$entries, cache_bytes = usage$bytes,
    usable = raw$usable, backend = opts$backend,
    threads = if (opts$threads == 0) keopsr_default_threads() else opts$threads
  ), class = "keopsr_info")
}

#' @export
print.keopsr_info <- function(x, ...) {
  cat("keopsr", format(utils::packageVersion("keopsr")), "\n")
  cat(sprintf("  CPU backend : %d thread(s)\n", x$threads))
  cat(sprintf("  CUDA driver : %s\n", if (x$driver) "found" else "not found"))
  if (nrow(x$gpus)) {
    for (k in seq_len(nrow(x$gpus))) {
      g <- x$gpus[k, ]
      cat(sprintf("  GPU %d       : %s (compute capability %s, %.1f GiB)\n", g$ordinal, g$name, g$compute_capability, g$memory_gib))
    }
  } else if (nzchar(x$gpu_error)) cat("  GPUs        :", x$gpu_error, "\n")
  cat(sprintf("  NVRTC       : %s\n", if (nzchar(x$nvrtc)) paste(x$nvrtc, x$nvrtc_version) else x$nvrtc_error))
  cat(sprintf("  kernel cache: %s\n", if (nzchar(x$cache_dir)) {
    sprintf("%s (%d kernels, %s)", x$cache_dir, x$cache_entries, format(structure(x$cache_bytes, class = "object_size"), units = "auto"))
  } else "disabled"))
  cat(sprintf("  backend     : %s (%s)\n", x$backend, if (x$usable) "GPU usable" else "GPU not usable: CPU"))
  invisible(x)
}

#' Generated CUDA kernels, without a GPU
#'
#' `keops_cuda_source()` returns the CUDA C kernel keopsr generates for a
#' reduction formula (with the current precision and summation options);
#' `keops_cuda_compile()` compiles it with NVRTC for an architecture and
#' returns the size of the PTX (`"compute_90"`) or CUBIN (`"sm_90"`) and
#' NVRTC's log. Neither needs a GPU; compiling needs NVRTC (see
#' [keops_info()] and the `nvrtc` option). Meant for developers and for
#' checking a formula's kernel before running it on a GPU machine.
#'
#' @param formula a reduction formula, as for [keops_kernel()].
#' @param args its argument declarations.
#' @param arch the target architecture: `"sm_XX"` for a CUBIN, `"compute_XX"`
#'   for PTX.
#' @return `keops_cuda_source()`: a string. `keops_cuda_compile()`: a list
#'   with `arch`, `format`, `bytes` and `log`.
#' @export
#' @examples
#' src <- keops_cuda_source("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
#' cat(substr(src, 1, 300))
keops_cuda_source <- function(formula, args = character()) {
  check_result(keopsr_cuda_source(formula, args, engine_settings()), sys.call())
}

#' @rdname keops_cuda_source
#' @export
keops_cuda_compile <- function(formula, args = character(), arch = "sm_90") {
  check_result(keopsr_cuda_compile(formula, args, engine_settings(), arch, nvrtc_option()), sys.call())
}
