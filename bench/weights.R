# The weights GEMM (issue 19): a Gaussian kernel times a right-hand side of
# C columns, sum(K * Vj(W), index = "j"), N = M = 1e4, D = 3, with
# keops_options(gemm = "never") (every product s(i, j) w_j formed and summed)
# and "auto" (one GEMM per block of rows and tile, from 4 columns on), side
# by side, medians of `reps` runs. Run: Rscript bench/weights.R [reps]
library(keopsr)
reps <- as.integer(if (length(commandArgs(TRUE))) commandArgs(TRUE)[1] else 3)
set.seed(1)
n <- 10000
x <- matrix(rnorm(n * 3), n, 3)
elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}
cat("| precision | columns | never (s) | auto (s) | speed-up | max abs difference |\n|---|---|---|---|---|---|\n")
for (precision in c("float64", "float32")) {
  for (cols in c(1, 2, 4, 8, 11, 32, 111)) {
    W <- matrix(rnorm(n * cols), n, cols)
    K <- exp(-sqdist(Vi(x), Vj(x)) / 2)
    run <- function(gemm) {
      keops_options(gemm = gemm, precision = precision)
      on.exit(keops_options(gemm = "auto", precision = "float64"))
      res <- NULL
      times <- replicate(reps, elapsed(res <<- sum(K * Vj(W), index = "j")))
      list(time = stats::median(times), value = res)
    }
    never <- run("never")
    auto <- run("auto")
    cat(sprintf("| %s | %d | %.3f | %.3f | %.2f | %.1e |\n", precision, cols, never$time, auto$time,
                never$time / auto$time, max(abs(never$value - auto$value))))
  }
}
