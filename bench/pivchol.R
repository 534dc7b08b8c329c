# Greedy against randomly pivoted Cholesky (blocks of 64) as keops_gp()
# builds its preconditioner: the Gaussian kernel of the flights data
# (bench/gp.R's GP_DATA=flights CSV, GP_CSV), n points, length scales ELL,
# stopping at a relative residual trace TOL (keops_gp(): precond_tol * noise
# / variance, 1e-3 * 0.012 / 1.5 by default here) or at each rank of RANKS.
# Rerun: GP_CSV=/tmp/flights.csv Rscript bench/pivchol.R [n]
# (KEOPSR_THREADS, default 2). Prints time, rank reached and residual trace.
suppressMessages(library(keopsr))
ns <- asNamespace("keopsr")
keops_options(threads = as.integer(Sys.getenv("KEOPSR_THREADS", "2")))
args <- commandArgs(TRUE)
n <- if (length(args)) as.integer(args[1]) else 100000L
f <- utils::read.csv(Sys.getenv("GP_CSV", file.path(tempdir(), "flights.csv")))
x <- as.matrix(f[5000 + seq_len(n), 1:3])
ell <- as.numeric(strsplit(Sys.getenv("ELL", "0.135,2.54,9.33"), ",")[[1]])
tol <- as.numeric(Sys.getenv("TOL", 1e-3 * 0.012 / 1.5))
ranks <- as.integer(strsplit(Sys.getenv("RANKS", "400,800"), ",")[[1]])
xs <- sweep(x, 2, ell, "/")
column <- function(j) {
  r2 <- 0
  for (c in 1:3) r2 <- r2 + (xs[, c] - xs[j, c])^2
  exp(-r2 / 2)
}
columns <- function(S) ns$keops_linop(ns$gp_kernel("gaussian", x, x[S, , drop = FALSE], 1 / ell, 1)$K)(diag(length(S)))
for (rank in ranks) for (rep in 1:2) for (pivoting in c("greedy", "random")) {
  t <- system.time(pc <- if (pivoting == "greedy") ns$pivoted_cholesky(column, rep(1, n), rank, tol) else
    ns$with_seed(1, ns$random_pivoted_cholesky(columns, rep(1, n), rank, tol)))[["elapsed"]]
  cat(sprintf("n %d  rank cap %4d  %-6s  rank %4d  %6.2f s  relative residual trace %.3g\n",
              n, rank, pivoting, ncol(pc$L), t, pc$residual_trace / pc$trace))
}
