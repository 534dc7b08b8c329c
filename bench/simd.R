# The builds of the CPU loops side by side (issue 19): a Gaussian kernel sum
# and an exact kNN (K = 10, 5000 queries), N = 2e4, D = 3, 16, 64, float64
# and float32, medians of 3 runs. The build is chosen once per process, so
# run this script once per build and compare:
#   for s in portable avx2 avx512; do KEOPSR_SIMD=$s Rscript bench/simd.R; done
# (KEOPSR_SIMD caps the build at what the CPU has; unset: the widest.)
library(keopsr)
set.seed(1)
n <- 20000
elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}
for (precision in c("float64", "float32")) {
  for (D in c(3, 16, 64)) {
    keops_options(precision = precision)
    x <- matrix(rnorm(n * D), n, D)
    b <- rnorm(n)
    K <- exp(-sqdist(Vi(x), Vj(x)) / (2 * D)) * Vj(b)
    invisible(sum(K, index = "j"))
    gauss <- stats::median(replicate(3, elapsed(sum(K, index = "j"))))
    knn <- stats::median(replicate(3, elapsed(argKmin(sqdist(Vi(x[1:5000, ]), Vj(x)), 10, "j"))))
    cat(sprintf("| %s | %s | %d | %.3f | %.3f |\n", Sys.getenv("KEOPSR_SIMD", "widest"), precision, D, gauss, knn))
  }
}
