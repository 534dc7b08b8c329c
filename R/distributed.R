# Reductions, gradients and solves split across the workers of the current
# future::plan() (keops_options(distributed = "future")).
#
# A reduction over j of an M x N symbolic matrix is split one of two ways:
# - output rows: each chunk holds M / C rows of the i-variables and all the
#   j-variables; every worker runs the ordinary reduction and the results are
#   stacked. Exactly the one-process result (each output row is computed by
#   the same code on the same data).
# - the reduced index: each chunk holds N / C rows of the j-variables and all
#   the i-variables; every worker returns the reduction's unfinalized monoid
#   states (keopsr_reduce_partial()), which the caller merges, in chunk order,
#   and finalizes with the reduction's own merge (keopsr_merge_partials()):
#   the code the CPU and GPU engines use to combine tiles.
# Gradients split output rows (see distributed_value_and_grad(); for
# formulas Grad(R, v, e) distributed_reduce()); a solve keeps
# its conjugate-gradient recurrence in the core (keopsr_solve_with()) and
# splits each product by K.

# The number of pairs (i, j) below which an automatic split is not worth a
# round trip to the workers: the reduction runs in the calling process.
distributed_min_pairs <- 2^20

# Whether reductions go to the workers: the option is set, future is there,
# and the plan has more than one worker (plan(sequential) changes nothing).
distributed_active <- function() {
  identical(keops_options()$distributed, "future") &&
    requireNamespace("future", quietly = TRUE) && future::nbrOfWorkers() > 1
}

# The number of workers, for chunk counts (a plan with unlimited workers,
# such as a batchtools scheduler, gets 64 chunks).
distributed_workers <- function() {
  w <- future::nbrOfWorkers()
  if (is.finite(w)) as.integer(w) else 64L
}

# How to split a problem of `rows` output rows and `inner` reduced indices:
# list(axis = "rows" or "reduced", bounds = chunk boundaries, 0-based, from
# 0 to the size of that axis), or NULL to run in the calling process.
# `k`: the K of K-min reductions (each reduced chunk needs K points).
# `rows_only`: only output rows may be split (gradients).
split_plan <- function(rows, inner, k = 1L, rows_only = FALSE) {
  opts <- keops_options()
  forced <- opts$distributed_split != "auto" || opts$distributed_chunks > 0
  if (!forced && rows * inner < distributed_min_pairs) return(NULL)
  chunks <- if (opts$distributed_chunks > 0) opts$distributed_chunks else distributed_workers()
  axis <- opts$distributed_split
  if (rows_only) axis <- "rows"
  if (axis == "auto") {
    # Rows when every chunk gets a few blocks of rows (the CPU engine works
    # on 32 rows at a time), else the reduced index when it is the larger.
    axis <- if (rows >= 32 * chunks || rows >= inner) "rows" else "reduced"
  }
  size <- if (axis == "rows") rows else inner
  chunks <- min(chunks, if (axis == "rows") size else floor(size / k))
  if (chunks < 2) return(NULL)
  list(axis = axis, bounds = round(seq(0, size, length.out = chunks + 1)))
}

# Rows lo + 1 .. hi of a variable's data (a matrix, or a vector: one column).
take_rows <- function(x, lo, hi) {
  if (is.matrix(x)) x[seq.int(lo + 1, length.out = hi - lo), , drop = FALSE] else x[seq.int(lo + 1, length.out = hi - lo)]
}

# The inputs of one chunk: the variables of category `cat` ("Vi" or "Vj")
# restricted to rows lo + 1 .. hi, the others whole.
chunk_inputs <- function(inputs, categories, cat, lo, hi) {
  for (k in which(categories == cat)) inputs[[k]] <- take_rows(inputs[[k]], lo, hi)
  inputs
}

# Block-sparse ranges (0-based, half-open, as ranges_for() makes them)
# restricted to the output rows [lo, hi) (`side = "out"`) or to the
# reduced indices [lo, hi) (`side = "red"`), renumbered from 0.
restrict_ranges <- function(r, side, lo, hi) {
  counts <- diff(c(0L, r$slices))
  owner <- rep(seq_along(counts), counts)
  red_start <- r$red_start
  red_end <- r$red_end
  out_start <- r$out_start
  out_end <- r$out_end
  if (side == "out") {
    out_start <- pmax(out_start, lo) - lo
    out_end <- pmin(out_end, hi) - lo
    keep_cluster <- out_end > out_start
    keep_interval <- keep_cluster[owner]
  } else {
    red_start <- pmax(red_start, lo) - lo
    red_end <- pmin(red_end, hi) - lo
    keep_cluster <- rep(TRUE, length(counts))
    keep_interval <- red_end > red_start
  }
  kept_owner <- owner[keep_interval]
  counts <- tabulate(kept_owner, nbins = length(counts))[keep_cluster]
  list(
    out_start = as.integer(out_start[keep_cluster]), out_end = as.integer(out_end[keep_cluster]),
    slices = as.integer(cumsum(counts)),
    red_start = as.integer(red_start[keep_interval]), red_end = as.integer(red_end[keep_interval])
  )
}

# Output rows of several chunks stacked: matrices, or lists of
# `values` and `indices` (NULL for a value a gradient did not compute).
stack_rows <- function(parts) {
  first <- parts[[1]]
  if (is.null(first)) return(NULL)
  if (is.list(first)) {
    return(list(values = do.call(rbind, lapply(parts, `[[`, "values")), indices = do.call(rbind, lapply(parts, `[[`, "indices"))))
  }
  do.call(rbind, parts)
}

# The options a worker runs with: the caller's precision, summation,
# threads and backend; the worker's own device settings (devices, nvrtc,
# cache_dir); never distributed again, no progress bar.
worker_options <- function() {
  opts <- keops_options()
  list(
    backend = opts$backend, precision = opts$precision, threads = opts$threads, sum_scheme = opts$sum_scheme,
    verbosity = 0L, progress = FALSE, distributed = "none"
  )
}

# Runs one chunk on a worker. Errors are returned, not raised, so that the
# caller knows which chunk failed. `task$fail` (set only through the
# internal R option `keopsr.distributed_fail_chunk`, for tests) makes the
# chunk fail on purpose.
distributed_task <- function(task) {
  tryCatch(
    {
      if (identical(task$fail, "error")) stop("failure forced by option keopsr.distributed_fail_chunk")
      if (identical(task$fail, "die")) tools::pskill(Sys.getpid(), tools::SIGKILL)
      old <- keops_options(task$options)
      on.exit(keops_options(old), add = TRUE)
      settings <- engine_settings(task$sum_scheme)
      settings$progress <- NULL
      a <- task$args
      res <- switch(task$kind,
        reduce = if (is.null(task$ranges)) {
          keopsr_reduce(a$formula, a$args, a$inputs, settings)
        } else {
          r <- task$ranges
          keopsr_reduce_ranges(a$formula, a$args, a$inputs, settings, r$out_start, r$out_end, r$slices, r$red_start, r$red_end)
        },
        partial = keopsr_reduce_partial(a$formula, a$args, a$inputs, settings, task$offset, task$ranges),
        grad = keopsr_value_and_grad(a$formula, a$args, a$inputs, a$wrt, a$eta, a$want_value, settings)
      )
      check_result(res, NULL)
    },
    error = function(e) structure(list(condition = e), class = "keopsr_chunk_failure")
  )
}

# The classed error for chunk k of n, with the worker's condition as `parent`.
distributed_abort <- function(k, n, cond, call, what = "failed on its worker") {
  keopsr_abort("distributed", sprintf(
    "chunk %d of %d %s: %s", k, n, what, conditionMessage(cond)
  ), call, chunk = k, chunks = n, parent = cond)
}

# Runs the tasks as futures of the current plan (one per chunk) and returns
# their results in order. One progressr tick per finished chunk (shown
# when the user enabled progressr). On an error or an interrupt the other
# futures are cancelled where the future package can (future::cancel(),
# future >= 1.40); with older versions they finish on their workers and
# their results are dropped.
distributed_map <- function(tasks, call) {
  n <- length(tasks)
  fail <- getOption("keopsr.distributed_fail_chunk")
  tick <- if (requireNamespace("progressr", quietly = TRUE)) progressr::progressor(steps = n) else function(...) NULL
  futures <- vector("list", n)
  finished <- FALSE
  on.exit(if (!finished) distributed_cancel(futures), add = TRUE)
  for (k in seq_len(n)) {
    task <- tasks[[k]]
    if (!is.null(fail) && k == fail[[1]]) task$fail <- if (length(fail) > 1) fail[[2]] else "error"
    futures[[k]] <- tryCatch(
      # A quoted call (substitute = FALSE): `run` exists only in `globals`.
      future::future(quote(run(task)), substitute = FALSE,
        globals = list(run = distributed_task, task = task), packages = "keopsr",
        seed = NULL, label = sprintf("keopsr-chunk-%d-of-%d", k, n)
      ),
      error = function(e) distributed_abort(k, n, e, call, "could not be sent to a worker")
    )
  }
  results <- vector("list", n)
  for (k in seq_len(n)) {
    v <- tryCatch(future::value(futures[[k]]), error = function(e) distributed_abort(k, n, e, call, "lost its worker"))
    if (inherits(v, "keopsr_chunk_failure")) distributed_abort(k, n, v$condition, call)
    results[[k]] <- v
    tick()
  }
  finished <- TRUE
  results
}

distributed_cancel <- function(futures) {
  ns <- asNamespace("future")
  if (!exists("cancel", envir = ns, inherits = FALSE)) return(invisible())
  cancel <- get("cancel", envir = ns)
  for (f in futures) if (!is.null(f)) try(cancel(f), silent = TRUE)
  invisible()
}

# The reduction `formula` split across the workers, or NULL when it runs in
# the calling process (too small, a single worker, or a gradient around a
# reduction with `ranges`). `ranges`: from ranges_for(). Returns what
# keopsr_reduce() returns.
#
# A formula Grad(R, v, e) around a reduction R (keops_grad() operators,
# rkeops' gradient strings) is split like R's output rows: each chunk holds
# its rows of the variables of R's output index (e included) and all the
# other data, so it computes its rows of R (a Min's selection, a
# LogSumExp's maximum and sum) exactly as one process does. When v is of
# R's output index, the chunks' gradient rows are stacked; when v is of the
# reduced index or a parameter, each chunk's gradient is the sum over its
# rows, and the chunks' gradients are added.
distributed_reduce <- function(formula, args, inputs, sum_scheme, ranges, call, info = NULL, plan = NULL) {
  if (is.null(info)) info <- check_result(keopsr_split_info(formula, args, inputs), call)
  grad <- info$grad_around
  if (grad && !is.null(ranges)) return(NULL)
  if (is.null(plan)) plan <- split_plan(info$rows, info$inner, info$k, rows_only = grad)
  if (is.null(plan)) return(NULL)
  red_cat <- info$forward_reduced
  out_cat <- if (red_cat == "Vj") "Vi" else "Vj"
  bounds <- plan$bounds
  n <- length(bounds) - 1
  tasks <- lapply(seq_len(n), function(k) {
    lo <- bounds[k]
    hi <- bounds[k + 1]
    rows <- plan$axis == "rows"
    list(
      kind = if (rows) "reduce" else "partial", options = worker_options(), sum_scheme = sum_scheme,
      offset = if (rows) 0 else lo,
      ranges = if (!is.null(ranges)) restrict_ranges(ranges, if (rows) "out" else "red", lo, hi),
      args = list(
        formula = formula, args = args,
        inputs = chunk_inputs(inputs, info$categories, if (rows) out_cat else red_cat, lo, hi)
      )
    )
  })
  parts <- distributed_map(tasks, call)
  if (grad && info$categories[[info$grad_var]] != out_cat) return(Reduce(`+`, parts))
  if (plan$axis == "rows") return(stack_rows(parts))
  settings <- engine_settings(sum_scheme)
  settings$progress <- NULL
  keopsr_merge_partials(formula, args, settings, parts)
}

# Value and gradients (as keopsr_value_and_grad()) split over output rows:
# each chunk holds its rows of the output-index variables and of eta, and
# all the other data, so every chunk computes its rows' values (min, LogSumExp,
# selections) exactly as one process does. Gradients of output-index
# variables are stacked; those of reduced-index variables and parameters
# are Sum reductions over the output rows, so the chunks' sums are added
# (the Sum monoid's merge). NULL when it runs in the calling process.
distributed_value_and_grad <- function(formula, args, inputs, wrt, eta, want_value, sum_scheme, call) {
  info <- check_result(keopsr_split_info(formula, args, inputs), call)
  if (info$grad_around) return(NULL)
  m <- info$rows
  if (!is.null(eta)) {
    # Anything but one value per output row and value column is left to
    # the core's own message.
    if (length(eta) != m * info$value_cols) return(NULL)
    eta <- matrix(as.double(eta), nrow = m)
  }
  plan <- split_plan(m, info$inner, rows_only = TRUE)
  if (is.null(plan)) return(NULL)
  out_cat <- if (info$reduced == "j") "Vi" else "Vj"
  bounds <- plan$bounds
  n <- length(bounds) - 1
  tasks <- lapply(seq_len(n), function(k) {
    lo <- bounds[k]
    hi <- bounds[k + 1]
    list(
      kind = "grad", options = worker_options(), sum_scheme = sum_scheme,
      args = list(
        formula = formula, args = args, inputs = chunk_inputs(inputs, info$categories, out_cat, lo, hi),
        wrt = wrt, eta = if (!is.null(eta)) take_rows(eta, lo, hi), want_value = want_value
      )
    )
  })
  parts <- distributed_map(tasks, call)
  value <- stack_rows(lapply(parts, `[[`, "value"))
  gradients <- lapply(seq_along(wrt), function(g) {
    pieces <- lapply(parts, function(p) p$gradients[[g]])
    if (info$categories[wrt[g] + 1] == out_cat) do.call(rbind, pieces) else Reduce(`+`, pieces)
  })
  list(value = value, gradients = gradients)
}

# A conjugate-gradient solve whose products by K are split across the
# workers; the recurrence runs in the core (keopsr_solve_with()). NULL when
# the products would run in the calling process. Each product ships its
# chunks' data again: future has no way to keep data on a worker between
# futures (see the "Scaling out" vignette for the cost).
distributed_solve <- function(formula, args, inputs, var, b, alpha, tol, max_iter, jacobi, call) {
  info <- check_result(keopsr_split_info(formula, args, inputs), call)
  if (info$grad_around) return(NULL)
  plan <- split_plan(info$rows, info$inner)
  if (is.null(plan)) return(NULL)
  failed <- new.env(parent = emptyenv())
  matvec <- function(p) {
    tryCatch(
      {
        inputs[[var + 1]] <- p
        res <- check_result(distributed_reduce(formula, args, inputs, NULL, NULL, call, info, plan), call)
        as.double(res)
      },
      error = function(e) {
        failed$condition <- e
        NULL
      },
      interrupt = function(e) {
        failed$condition <- structure(
          class = c("keopsr_interrupt_error", "keopsr_error", "interrupt", "error", "condition"),
          list(message = "interrupted during a distributed solve", call = call)
        )
        NULL
      }
    )
  }
  res <- keopsr_solve_with(formula, args, inputs, as.integer(var), b, alpha, tol, max_iter, jacobi, engine_settings(), matvec)
  if (!is.null(failed$condition)) stop(failed$condition)
  res
}
