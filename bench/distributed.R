# Gaussian kernel product sum_j exp(-|x_i - y_j|^2 / 2) b_j split across
# future workers, and a paper estimate of the speed-up at many workers.
#   Rscript bench/distributed.R [N] [runs]     (default N = 1e5, 3 runs)
# Compares 2 multisession workers x 1 thread, 1 process x 2 threads and
# 1 process x 1 thread (medians of `runs`), and times the data shipping
# (serialization of one chunk's globals) separately. Writes nothing: copy
# the printed tables into bench/RESULTS-distributed.md.
suppressMessages({ library(keopsr); library(future) })
argv <- commandArgs(trailingOnly = TRUE)
N <- if (length(argv) >= 1) as.numeric(argv[1]) else 1e5
runs <- if (length(argv) >= 2) as.integer(argv[2]) else 3L
d <- 3
set.seed(1)
x <- matrix(rnorm(N * d), N, d); y <- matrix(rnorm(N * d), N, d); b <- matrix(rnorm(N), N, 1)
K <- exp(-sqdist(Vi(x), Vj(y)) / 2) * Vj(b)
timed <- function(f) median(replicate(runs, system.time(f())[["elapsed"]]))
keops_options(distributed = "none", threads = 1); t11 <- timed(function() sum(K, index = "j"))
keops_options(threads = 2); t12 <- timed(function() sum(K, index = "j"))
plan(multisession, workers = 2)
keops_options(distributed = "future", threads = 1)
invisible(sum(K, index = "j")) # workers start and load keopsr
t21 <- timed(function() sum(K, index = "j"))
# Shipping: one row chunk = N/2 rows of x, all of y and b; its serialization
# and the transfer of its result, measured as a round trip of the same globals
# through a worker running nothing.
chunk <- list(x = x[seq_len(N / 2), ], y = y, b = b)
bytes <- length(serialize(chunk, NULL))
ship <- timed(function() value(future(length(chunk), globals = list(chunk = chunk))))
plan(sequential)
res <- data.frame(
  setup = c("1 process x 1 thread", "1 process x 2 threads", "2 multisession workers x 1 thread"),
  seconds = c(t11, t12, t21), speedup_vs_1x1 = t11 / c(t11, t12, t21)
)
cat(sprintf("N = M = %g, d = %d, median of %d runs\n", N, d, runs)); print(res, row.names = FALSE)
cat(sprintf("one chunk's data: %.1f MB, round trip to a worker %.3f s\n", bytes / 1e6, ship))

# Paper estimate. Per-pair compute time from the 1 x 1 run; row split over
# W workers: each worker computes N^2 / W pairs and receives its N / W rows
# of x plus all of y and b (the data a chunk needs), at bandwidth B with
# latency L per chunk; results (N / W rows) are negligible.
pair_s <- t11 / N^2
B <- 1e9 / 8 * 10 # 10 Gbit/s
L <- 1e-3 # 1 ms per chunk (scheduling, connection)
est <- expand.grid(N = c(1e6, 1e7), W = c(8, 64, 512))
est$compute_1_s <- pair_s * est$N^2
ship_bytes <- function(n, w) 8 * (n / w * d + n * (d + 1))
est$time_W_s <- pair_s * est$N^2 / est$W + ship_bytes(est$N, est$W) / B + L
est$speedup <- est$compute_1_s / est$time_W_s
cat(sprintf("\nEstimate: %.3g s per pair and thread, 10 Gbit/s, 1 ms latency per chunk\n", pair_s))
print(est, row.names = FALSE, digits = 3)
