# Exact GP regression with keops_gp() on a real data set, and CG iterations
# with no, Jacobi and pivoted-Cholesky preconditioning. Rerun:
#   Rscript bench/gp.R [N ...]        (default N = 10000; threads: KEOPSR_THREADS, default 2)
# Data: ggplot2::diamonds (Debian r-cran-ggplot2), log(price) from carat,
# depth and table (D = 3), standardized; a random test set of 5000 points.
# Writes bench/RESULTS-gp.csv (one row per N and method). At N <= 1e4 it also
# times one dense chol() and compares dense predictions (GP_DENSE=FALSE skips).
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
  ell <- cf[grepl("lengthscale", names(cf))]
  if (N <= 10000 && isTRUE(as.logical(Sys.getenv("GP_DENSE", "TRUE")))) {
    # Dense R at keopsr's hyperparameters: one Cholesky factor of the
    # N x N matrix (what every evaluation of a dense fit costs, before its
    # gradient), and the exact predictive mean and sd of 500 test points.
    xs <- sweep(x, 2, ell, "/")
    xt <- sweep(X[test, ], 2, ell, "/")
    sq <- function(a, b) pmax(outer(rowSums(a^2), rowSums(b^2), "+") - 2 * tcrossprod(a, b), 0)
    A <- cf[["variance"]] * exp(-sq(xs, xs) / 2) + diag(cf[["noise"]], N)
    t_chol <- system.time(C <- chol(A))[["elapsed"]]
    rm(A)
    alpha <- backsolve(C, backsolve(C, yy - cf[["mean"]], transpose = TRUE))
    Kt <- cf[["variance"]] * exp(-sq(xt, xs) / 2)
    mu <- cf[["mean"]] + as.vector(Kt %*% alpha)
    few <- 1:500
    v <- cf[["variance"]] - colSums(backsolve(C, t(Kt[few, ]), transpose = TRUE)^2)
    sd_obs <- sqrt(pmax(v, 0) + cf[["noise"]])
    cat(sprintf("N = %d, dense chol(): %.1f s; predictive mean max |dense - keopsr| %.2g; sd (500 points) max rel. diff %.2g\n",
                N, t_chol, max(abs(mu - p$fit)), max(abs(sd_obs - p$se.obs[few]) / sd_obs)))
    rows[[length(rows) + 1]] <- data.frame(
      N = N, method = "dense R chol() at keopsr's hyperparameters (fit_s: one factorization; NLPD of 500 test points)", threads = 1,
      fit_s = t_chol, predict_s = NA, rmse = sqrt(mean((mu - y[test])^2)),
      nlpd = nlpd(mu[few], sd_obs, y[test][few]), evaluations = NA, cg_median = NA, love_rank = NA,
      hyper = sprintf("max |mean diff| %.2g, max sd rel diff %.2g", max(abs(mu - p$fit)), max(abs(sd_obs - p$se.obs[few]) / sd_obs))
    )
    rm(C, Kt)
    gc()
  }
  # CG iterations to tol = 1e-6 at the fitted hyperparameters.
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
