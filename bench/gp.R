# Exact GP regression with keops_gp() on a real data set, and CG iterations
# with no, Jacobi and pivoted-Cholesky preconditioning. Rerun:
#   Rscript bench/gp.R [N ...]        (default N = 10000; threads: KEOPSR_THREADS, default 2)
# Data: ggplot2::diamonds (Debian r-cran-ggplot2), log(price) from carat,
# depth and table (D = 3), standardized; a random test set of 5000 points.
# Writes bench/RESULTS-gp.csv (one row per N and method).
suppressMessages(library(keopsr))
args <- commandArgs(TRUE)
Ns <- if (length(args)) as.numeric(args) else 1e4
threads <- as.integer(Sys.getenv("KEOPSR_THREADS", "2"))
keops_options(threads = threads)
d <- ggplot2::diamonds
X <- scale(as.matrix(d[, c("carat", "depth", "table")]))
y <- as.vector(scale(log(d$price)))
set.seed(2024)
perm <- sample(nrow(X))
test <- perm[1:5000]
write.csv(data.frame(X[perm, ], y = y[perm]), file.path(tempdir(), "diamonds.csv"), row.names = FALSE)
rows <- list()
nlpd <- function(mu, sd, yt) mean(0.5 * log(2 * pi * sd^2) + 0.5 * ((yt - mu) / sd)^2)
for (N in Ns) {
  train <- perm[5000 + seq_len(N)]
  x <- X[train, ]; yy <- y[train]
  t_fit <- system.time(fit <- keops_gp(x, yy, kernel = "gaussian", ard = TRUE, verbose = TRUE))[["elapsed"]]
  t_pred <- system.time(p <- predict(fit, X[test, ], se.fit = TRUE))[["elapsed"]]
  cf <- coef(fit)
  rows[[length(rows) + 1]] <- data.frame(
    N = N, method = "keopsr keops_gp", threads = threads, fit_s = t_fit, predict_s = t_pred,
    rmse = sqrt(mean((p$fit - y[test])^2)), nlpd = nlpd(p$fit, p$se.obs, y[test]),
    evaluations = nrow(fit$trace), cg_median = median(fit$trace$cg_iterations),
    love_rank = if (is.null(fit$cache$love)) NA else fit$cache$love$rank,
    hyper = paste(names(cf), signif(cf, 4), sep = "=", collapse = " ")
  )
  print(rows[[length(rows)]])
  # CG iterations to tol = 1e-6 at the fitted hyperparameters.
  ell <- cf[grepl("lengthscale", names(cf))]
  K <- cf[["variance"]] * exp(-sqdist(Vi(sweep(x, 2, ell, "/")), Vj(sweep(x, 2, ell, "/"))) / 2)
  for (pc in c("none", "jacobi", "pivchol")) {
    t <- system.time(a <- suppressWarnings(solve(K, yy - cf[["mean"]], alpha = cf[["noise"]], tol = 1e-6,
                                                 max_iter = 2000, precond = pc)))[["elapsed"]]
    cat(sprintf("N = %d, precond %-8s: %4d CG iterations, %.1f s\n", N, pc, attr(a, "iterations"), t))
    rows[[length(rows) + 1]] <- data.frame(
      N = N, method = paste("solve, precond", pc), threads = threads, fit_s = t, predict_s = NA, rmse = NA, nlpd = NA,
      evaluations = NA, cg_median = attr(a, "iterations"), love_rank = NA, hyper = ""
    )
  }
}
res <- do.call(rbind, rows)
print(res)
write.csv(res, "bench/RESULTS-gp.csv", row.names = FALSE)
