# The kernel part of keops_gp()'s likelihood gradient, sum_c eta_c' dK/dtheta w_c
# for the log length scales (ARD) and the log variance, with r = 11 columns
# (the data and 10 probes) on the diamonds data of bench/gp.R (carat, depth,
# table, standardized): by the symbolic derivative of the kernel reduction
# (value_and_grad) against the expansion into one kernel reduction with
# (2 + D) r columns that keopsr multiplies by GEMM. Side by side, median of
# 3 calls each, 2 threads, float64. Run: Rscript bench/gp_gradient.R [n ...]
suppressMessages(library(keopsr))
keops_options(threads = 2)
sizes <- as.numeric(commandArgs(TRUE))
if (!length(sizes)) sizes <- c(1e4, 2e4)
expanded <- getFromNamespace("gp_kernel_gradient", "keopsr")
autodiff <- getFromNamespace("gp_kernel_gradient_autodiff", "keopsr")
d <- ggplot2::diamonds
X <- scale(as.matrix(d[, c("carat", "depth", "table")]))
set.seed(1)
median_time <- function(f) median(replicate(3, system.time(f())[["elapsed"]]))
cat("| n | kernel | symbolic derivative (s) | one GEMM reduction (s) | speed-up | largest relative difference |\n")
cat("|---|---|---|---|---|---|\n")
for (n in sizes) {
  x <- X[sample(nrow(X), n), ]
  eta <- matrix(rnorm(n * 11), n)
  W <- matrix(rnorm(n * 11), n)
  for (kernel in c("gaussian", "matern32", "matern52")) {
    st <- list(x = x, kernel = kernel, n_ell = 3L)
    p <- list(ell = c(0.29, 5.4, 7.9), s2 = 0.7)
    t0 <- median_time(function() autodiff(st, p, eta, W))
    t1 <- median_time(function() expanded(st, p, eta, W))
    a <- autodiff(st, p, eta, W)
    b <- expanded(st, p, eta, W)
    cat(sprintf("| %g | %s | %.3f | %.3f | %.2fx | %.1e |\n", n, kernel, t0, t1, t0 / t1, max(abs(a - b) / abs(a))))
  }
}
