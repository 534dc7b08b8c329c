# LOVE predictive variances (predict.keops_gp(variance = "love")) at
# N = 1e4 on the data of bench/gp.R, at the hyperparameters fitted there
# (one L-BFGS-B step from them, to build the fit object quickly): time for
# 5000 test points, the Lanczos rank reached, and the largest relative
# error of the standard deviations against the exact (batched CG) ones at
# 100 test points. Run: Rscript bench/gp_love.R
suppressMessages(library(keopsr))
keops_options(threads = 2)
d <- ggplot2::diamonds
X <- scale(as.matrix(d[, c("carat", "depth", "table")]))
y <- as.vector(scale(log(d$price)))
set.seed(2024)
perm <- sample(nrow(X))
test <- perm[1:5000]
train <- perm[5000 + seq_len(10000)]
fit <- suppressWarnings(keops_gp(X[train, ], y[train], ard = TRUE, maxit = 1,
  init = list(lengthscale = c(0.2915, 5.367, 7.9), variance = 0.6994, noise = 0.05816, mean = 0.5012)))
exact <- predict(fit, X[test[1:100], ], se.fit = TRUE, variance = "exact")
t <- system.time(p <- predict(fit, X[test, ], se.fit = TRUE, variance = "love"))[["elapsed"]]
cat(sprintf("LOVE: 5000 test points in %.1f s, rank %d, largest relative sd error (100 points) %.2e\n",
            t, fit$cache$love$rank, max(abs(p$se.fit[1:100] - exact$se.fit) / exact$se.fit)))
