# How often keops_gp()'s preconditioner changes its pivots along a line in
# the hyperparameters, greedy against random pivots: the estimated
# negative log-likelihood, its standard error and the preconditioner's
# rank at 21 points 0.001 apart in the log length scale (the toy data of
# the tests: n = 1200, D = 2; within a segment of fixed pivots the values
# change smoothly, at a change of pivots they jump by about the standard
# error). Rerun: Rscript bench/gp_pivoting_line.R
suppressMessages(library(keopsr))
ns <- asNamespace("keopsr")
keops_options(threads = as.integer(Sys.getenv("KEOPSR_THREADS", "2")))
set.seed(15)
n <- 1200
x <- matrix(runif(n * 2), n, 2)
y <- sin(6 * x[, 1]) + cos(4 * x[, 2]) + rnorm(n, sd = 0.1)
probes <- 10L
rank <- 400L
st <- list(x = x, y = y, kernel = "gaussian", mean = "constant", n_ell = 1L, dense = FALSE, rank = rank,
           precond_tol = 1e-3, tol = 0.01, max_iter = 100L, verbose = FALSE, seed = 1L)
rng <- ns$with_seed(1, list(E1 = matrix(rnorm(rank * probes), rank, probes), E2 = matrix(rnorm(n * probes), n, probes)))
st$E1 <- rng$E1
st$E2 <- rng$E2
theta <- c(log(0.43), log(1.96), log(0.00998))
steps <- seq(-0.01, 0.01, by = 0.001)
for (pivoting in c("greedy", "random")) {
  st$pivoting <- pivoting
  runs <- lapply(steps, function(s) ns$gp_objective(theta + c(s, 0, 0), st))
  pivots <- lapply(runs, function(r) r$pivchol$pivots)
  changes <- sum(!mapply(identical, pivots[-1], pivots[-length(pivots)]))
  print(data.frame(pivoting = pivoting, step = steps, nlml = vapply(runs, `[[`, 0, "value"),
                   se = vapply(runs, `[[`, 0, "se"), rank = vapply(pivots, length, 0L)), digits = 7)
  cat(sprintf("%s: the pivots change at %d of %d steps\n\n", pivoting, changes, length(steps) - 1))
}
