#!/usr/bin/env Rscript
# keopsr benchmark suite: keopsr against pykeops (CPU), dense base R, FNN and
# RANN. Writes bench/RESULTS.md (and the raw numbers to bench/results.csv).
# See bench/README.md.
#
#   Rscript bench/run.R            # the full suite (hours of pykeops at 1e5 are
#                                  # skipped by the per-run budget, see below)
#   Rscript bench/run.R --quick    # small sizes, 2 runs: a few minutes
#
# Options (also read from the environment variable KEOPSR_BENCH_ARGS):
#   --quick             small sizes and 2 runs (also KEOPSR_BENCH_QUICK=1)
#   --runs=N            timed runs per case after one warm-up (default 5; quick 2;
#                       0: a single run, for cases of many minutes)
#   --budget=S          skip a case whose single run is estimated above S
#                       seconds, extrapolated from the previous size (default 120)
#   --threads=N         threads for keopsr and pykeops (default: all cores)
#   --cases=a,b         families to run: gauss, grad, lse, knn, highdim, memory
#   --sizes=n1,n2       M = N sizes for gauss, grad and lse
#   --knn-sizes=n1,n2   M = N sizes for knn (default 1e4,1e5)
#   --knn-dims=d1,d2    dimensions for knn (default 3,16,50)
#   --knn-queries=M     knn with M query points x against the N of --knn-sizes
#                       (default M = N): a cheaper run at a large N
#   --dtypes=float64    precisions for gauss, grad and lse
#   --no-pykeops        do not run pykeops
#   --no-dense          do not run the dense base-R formulations
#   --no-first-call     do not time first calls (they run at the smallest size)
#   --python=PATH       python with pykeops (default: bench/.venv, created if missing)
#   --mem-seconds=S     how long to watch the 1e6 x 1e6 memory run (default: budget; quick 15)
#   --dense-max-gb=G    skip dense formulations needing more memory (default 8; quick 4)
#   --out=PATH          where to write the report (default bench/RESULTS.md)
#   --label=TEXT        a line put at the top of the report

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------
file_arg <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(file_arg)) normalizePath(dirname(file_arg[1])) else normalizePath("bench")
root_dir <- dirname(bench_dir)

argv <- c(strsplit(Sys.getenv("KEOPSR_BENCH_ARGS"), "[[:space:]]+")[[1]], commandArgs(trailingOnly = TRUE))
argv <- argv[nzchar(argv)]
arg <- function(name, default = NULL) {
  hit <- grep(paste0("^--", name, "(=|$)"), argv, value = TRUE)
  if (!length(hit)) return(default)
  hit <- hit[length(hit)]
  if (!grepl("=", hit)) return(TRUE)
  sub("^[^=]*=", "", hit)
}
nums <- function(s) as.numeric(strsplit(s, ",")[[1]])

quick <- isTRUE(arg("quick", FALSE)) || Sys.getenv("KEOPSR_BENCH_QUICK") %in% c("1", "true", "TRUE")
runs <- as.integer(arg("runs", if (quick) 2 else 5))
budget <- as.numeric(arg("budget", 120))
n_cores <- parallel::detectCores()
threads <- as.integer(arg("threads", n_cores))
families <- strsplit(arg("cases", "gauss,grad,lse,knn,highdim,memory"), ",")[[1]]
kernel_sizes <- if (!is.null(arg("sizes"))) nums(arg("sizes")) else if (quick) c(1e3, 1e4) else c(1e3, 1e4, 1e5, 1e6)
kernel_dtypes <- strsplit(arg("dtypes", "float64,float32"), ",")[[1]]
knn_sizes <- if (!is.null(arg("knn-sizes"))) nums(arg("knn-sizes")) else if (quick) 5e3 else c(1e4, 1e5)
knn_dims <- if (!is.null(arg("knn-dims"))) nums(arg("knn-dims")) else c(3, 16, 50)
knn_queries <- if (!is.null(arg("knn-queries"))) as.numeric(arg("knn-queries")) else NULL
highdim_sizes <- if (quick) 2e3 else c(2e3, 2e4)
use_pykeops <- !isTRUE(arg("no-pykeops", FALSE))
use_dense <- !isTRUE(arg("no-dense", FALSE))
first_call <- !isTRUE(arg("no-first-call", FALSE))
mem_seconds <- as.numeric(arg("mem-seconds", if (quick) 15 else budget))
dense_max_gb <- as.numeric(arg("dense-max-gb", if (quick) 4 else 8))
out_md <- arg("out", file.path(bench_dir, "RESULTS.md"))
out_csv <- sub("\\.md$", ".csv", out_md)
if (out_csv == out_md) out_csv <- paste0(out_md, ".csv")

msg <- function(...) { cat(sprintf(...), "\n", sep = ""); flush(stdout()) }
now <- function() as.numeric(Sys.time())
started <- now()

if (!requireNamespace("keopsr", quietly = TRUE)) stop("keopsr is not installed: run `make install` (or R CMD INSTALL .) first")
invisible(keopsr::keops_options(threads = threads, precision = "float64"))
have_fnn <- requireNamespace("FNN", quietly = TRUE)
have_rann <- requireNamespace("RANN", quietly = TRUE)
notes <- character()  # things that failed or were left out, for the report
if (!have_fnn) notes <- c(notes, "FNN is not installed (Debian: r-cran-fnn): not run")
if (!have_rann) notes <- c(notes, "RANN is not installed (Debian: r-cran-rann): not run")

# ---------------------------------------------------------------------------
# pykeops in a virtual environment
# ---------------------------------------------------------------------------
python <- arg("python", file.path(bench_dir, ".venv", "bin", "python"))
pk_build <- file.path(bench_dir, ".cache", "keops")
pk_info <- list(ok = FALSE, why = "not requested (--no-pykeops)")
sh <- function(cmd) {
  out <- suppressWarnings(system(paste(cmd, "2>&1"), intern = TRUE))
  list(status = if (is.null(attr(out, "status"))) 0L else attr(out, "status"), out = out)
}
if (use_pykeops) {
  if (!file.exists(python) && is.null(arg("python"))) {
    venv <- file.path(bench_dir, ".venv")
    msg("creating %s and installing pykeops, numpy (pip)", venv)
    r <- sh(sprintf("python3 -m venv '%s' && '%s/bin/pip' install --quiet pykeops numpy", venv, venv))
    if (r$status != 0) pk_info$why <- paste("could not create the venv / pip install pykeops numpy:", paste(tail(r$out, 5), collapse = " "))
  }
  if (file.exists(python)) {
    r <- sh(sprintf("'%s' -c 'import pykeops, numpy; print(pykeops.__version__, numpy.__version__)'", python))
    if (r$status == 0) {
      v <- strsplit(tail(r$out, 1), " ")[[1]]
      pk_info <- list(ok = TRUE, version = v[1], numpy = v[2], why = "")
      dir.create(pk_build, recursive = TRUE, showWarnings = FALSE)
    } else {
      pk_info$why <- paste("pykeops does not import:", paste(tail(r$out, 5), collapse = " "))
    }
  } else if (pk_info$why == "not requested (--no-pykeops)") {
    pk_info$why <- sprintf("no python at %s", python)
  }
  if (!pk_info$ok) notes <- c(notes, paste("pykeops:", pk_info$why))
}

# ---------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------
results <- data.frame()
add_result <- function(...) {
  row <- list(...)
  base <- list(family = NA, D = NA, dtype = NA, n = NA, impl = NA, status = NA, median_s = NA, warmup_s = NA,
               first_s = NA, runs = NA, times = NA, check = NA, note = NA)
  base[names(row)] <- row
  results <<- rbind(results, as.data.frame(base, stringsAsFactors = FALSE))
}
last_time <- list()  # key -> c(pairs, seconds of one run): for the budget
estimate <- function(key, pairs) {
  prev <- last_time[[key]]
  if (is.null(prev)) return(NA)
  prev[2] * pairs / prev[1]
}

time_runs <- function(f, runs) {
  invisible(gc())
  t0 <- now(); out <- f(); warm <- now() - t0
  if (runs == 0) return(list(warmup = warm, times = warm, median = warm, out = out))  # one cold run
  times <- numeric(runs)
  for (r in seq_len(runs)) { t0 <- now(); out <- f(); times[r] <- now() - t0 }
  list(warmup = warm, times = times, median = stats::median(times), out = out)
}

rel_diff <- function(a, ref) {
  a <- as.numeric(a); ref <- as.numeric(ref)
  if (length(a) != length(ref)) return(NA)
  max(abs(a - ref)) / max(abs(ref))
}
agreement <- function(a, ref) if (length(a) == length(ref)) mean(as.numeric(a) == as.numeric(ref)) else NA
fmt_check <- function(kind, v, against) {
  if (is.na(v)) return(NA)
  if (kind == "index") sprintf("%s %.3g%%", against, 100 * v) else sprintf("%s %.1e", against, v)
}

write_bin <- function(dir, name, m) {
  con <- file(file.path(dir, paste0(name, ".bin")), "wb")
  writeBin(as.double(m), con)
  close(con)
}

# Runs pykeops on the same inputs (a child python process) and returns its timings and result.
run_pykeops <- function(fam, data, dtype, first_formula) {
  dir <- tempfile("pk"); dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  spec <- character()
  for (nm in fam$pk_inputs) {
    m <- as.matrix(data[[nm]])
    write_bin(dir, nm, m)
    spec <- c(spec, sprintf("%s:%d:%d", nm, nrow(m), ncol(m)))
  }
  out_file <- file.path(dir, "out.bin")
  args <- c(file.path(bench_dir, "pykeops_bench.py"),
            paste0("--formula=", shQuote(fam$pk_formula(""))), paste0("--aliases=", shQuote(paste(fam$pk_aliases(data), collapse = ";"))),
            "--reduction", fam$pk_reduction, "--axis", "1", "--dtype", dtype, "--dir", shQuote(dir),
            "--inputs", paste(spec, collapse = ","), "--runs", runs, "--out", shQuote(out_file),
            "--build-folder", shQuote(pk_build))
  if (!is.null(fam$pk_opt)) args <- c(args, "--opt-arg", fam$pk_opt)
  if (!is.null(first_formula)) args <- c(args, paste0("--first-formula=", shQuote(first_formula)))
  err_file <- file.path(dir, "stderr.txt")
  out <- suppressWarnings(system2(python, args, stdout = TRUE, stderr = err_file,
                                  env = sprintf("OMP_NUM_THREADS=%d", threads), timeout = max(900, 3 * budget * (runs + 2))))
  status <- attr(out, "status")
  kv <- regmatches(out, regexpr("=", out), invert = TRUE)
  vals <- stats::setNames(lapply(kv, `[`, 2), vapply(kv, `[`, "", 1))
  if (!is.null(status) && status != 0 || is.null(vals$median_s)) {
    err <- if (file.exists(err_file)) readLines(err_file, warn = FALSE) else character()
    return(list(ok = FALSE, why = paste(c(sprintf("exit status %s", if (is.null(status)) "?" else status), tail(err, 4)), collapse = " | ")))
  }
  res <- list(ok = TRUE, median = as.numeric(vals$median_s), warmup = as.numeric(vals$warmup_s),
              first = if (is.null(vals$first_call_s)) NA else as.numeric(vals$first_call_s),
              times = vals$times)
  n_out <- file.size(out_file) / 8
  res$out <- readBin(out_file, "double", n = n_out)
  res
}

# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------
decl <- function(D) c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D), "b = Vj(1)")
# A fresh integer constant (KeOps formula strings take no floating-point
# literals) makes a formula that neither engine has seen: its first call.
# It must not come from R's generator, which the cases seed.
fresh_count <- 0
fresh <- function() {
  fresh_count <<- fresh_count + 1
  sprintf("/%d", 100000 + (Sys.getpid() * 7919 + floor(now() * 1000) + 104729 * fresh_count) %% 900000)
}

gauss_data <- function(M, N, D) {
  s <- 1 / sqrt(D / 3)  # keeps |x - y|^2 of order D = 3 whatever D
  list(x = matrix(rnorm(M * D, sd = s), M, D), y = matrix(rnorm(N * D, sd = s), N, D), b = rnorm(N), e = rnorm(M))
}
sqdist_dense <- function(x, y) outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
sqdist_dist <- function(x, y) {
  M <- nrow(x)
  as.matrix(stats::dist(rbind(x, y)))[seq_len(M), M + seq_len(nrow(y)), drop = FALSE]^2
}
mm <- base::`%*%`

kernel_family <- function(id, title, D, sizes, dtypes) {
  fam <- list(id = id, title = title, D = D, sizes = sizes, dtypes = dtypes, data = gauss_data, check = "numeric",
              pk_inputs = c("x", "y", "b"), pk_reduction = "Sum",
              pk_aliases = function(d) decl(D),
              pk_formula = function(k) sprintf("Exp(-SqDist(x,y)%s)*b", k),
              formula = function(k) sprintf("Sum_Reduction(Exp(-SqDist(x,y)%s)*b, 1)", k))
  fam$keopsr <- function(k) {
    op <- keopsr::keops_kernel(fam$formula(k), decl(D))
    function(d) op(list(d$x, d$y, d$b))
  }
  fam$dense <- list(
    "dense dist()" = list(mem = function(M, N) 8 * (1.5 * (M + N)^2 + 3 * M * N),
                          f = function(d) drop(mm(exp(-sqdist_dist(d$x, d$y)), d$b))),
    "dense tcrossprod" = list(mem = function(M, N) 8 * 4 * M * N,
                              f = function(d) drop(mm(exp(-sqdist_dense(d$x, d$y)), d$b))))
  fam
}

grad_family <- function(sizes, dtypes) {
  fam <- kernel_family("grad", "Gradient of the Gaussian kernel product with respect to x (keops_grad)", 3, sizes, dtypes)
  fam$pk_inputs <- c("x", "y", "b", "e")
  fam$pk_aliases <- function(d) c(decl(3), "e = Vi(1)")
  fam$pk_formula <- function(k) sprintf("Grad(Exp(-SqDist(x,y)%s)*b, x, e)", k)
  fam$shown <- paste("`keops_grad(op, \"x\")` of `op = keops_kernel(\"Sum_Reduction(Exp(-SqDist(x,y))*b, 1)\", ...)`,",
                     "applied with random weights e (pykeops: `Genred(\"Grad(Exp(-SqDist(x,y))*b, x, e)\", ...)`)")
  fam$keopsr <- function(k) {
    g <- keopsr::keops_grad(keopsr::keops_kernel(fam$formula(k), decl(3)), "x")
    function(d) g(list(d$x, d$y, d$b, d$e))
  }
  grad_dense <- function(d, K) -2 * d$e * (d$x * drop(mm(K, d$b)) - mm(K, d$b * d$y))
  fam$dense <- list(
    "dense dist()" = list(mem = function(M, N) 8 * (1.5 * (M + N)^2 + 3 * M * N),
                          f = function(d) grad_dense(d, exp(-sqdist_dist(d$x, d$y)))),
    "dense tcrossprod" = list(mem = function(M, N) 8 * 4 * M * N,
                              f = function(d) grad_dense(d, exp(-sqdist_dense(d$x, d$y)))))
  fam
}

lse_family <- function(sizes, dtypes) {
  fam <- kernel_family("lse", "LogSumExp of the Gaussian kernel: log sum_j exp(-|x_i - y_j|^2)", 3, sizes, dtypes)
  fam$pk_inputs <- c("x", "y")
  fam$pk_aliases <- function(d) decl(3)[1:2]
  fam$pk_reduction <- "LogSumExp"
  fam$pk_formula <- function(k) sprintf("-SqDist(x,y)%s", k)
  fam$formula <- function(k) sprintf("LogSumExp_Reduction(-SqDist(x,y)%s, 1)", k)
  fam$keopsr <- function(k) {
    op <- keopsr::keops_kernel(fam$formula(k), decl(3)[1:2])
    function(d) op(list(d$x, d$y))
  }
  lse_dense <- function(m) {
    mx <- m[cbind(seq_len(nrow(m)), max.col(m, ties.method = "first"))]
    mx + log(rowSums(exp(m - mx)))
  }
  fam$dense <- list(
    "dense dist()" = list(mem = function(M, N) 8 * (1.5 * (M + N)^2 + 3 * M * N),
                          f = function(d) lse_dense(-sqdist_dist(d$x, d$y))),
    "dense tcrossprod" = list(mem = function(M, N) 8 * 4 * M * N,
                              f = function(d) lse_dense(-sqdist_dense(d$x, d$y))))
  fam
}

knn_family <- function(D, sizes) {
  K <- 10
  fam <- list(id = "knn", title = "k nearest neighbours, K = 10 (ArgKMin_Reduction(SqDist(x,y), 10, 1))",
              D = D, sizes = sizes, dtypes = "float64", check = "index", queries = knn_queries,
              data = function(M, N, D) list(x = matrix(rnorm(M * D), M, D), y = matrix(rnorm(N * D), N, D)),
              pk_inputs = c("x", "y"), pk_reduction = "ArgKMin", pk_opt = K,
              pk_aliases = function(d) decl(D)[1:2],
              pk_formula = function(k) sprintf("SqDist(x,y)%s", k),
              formula = function(k) sprintf("ArgKMin_Reduction(SqDist(x,y)%s, %d, 1)", k, K),
              pk_transform = function(out) out + 1)  # pykeops indices are 0-based floats
  fam$keopsr <- function(k) {
    op <- keopsr::keops_kernel(fam$formula(k), decl(D)[1:2])
    function(d) op(list(d$x, d$y))
  }
  fam$dense <- list()
  fam$others <- list()
  if (have_fnn) fam$others[["FNN (kd_tree)"]] <- function(d) FNN::get.knnx(d$y, d$x, k = K)$nn.index
  if (have_rann) fam$others[["RANN (nn2)"]] <- function(d) RANN::nn2(d$y, d$x, k = K)$nn.idx
  fam
}

highdim_family <- function(sizes) {
  fam <- kernel_family("highdim", "High-dimensional squared distances: Gaussian kernel product with D = 200", 200, sizes, "float64")
  fam$dense <- list()
  fam
}

fam_list <- list()
if ("gauss" %in% families) fam_list <- c(fam_list, list(kernel_family("gauss", "Gaussian kernel product a_i = sum_j exp(-|x_i - y_j|^2) b_j, D = 3", 3, kernel_sizes, kernel_dtypes)))
if ("grad" %in% families) fam_list <- c(fam_list, list(grad_family(kernel_sizes, kernel_dtypes)))
if ("lse" %in% families) fam_list <- c(fam_list, list(lse_family(kernel_sizes, kernel_dtypes)))
if ("knn" %in% families) fam_list <- c(fam_list, lapply(knn_dims, knn_family, sizes = knn_sizes))
if ("highdim" %in% families) fam_list <- c(fam_list, list(highdim_family(highdim_sizes)))

# ---------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------
run_family <- function(fam) {
  for (dtype in fam$dtypes) {
    for (si in seq_along(fam$sizes)) {
      n <- fam$sizes[si]
      first <- si == 1 && first_call
      M <- if (is.null(fam$queries)) n else fam$queries  # output rows; n reduced indices
      pairs <- M * n
      tag <- sprintf("%s D=%d %s n=%g", fam$id, fam$D, dtype, n)
      row <- function(impl, ...) add_result(family = fam$id, D = fam$D, dtype = dtype, n = n, impl = impl, ...)
      key <- function(impl) paste(fam$id, fam$D, dtype, impl)
      over <- function(impl) {
        est <- estimate(key(impl), pairs)
        if (!is.na(est) && est > budget) {
          row(impl, status = "skipped", note = sprintf("estimated %.0f s per run > budget %g s", est, budget))
          msg("  %-18s skipped (estimated %.0f s per run)", impl, est)
          return(TRUE)
        }
        FALSE
      }
      msg("%s", tag)
      set.seed(42)
      data <- fam$data(M, n, fam$D)
      invisible(keopsr::keops_options(precision = dtype))

      # keopsr
      ref_keopsr <- NULL
      if (!over("keopsr")) {
        first_s <- NA
        if (first) {
          t0 <- now(); fresh_out <- fam$keopsr(fresh())(data); first_s <- now() - t0
        }
        f <- fam$keopsr("")
        tr <- tryCatch(time_runs(function() f(data), runs), error = function(e) e)
        if (inherits(tr, "error")) {
          row("keopsr", status = "failed", note = conditionMessage(tr))
          msg("  keopsr failed: %s", conditionMessage(tr))
        } else {
          ref_keopsr <- tr$out
          last_time[[key("keopsr")]] <<- c(pairs, tr$median)
          row("keopsr", status = "ok", median_s = tr$median, warmup_s = tr$warmup, first_s = first_s, runs = runs,
              times = paste(sprintf("%.4f", tr$times), collapse = ","))
          msg("  %-18s median %.4f s%s", "keopsr", tr$median, if (first) sprintf(" (first call %.1f ms)", 1e3 * first_s) else "")
        }
      }
      check_against <- function(out, against) {
        if (is.null(ref_keopsr) || is.null(out)) return(NA)
        v <- if (fam$check == "index") agreement(ref_keopsr, out) else rel_diff(ref_keopsr, out)
        fmt_check(fam$check, v, against)
      }

      # pykeops
      if (use_pykeops && pk_info$ok && !over("pykeops")) {
        pk <- run_pykeops(fam, data, dtype, if (first) fam$pk_formula(fresh()) else NULL)
        if (!pk$ok) {
          row("pykeops", status = "failed", note = pk$why)
          msg("  pykeops failed: %s", pk$why)
        } else {
          out <- if (!is.null(fam$pk_transform)) fam$pk_transform(pk$out) else pk$out
          last_time[[key("pykeops")]] <<- c(pairs, pk$median)
          row("pykeops", status = "ok", median_s = pk$median, warmup_s = pk$warmup, first_s = pk$first, runs = runs,
              times = pk$times, check = check_against(out, "pykeops"))
          msg("  %-18s median %.4f s%s", "pykeops", pk$median, if (first) sprintf(" (first call %.2f s)", pk$first) else "")
        }
      }

      # dense base R (float64 only: R has no float32 matrices) and kNN packages
      others <- list()
      if (use_dense && dtype == "float64") {
        for (nm in names(fam$dense)) {
          need <- fam$dense[[nm]]$mem(n, n)
          if (need > dense_max_gb * 2^30) {
            row(nm, status = "skipped", note = sprintf("needs about %.0f GB (> %g GB)", need / 2^30, dense_max_gb))
            next
          }
          others[[nm]] <- fam$dense[[nm]]$f
        }
      }
      if (dtype == "float64") others <- c(others, fam$others)
      for (nm in names(others)) {
        if (over(nm)) next
        tr <- tryCatch(time_runs(function() others[[nm]](data), runs), error = function(e) e)
        if (inherits(tr, "error")) {
          row(nm, status = "failed", note = conditionMessage(tr))
          msg("  %s failed: %s", nm, conditionMessage(tr))
          next
        }
        last_time[[key(nm)]] <<- c(pairs, tr$median)
        row(nm, status = "ok", median_s = tr$median, warmup_s = tr$warmup, runs = runs,
            times = paste(sprintf("%.4f", tr$times), collapse = ","), check = check_against(tr$out, nm))
        msg("  %-18s median %.4f s", nm, tr$median)
        tr <- NULL
        invisible(gc())
      }
      rm(data); invisible(gc())
    }
  }
  invisible(keopsr::keops_options(precision = "float64"))
}

for (fam in fam_list) run_family(fam)

# Peak memory of keopsr at M = N = 1e6 in a fresh Rscript (bench/memory_child.R).
memory <- data.frame()
if ("memory" %in% families) {
  M <- 1e6; D <- 3
  for (dtype in c("float64", "float32")) {
    msg("memory %s M = N = %g", dtype, M)
    log <- tempfile("mem", fileext = ".log")
    rscript <- file.path(R.home("bin"), "Rscript")
    cmd <- sprintf("'%s' '%s' %g %g %d %s %d > '%s' 2>&1 & echo $!", rscript, file.path(bench_dir, "memory_child.R"),
                   M, M, D, dtype, threads, log)
    pid <- as.integer(system(cmd, intern = TRUE))
    status_file <- sprintf("/proc/%d/status", pid)
    read_kb <- function(key) {
      st <- tryCatch(readLines(status_file, warn = FALSE), error = function(e) character())
      v <- grep(paste0("^", key, ":"), st, value = TRUE)
      if (length(v)) as.numeric(gsub("[^0-9]", "", v)) else NA
    }
    alive <- function() {
      st <- tryCatch(readLines(status_file, warn = FALSE), error = function(e) character())
      length(st) > 0 && !any(grepl("^State:\\s+Z", st))
    }
    t_run <- NA; peak <- NA
    t0 <- now()
    while (alive()) {
      lines <- if (file.exists(log)) readLines(log, warn = FALSE) else character()
      running <- any(lines == "running")
      if (running && is.na(t_run)) t_run <- now()
      if (running) peak <- max(peak, read_kb("VmHWM"), na.rm = TRUE)
      if (!is.na(t_run) && now() - t_run > mem_seconds) break
      if (now() - t0 > mem_seconds + 300) break  # never started the reduction
      Sys.sleep(0.2)
    }
    completed <- !alive()
    if (!completed) tools::pskill(pid, tools::SIGKILL)
    Sys.sleep(0.3)
    lines <- readLines(log, warn = FALSE)
    stage <- function(name, what) {
      v <- grep(paste0("^", name, " "), lines, value = TRUE)
      if (!length(v)) return(NA)
      as.numeric(sub(".*=", "", regmatches(v, regexpr(paste0(what, "=[0-9]+"), v))))
    }
    if (completed) peak <- max(peak, stage("done", "hwm_kb"), na.rm = TRUE)
    io_bytes <- 8 * (M * D + M * D + M + M)  # x, y, b and the output, as R doubles
    memory <- rbind(memory, data.frame(
      dtype = dtype, loaded_mb = stage("loaded", "rss_kb") / 1024, data_mb = stage("data", "rss_kb") / 1024,
      peak_mb = peak / 1024, io_mb = io_bytes / 2^20, watched_s = if (is.na(t_run)) NA else now() - t_run,
      completed = completed, hwm_reset = any(lines == "hwm_reset=TRUE"), stringsAsFactors = FALSE))
    if (is.na(t_run)) notes <- c(notes, sprintf("memory %s: the child never started the reduction: %s", dtype, paste(tail(lines, 3), collapse = " | ")))
    msg("  peak %.0f MB (R + keopsr %.0f MB, with data %.0f MB), inputs + output %.0f MB", peak / 1024,
        memory$loaded_mb[nrow(memory)], memory$data_mb[nrow(memory)], io_bytes / 2^20)
  }
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
dir.create(dirname(out_md), recursive = TRUE, showWarnings = FALSE)
write.csv(results, out_csv, row.names = FALSE)

first_line <- function(cmd) {
  r <- sh(cmd)
  if (r$status == 0 && length(r$out)) r$out[1] else "unknown"
}
cpu <- tryCatch(sub(".*:\\s*", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1]), error = function(e) "unknown")
mem_total <- tryCatch(as.numeric(gsub("[^0-9]", "", grep("^MemTotal", readLines("/proc/meminfo"), value = TRUE))) / 2^20, error = function(e) NA)
git <- first_line(sprintf("git -C '%s' rev-parse --short HEAD", root_dir))
git_dirty <- length(sh(sprintf("git -C '%s' status --porcelain --untracked-files=no", root_dir))$out) > 0
pkg_version <- function(p) tryCatch(as.character(utils::packageVersion(p)), error = function(e) "not installed")
si <- utils::sessionInfo()
flags <- tryCatch(sub(".*:\\s*", "", grep("^flags", readLines("/proc/cpuinfo"), value = TRUE)[1]), error = function(e) "")
simd <- intersect(c("sse4_2", "avx", "avx2", "fma", "avx512f"), strsplit(flags, " ")[[1]])

f_s <- function(s) ifelse(is.na(s), "", ifelse(s < 1, sprintf("%.2f ms", 1e3 * s), sprintf("%.2f s", s)))
f_n <- function(n) {
  e <- floor(log10(n)); m <- n / 10^e
  ifelse(abs(m - 1) < 1e-9, sprintf("1e%d", e), sprintf("%ge%d", m, e))
}
f_ratio <- function(r) ifelse(is.na(r), "", sprintf("%.2fx", r))
L <- character()
add <- function(...) L <<- c(L, sprintf(...))
cell <- function(fam_id, D, dtype, n, impl) {
  r <- results[results$family == fam_id & results$D == D & results$dtype == dtype & results$n == n & results$impl == impl, ]
  if (!nrow(r)) return(NULL)
  r[1, ]
}

add("# keopsr benchmark results")
add("")
if (quick) {
  add("> **QUICK RUN** (`--quick`: small sizes, %d timed runs per case). These numbers only show that the suite works;", runs)
  add("> run the full suite (`make bench` or `Rscript bench/run.R`) on a quiet machine for real numbers.")
  add("")
}
if (!is.null(arg("label"))) { add("> %s", arg("label")); add("") }
add("- Date: %s", format(Sys.time(), "%Y-%m-%d %H:%M %Z", tz = "UTC"))
add("- Command: `Rscript bench/run.R %s` (%.0f min)", paste(argv, collapse = " "), (now() - started) / 60)
add("- CPU: %s, %d cores (%s); %.0f GiB memory; load average at the end: %s", cpu, n_cores, paste(simd, collapse = ", "),
    mem_total, paste(tryCatch(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3], error = function(e) "?"), collapse = " "))
add("- Threads: keopsr `keops_options(threads = %d)`, pykeops `OMP_NUM_THREADS=%d`; FNN, RANN and dense R run on one thread", threads, threads)
add("- %s; BLAS: %s", R.version.string, basename(si$BLAS))
add("- keopsr %s (commit %s%s); pykeops %s, numpy %s (%s); FNN %s; RANN %s",
    pkg_version("keopsr"), git, if (git_dirty) ", with uncommitted changes" else "",
    if (pk_info$ok) pk_info$version else "not run", if (pk_info$ok) pk_info$numpy else "-",
    first_line("g++ --version"), pkg_version("FNN"), pkg_version("RANN"))
if (runs == 0) {
  add("- Each time is a single run (no warm-up); a case is skipped when one run is estimated (from the previous size) above %g s.", budget)
} else {
  add("- Each time is the median of %d runs after one warm-up run; a case is skipped when one run is estimated (from the previous size) above %g s.", runs, budget)
}
add("- Ratio = keopsr throughput / other = other's time / keopsr's time (above 1: keopsr is faster).")
add("")

fam_ids <- unique(vapply(fam_list, `[[`, "", "id"))
# Writes a table row: `cells` (keopsr's columns), then time and ratio of
# each other tool, then the agreement checks.
add_comparison_row <- function(cells, fid, D, dtype, n, others, ks) {
  checks <- character()
  for (o in others) {
    r <- cell(fid, D, dtype, n, o)
    if (is.null(r)) { cells <- c(cells, "", ""); next }
    if (r$status != "ok") { cells <- c(cells, r$status, ""); next }
    cells <- c(cells, f_s(r$median_s), f_ratio(r$median_s / ks))
    if (!is.na(r$check)) checks <- c(checks, r$check)
  }
  add("| %s |", paste(c(cells, paste(checks, collapse = "; ")), collapse = " | "))
}

for (fid in setdiff(fam_ids, "knn")) {
  fams <- Filter(function(f) f$id == fid, fam_list)
  fam <- fams[[1]]
  impls <- unique(results$impl[results$family == fid])
  others <- setdiff(impls, "keopsr")
  add("## %s", fam$title)
  add("")
  add("Formula: %s.", if (!is.null(fam$shown)) fam$shown else sprintf("`%s`", fam$formula("")))
  add("")
  hdr <- c("precision", "M = N", "keopsr", "pairs/s", unlist(lapply(others, function(o) c(o, "ratio"))), "max rel. diff of keopsr from")
  add("| %s |", paste(hdr, collapse = " | "))
  add("|%s", paste(rep("---|", length(hdr)), collapse = ""))
  for (dtype in fam$dtypes) for (n in fam$sizes) {
    k <- cell(fid, fam$D, dtype, n, "keopsr")
    if (is.null(k)) next
    ks <- if (k$status == "ok") k$median_s else NA
    cells <- c(dtype, f_n(n),
               if (k$status == "ok") f_s(ks) else k$status,
               if (!is.na(ks)) sprintf("%.3g", n * n / ks) else "")
    add_comparison_row(cells, fid, fam$D, dtype, n, others, ks)
  }
  add("")
}

if ("knn" %in% fam_ids) {
  knn_fams <- Filter(function(f) f$id == "knn", fam_list)
  fam <- knn_fams[[1]]
  others <- setdiff(unique(results$impl[results$family == "knn"]), "keopsr")
  add("## %s", fam$title)
  add("")
  points <- if (is.null(knn_queries)) "M = N points" else sprintf("M = %s query points x against N points y", f_n(knn_queries))
  add("%s, x and y drawn independently from N(0, I_D); float64. FNN `get.knnx(y, x, k = 10)` (kd-tree), RANN `nn2(y, x, k = 10)` (exact, eps = 0).", points)
  add("")
  hdr <- c("D", if (is.null(knn_queries)) "M = N" else "N", "keopsr", unlist(lapply(others, function(o) c(o, "ratio"))), "indices equal to keopsr's")
  add("| %s |", paste(hdr, collapse = " | "))
  add("|%s", paste(rep("---|", length(hdr)), collapse = ""))
  for (f in knn_fams) for (n in f$sizes) {
    k <- cell("knn", f$D, "float64", n, "keopsr")
    if (is.null(k)) next
    ks <- if (k$status == "ok") k$median_s else NA
    cells <- c(f$D, f_n(n), if (k$status == "ok") f_s(ks) else k$status)
    add_comparison_row(cells, "knn", f$D, "float64", n, others, ks)
  }
  add("")
}

fc <- results[!is.na(results$first_s), ]
if (nrow(fc)) {
  add("## First call of a new formula")
  add("")
  add("The first call of a formula never seen before (a fresh random integer constant in it, so nothing is cached), at the smallest size, against the median of later calls. keopsr compiles nothing on the CPU: its first call is parse + run. pykeops generates C++ and compiles it with g++.")
  add("")
  add("| case | precision | M = N | keopsr first call | keopsr later calls | pykeops first call | pykeops later calls |")
  add("|---|---|---|---|---|---|---|")
  keys <- unique(fc[, c("family", "D", "dtype", "n")])
  for (i in seq_len(nrow(keys))) {
    kk <- keys[i, ]
    k <- cell(kk$family, kk$D, kk$dtype, kk$n, "keopsr")
    p <- cell(kk$family, kk$D, kk$dtype, kk$n, "pykeops")
    add("| %s (D = %d) | %s | %s | %s | %s | %s | %s |", kk$family, kk$D, kk$dtype, f_n(kk$n),
        if (!is.null(k)) f_s(k$first_s) else "", if (!is.null(k)) f_s(k$median_s) else "",
        if (!is.null(p) && p$status == "ok") f_s(p$first_s) else "", if (!is.null(p) && p$status == "ok") f_s(p$median_s) else "")
  }
  add("")
}

if (nrow(memory)) {
  add("## Peak memory of keopsr at M = N = 1e6 (Gaussian kernel product, D = 3)")
  add("")
  add("Measured in a fresh `Rscript bench/memory_child.R` (VmRSS/VmHWM from /proc). The peak during the reduction is read from VmHWM after resetting it once the inputs exist (`/proc/self/clear_refs`), polled every 0.2 s; the run is stopped after %g s when it has not finished (all buffers are allocated at its start). Inputs + output = x, y (1e6 x 3), b and the result as R doubles.", mem_seconds)
  add("")
  add("| precision | R + keopsr loaded | with inputs | peak during reduction | inputs + output | (peak - R loaded) / (inputs + output) | watched | finished |")
  add("|---|---|---|---|---|---|---|---|")
  for (i in seq_len(nrow(memory))) {
    m <- memory[i, ]
    add("| %s | %.0f MB | %.0f MB | %.0f MB | %.0f MB | %.2f | %.0f s | %s |", m$dtype, m$loaded_mb, m$data_mb, m$peak_mb, m$io_mb,
        (m$peak_mb - m$loaded_mb) / m$io_mb, m$watched_s, if (m$completed) "yes" else "no (stopped)")
  }
  if (any(!memory$hwm_reset)) add("\nThe peak could not be reset here: it also counts the creation of the inputs.")
  add("")
}

skipped <- results[results$status %in% c("skipped", "failed"), ]
if (nrow(skipped) || length(notes)) {
  add("## Skipped or failed")
  add("")
  for (i in seq_len(nrow(skipped))) {
    s <- skipped[i, ]
    add("- %s D = %d %s M = N = %s, %s: %s (%s)", s$family, s$D, s$dtype, f_n(s$n), s$impl, s$status, s$note)
  }
  for (nt in notes) add("- %s", nt)
  add("")
}
add("Raw numbers (every run): `%s`. Block-sparse (`ranges`) speed-ups: `RESULTS-ranges.md` (`bench/ranges.R`).", basename(out_csv))
writeLines(L, out_md)
msg("wrote %s and %s (%.1f min)", out_md, out_csv, (now() - started) / 60)
