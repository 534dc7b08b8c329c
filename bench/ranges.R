# Block-sparse speed-up for a truncated Gaussian kernel sum.
#
#   R_LIBS=<library with keopsr> Rscript bench/ranges.R [n] [sigma]
#
# n points uniform in the unit cube [0, 1]^3 (default 2e5), Gaussian kernel
# k(x, y) = exp(-|x - y|^2 / (2 sigma^2)) (default sigma = 0.01), truncated at
# |x - y| > 5 sigma (where k < 4e-6). The points are clustered on a grid of
# 15 x 15 x 15 cells; with r_k the largest distance from a point of cluster k
# to its centroid, blocks (k, l) whose centroids are farther apart than
# 5 sigma + r_k + r_l are skipped: every pair closer than 5 sigma is kept.
# Prints the dense and block-sparse times, the fraction of pairs computed,
# the error against the dense sum, and checks that keeping every block gives
# the dense result.
suppressPackageStartupMessages(library(keopsr))
args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args) >= 1) as.numeric(args[1]) else 2e5
sigma <- if (length(args) >= 2) as.numeric(args[2]) else 0.01
set.seed(1)
x <- matrix(runif(3 * n), n, 3)
b <- rnorm(n)

timed <- function(expr) {
  t <- system.time(value <- expr)[["elapsed"]]
  list(value = value, seconds = t)
}

side <- 1 / 15
prep <- timed({
  s <- keops_sort_clusters(x, keops_grid_cluster(x, side))
  cl <- keops_cluster_ranges_centroids(s$x, s$labels)
  radius <- as.vector(tapply(sqrt(rowSums((s$x - cl$centroids[s$labels, ])^2)), s$labels, max))
  d <- as.matrix(dist(cl$centroids))
  keep <- d <= 5 * sigma + outer(radius, radius, "+")
  keops_ranges(cl$ranges, cl$ranges, keep)
})
ranges <- prep$value
xs <- s$x
bs <- b[s$order]
K <- exp(-sqdist(Vi(xs), Vj(xs)) / (2 * sigma^2)) * Vj(bs)

sizes <- function(r) r[, 2] - r[, 1] + 1
kept_pairs <- 0
ri <- ranges$ranges_i; rj <- ranges$redranges_j; sl <- c(0, ranges$slices_i)
for (k in seq_len(nrow(ri))) {
  if (sl[k + 1] > sl[k]) kept_pairs <- kept_pairs + sizes(ri[k, , drop = FALSE]) * sum(sizes(rj[(sl[k] + 1):sl[k + 1], , drop = FALSE]))
}

sparse <- timed(sum(K, index = "j", ranges = ranges))
dense <- timed(sum(K, index = "j"))
err <- max(abs(sparse$value - dense$value)) / max(abs(dense$value))

full <- keops_ranges(cl$ranges, cl$ranges, matrix(TRUE, nrow(cl$ranges), nrow(cl$ranges)))
full_sum <- timed(sum(K, index = "j", ranges = full))
same <- max(abs(full_sum$value - dense$value)) / max(abs(dense$value))

cat(sprintf("%s, %s\n", format(Sys.time(), "%Y-%m-%d %H:%M UTC", tz = "UTC"), sub("^.*: *", "", grep("model name", readLines("/proc/cpuinfo"), value = TRUE)[1])))
cat(sprintf("n = %g points in [0,1]^3, sigma = %g, threads = %d\n", n, sigma, keopsr:::keopsr_default_threads()))
cat(sprintf("clusters: %d, blocks kept: %d of %d, pairs computed: %.2f%% of n^2\n",
  nrow(ri), sl[length(sl)], nrow(ri)^2, 100 * kept_pairs / n^2))
cat(sprintf("clustering and ranges (R): %.2f s\n", prep$seconds))
cat(sprintf("dense sum:                 %.2f s\n", dense$seconds))
cat(sprintf("block-sparse sum:          %.2f s  (speed-up %.1fx)\n", sparse$seconds, dense$seconds / sparse$seconds))
cat(sprintf("max relative error of the truncation: %.2e\n", err))
cat(sprintf("every block kept: %.2f s, max relative difference to dense %.2e\n", full_sum$seconds, same))
