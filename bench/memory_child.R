# Child process of bench/run.R for the peak-memory case: a fresh Rscript that
# loads keopsr, makes the Gaussian-kernel inputs, then runs the reduction.
# It prints its VmHWM (peak resident set, kB, from /proc/self/status) after
# each stage; run.R also polls /proc/<pid>/status while the reduction runs and
# may stop the process before it ends (a 1e6 x 1e6 reduction takes hours on
# a small machine, but its buffers are all allocated in the first seconds).
#   Rscript bench/memory_child.R M N D precision threads
args <- commandArgs(trailingOnly = TRUE)
M <- as.numeric(args[1]); N <- as.numeric(args[2]); D <- as.integer(args[3])
precision <- args[4]; threads <- as.integer(args[5])

hwm <- function(stage) {
  st <- readLines("/proc/self/status")
  kb <- function(key) as.numeric(gsub("[^0-9]", "", grep(paste0("^", key, ":"), st, value = TRUE)))
  cat(sprintf("%s hwm_kb=%.0f rss_kb=%.0f\n", stage, kb("VmHWM"), kb("VmRSS")))
  flush(stdout())
}

invisible(loadNamespace("keopsr"))
invisible(keopsr::keops_options(precision = precision, threads = threads))
hwm("loaded")
set.seed(1)
x <- matrix(rnorm(M * D), M, D)
y <- matrix(rnorm(N * D), N, D)
b <- rnorm(N)
op <- keopsr::keops_kernel("Sum_Reduction(Exp(-SqDist(x,y))*b, 1)", c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D), "b = Vj(1)"))
invisible(gc())
hwm("data")
# Reset the peak to the current RSS (Linux >= 4.0) so that the peak seen from
# now on is the reduction's own; run.R reports whether the reset worked.
reset <- tryCatch({ writeLines("5", "/proc/self/clear_refs"); TRUE }, error = function(e) FALSE, warning = function(w) FALSE)
cat(sprintf("hwm_reset=%s\n", reset))
hwm("reset")
cat("running\n"); flush(stdout())
a <- op(list(x, y, b))
hwm("done")
