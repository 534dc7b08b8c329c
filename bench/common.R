# Helpers shared by the side-by-side benchmark scripts (knn.R, highdim.R,
# first_call_ops.R): `--name=value` arguments, timings, the Python virtual
# environment bench/.venv, and the report's machine line. Sourced from the
# repository root: source("bench/common.R").
bench_args <- commandArgs(TRUE)
arg <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), bench_args, value = TRUE)
  if (length(hit)) sub("^[^=]*=", "", hit[1]) else default
}
nums <- function(s) as.numeric(strsplit(s, ",")[[1]])

elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}

# Median of timed calls of f after a warm-up: `runs` of them, more for calls
# under 0.1 s when `min_seconds` > 0 (at least that many seconds of calls,
# at most 30), which this noisy machine needs; the last result is kept.
timed <- function(f, runs, min_seconds = 0) {
  warm <- elapsed(res <- f())
  n <- max(runs, min(30, ceiling(min_seconds / max(warm, 1e-3))))
  times <- vapply(seq_len(n), function(r) elapsed(res <<- f()), 0)
  list(time = stats::median(times), value = res)
}

# The python of bench/.venv, created and given `packages` (pip names) when
# `imports` do not load.
bench_python <- function(imports, packages) {
  venv <- file.path("bench", ".venv")
  python <- file.path(venv, "bin", "python")
  check <- paste("import", paste(imports, collapse = ", "))
  if (system2(python, c("-c", shQuote(check)), stdout = FALSE, stderr = FALSE) != 0) {
    if (!file.exists(python)) system2("python3", c("-m", "venv", venv))
    system2(file.path(venv, "bin", "pip"), c("install", "-q", packages))
  }
  python
}
py_version <- function(python, module) { # the last line: pykeops prints a warning first
  tail(system2(python, c("-c", shQuote(sprintf("import %s; print(%s.__version__)", module, module))), stdout = TRUE), 1)
}

# Report cells: a time in seconds, and another method's time over ours.
f <- function(t) if (is.null(t)) "-" else sprintf("%.3f s", t)
ratio <- function(other, t) if (is.null(other)) "-" else sprintf("%.2fx", other / t)

# "Date: ...; command: ..." and "CPU: ..., keopsr ... (commit ...)" lines.
report_header <- function(script) {
  c(sprintf("- Date: %s; command: `Rscript bench/%s %s`", format(Sys.time(), "%Y-%m-%d %H:%M UTC", tz = "UTC"), script,
            paste(bench_args, collapse = " ")),
    sprintf("- CPU: %s, %d cores; keopsr %s (commit %s)",
            sub(".*: ", "", grep("model name", readLines("/proc/cpuinfo"), value = TRUE)[1]), parallel::detectCores(),
            utils::packageVersion("keopsr"), system2("git", c("rev-parse", "--short", "HEAD"), stdout = TRUE)))
}
