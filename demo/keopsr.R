# keopsr demo: a Gaussian kernel sum over 1e5 x 1e5 pairs and a kNN
# classification of 100,000 points, on CPU threads, checked against dense R.
# Run with: Rscript demo/keopsr.R   (or demo("keopsr", package = "keopsr"))
library(keopsr)
set.seed(2026)
threads <- keops_options()$threads
cat(sprintf("keopsr %s, %s CPU threads, float64\n\n",
  utils::packageVersion("keopsr"), if (threads == 0) parallel::detectCores() else threads))

timed <- function(expr) {
  t <- system.time(value <- expr)[["elapsed"]]
  list(value = value, seconds = t)
}
rel_err <- function(a, b) max(abs(a - b)) / max(abs(b))

# --- 1. Gaussian kernel sum: a_i = sum_j exp(-|x_i - y_j|^2 / 2) b_j ----------
n <- 1e5
x <- matrix(rnorm(3 * n), n, 3)
y <- matrix(rnorm(3 * n), n, 3)
b <- rnorm(n)
cat(sprintf("1. Gaussian kernel sum, M = N = %g, D = 3 (%.0e pairs; a dense matrix would take %.0f GB)\n",
  n, n * n, n * n * 8 / 1e9))
x_i <- Vi(x); y_j <- Vj(y); b_j <- Vj(b)
K <- exp(-sqdist(x_i, y_j) / 2)
run <- timed(sum(K * b_j, index = "j"))
a <- run$value
cat(sprintf("   LazyTensor:   %6.1f s  (%.0f million pairs/s), result %d x %d\n",
  run$seconds, n * n / run$seconds / 1e6, nrow(a), ncol(a)))

op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y) / 2) * b, 1)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
sub <- 1:2000
first <- timed(op(list(x[sub, ], y, b)))
cat(sprintf("   keops_kernel: first call on 2000 rows %.2f s (nothing to compile); max difference with the LazyTensor result: %.1e\n",
  first$seconds, max(abs(first$value - a[sub]))))

check <- 1:500
dense <- timed({
  D2 <- outer(rowSums(x[check, ]^2), rowSums(y^2), "+") - 2 * x[check, ] %*% t(y)
  exp(-D2 / 2) %*% b
})
cat(sprintf("   dense R on %d rows: %.2f s (%.0f million pairs/s); relative error of keopsr: %.1e\n\n",
  length(check), dense$seconds, length(check) * n / dense$seconds / 1e6, rel_err(a[check], dense$value)))

# --- 2. kNN classification of 100,000 points -------------------------------
# Three classes: Gaussian clouds in 3D with overlapping supports.
make_data <- function(n) {
  label <- sample(1:3, n, replace = TRUE)
  centers <- rbind(c(0, 0, 0), c(2, 0, 0), c(1, 1.7, 0))
  list(x = centers[label, ] + matrix(rnorm(3 * n), n, 3), label = label)
}
train <- make_data(1e5)
test <- make_data(1e5)
k <- 10
cat(sprintf("2. kNN classification: %g test points against %g training points, K = %d\n",
  nrow(test$x), nrow(train$x), k))
run <- timed(argKmin(sqdist(Vi(test$x), Vj(train$x)), K = k, index = "j"))
nn <- run$value
votes <- matrix(train$label[nn], nrow(nn))
predicted <- apply(votes, 1, function(v) which.max(tabulate(v, nbins = 3)))
cat(sprintf("   argKmin: %6.1f s (%.0f million pairs/s), %d x %d integer matrix of 1-based indices\n",
  run$seconds, prod(nrow(test$x), nrow(train$x)) / run$seconds / 1e6, nrow(nn), ncol(nn)))
cat(sprintf("   accuracy on the test points: %.1f%%\n", 100 * mean(predicted == test$label)))

check <- 1:300
D2 <- outer(rowSums(test$x[check, ]^2), rowSums(train$x^2), "+") - 2 * test$x[check, ] %*% t(train$x)
dense_nn <- t(apply(D2, 1, order))[, 1:k]
cat(sprintf("   neighbours identical to dense R on %d test points: %s\n", length(check), all(dense_nn == nn[check, ])))
if (requireNamespace("FNN", quietly = TRUE)) {
  fnn <- timed(FNN::get.knnx(train$x, test$x, k = k)$nn.index)
  cat(sprintf("   FNN (kd-tree, exact): %.1f s; same neighbours: %.4f%% of entries\n",
    fnn$seconds, 100 * mean(fnn$value == nn)))
}

# --- 3. Log-sum-exp (soft-min) -------------------------------------------
rows <- 1:20000
run <- timed(logsumexp(-sqdist(Vi(x[rows, ]), y_j) / 0.1, index = "j"))
ref <- {
  D2 <- outer(rowSums(x[check, ]^2), rowSums(y^2), "+") - 2 * x[check, ] %*% t(y)
  F <- -D2 / 0.1
  m <- apply(F, 1, max)
  m + log(rowSums(exp(F - m)))
}
cat(sprintf("\n3. log-sum-exp (soft-min) over %.0e pairs: %.1f s, relative error vs dense R: %.1e\n",
  length(rows) * n, run$seconds, rel_err(run$value[check], ref)))
