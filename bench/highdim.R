# A Gaussian kernel sum in high dimension (issue 19): out_i = sum_j
# exp(-|x_i - y_j|^2 / (2 D)) b_j in float64, keopsr (gemm = "auto": GEMM
# tiles from D = 16, and gemm = "never": the direct loop) against pykeops on
# the CPU and a blocked numpy/OpenBLAS formulation (bench/highdim_py.py),
# side by side in one run on the same data, medians of `runs` timed calls
# after a warm-up. Also reports time per pair and dimension, whose spread
# from D = 64 on says whether there is a cliff.
#
# Run: Rscript bench/highdim.R [--dims=3,16,64,256,1024,2000] [--n=5e3]
#        [--runs=3] [--threads=2] [--block=1000] [--no-pykeops]
#        [--out=bench/RESULTS-highdim.md]
# pykeops and numpy come from the virtual environment bench/.venv (created
# with `pip install pykeops numpy` when missing; git-ignored); pykeops
# compiles each formula with g++ in the warm-up call.
library(keopsr)
source("bench/common.R")
dims <- nums(arg("dims", "3,16,64,256,1024,2000"))
N <- as.numeric(arg("n", "5e3"))
runs <- as.integer(arg("runs", "3"))
threads <- as.integer(arg("threads", "2"))
block <- as.integer(arg("block", "1000"))
use_pykeops <- !("--no-pykeops" %in% bench_args)
out <- arg("out", "bench/RESULTS-highdim.md")

python <- if (use_pykeops) bench_python(c("pykeops", "numpy"), c("pykeops", "numpy")) else bench_python("numpy", "numpy")
blas <- system2(python, c("-c", shQuote("import numpy; c = numpy.show_config(mode='dicts'); print(c['Build Dependencies']['blas']['name'])")),
                stdout = TRUE, stderr = FALSE)


# One Python method on the same data (files written once per D).
python_run <- function(method, files, D) {
  res <- tempfile(fileext = ".f64")
  on.exit(unlink(res))
  cache <- file.path("bench", ".cache", "keops")
  dir.create(cache, recursive = TRUE, showWarnings = FALSE)
  env <- c(sprintf("OMP_NUM_THREADS=%d", threads), sprintf("OPENBLAS_NUM_THREADS=%d", threads))
  t <- system2(python, c("bench/highdim_py.py", method, files$x, N, files$y, N, files$b, D, runs, res, block, normalizePath(cache)),
               stdout = TRUE, env = env)
  list(time = as.numeric(tail(t, 1)), value = readBin(res, "double", N))
}

rows <- list()
set.seed(1)
for (D in dims) {
  x <- matrix(rnorm(N * D), N, D)
  y <- matrix(rnorm(N * D), N, D)
  b <- runif(N)
  dir <- tempfile("highdim")
  dir.create(dir)
  files <- list(x = file.path(dir, "x.f64"), y = file.path(dir, "y.f64"), b = file.path(dir, "b.f64"))
  writeBin(as.vector(x), files$x)
  writeBin(as.vector(y), files$y)
  writeBin(b, files$b)
  op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
                     c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D), "b = Vj(1)", "g = Pm(1)"))
  keopsr_run <- function(gemm) {
    keops_options(precision = "float64", threads = threads, gemm = gemm)
    on.exit(keops_options(threads = 0, gemm = "auto"))
    r <- timed(function() op(list(x, y, b, 1 / (2 * D))), runs, min_seconds = 1)
    r$value <- as.vector(r$value)
    r
  }
  auto <- keopsr_run("auto")
  never <- keopsr_run("never")
  np <- python_run("numpy", files, D)
  pk <- if (use_pykeops) python_run("pykeops", files, D)
  unlink(dir, recursive = TRUE)
  rel <- function(v) max(abs(v - np$value) / abs(np$value))
  rows[[length(rows) + 1]] <- list(D = D, auto = auto$time, never = never$time, numpy = np$time, pykeops = pk$time,
                                   err_auto = rel(auto$value), err_never = rel(never$value),
                                   err_pykeops = if (!is.null(pk)) rel(pk$value))
  cat(sprintf("D = %d: auto %.3f s, never %.3f s, numpy %.3f s, pykeops %s s\n", D, auto$time, never$time, np$time,
              if (is.null(pk)) "-" else sprintf("%.3f", pk$time)))
}

e <- function(v) if (is.null(v)) "-" else sprintf("%.0e", v)
per_pair_dim <- function(r) 1e9 * r$auto / (N * N * r$D) # ns per pair and dimension
lines <- c(
  "# A Gaussian kernel sum in high dimension: keopsr against pykeops and blocked numpy",
  "",
  report_header("highdim.R"),
  sprintf("- pykeops %s, numpy %s (BLAS: %s)", if (use_pykeops) py_version(python, "pykeops") else "not run",
          py_version(python, "numpy"), paste(blas, collapse = " ")),
  sprintf("- `Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)`, g = 1 / (2D), float64, M = N = %s, x and y from N(0, I_D), b uniform; %d threads everywhere (keopsr `threads`, pykeops `OMP_NUM_THREADS`, numpy `OPENBLAS_NUM_THREADS`); medians of %d runs after a warm-up (more for calls under 0.1 s: at least 1 s of calls, at most 30)",
          format(N, big.mark = ","), threads, runs),
  sprintf("- numpy: blocks of %d rows, `|x|^2 + |y|^2 - 2 x @ y.T`, clamped at 0, `exp`, `@ b` (a %d x %s block stored at a time)",
          block, block, format(N, big.mark = ",")),
  "- Ratios: other's time / keopsr auto's (above 1: keopsr is faster); errors: largest relative difference from numpy's result",
  "",
  "| D | keopsr auto | keopsr never | never / auto | pykeops | pykeops / auto | numpy | numpy / auto | auto ns per pair and dim | error auto | error never | error pykeops |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|"
)
for (r in rows) {
  lines <- c(lines, sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %.3f | %s | %s | %s |",
                            r$D, f(r$auto), f(r$never), ratio(r$never, r$auto), f(r$pykeops), ratio(r$pykeops, r$auto),
                            f(r$numpy), ratio(r$numpy, r$auto), per_pair_dim(r), e(r$err_auto), e(r$err_never),
                            e(r$err_pykeops)))
}
high <- Filter(function(r) r$D >= 64, rows)
if (length(high) > 1) {
  spread <- vapply(high, per_pair_dim, 0)
  lines <- c(lines, "", sprintf("Time per pair and dimension from D = %d to %d varies %.2fx (max / min).",
                                min(vapply(high, `[[`, 0, "D")), max(vapply(high, `[[`, 0, "D")), max(spread) / min(spread)))
}
writeLines(lines, out)
cat(lines, sep = "\n")
