# Gaussian kernel sums over spread-out points: x ~ N(0, s^2 I_3), s = 1, 8,
# 14, so that exp(-|x_i - x_j|^2 / 2) underflows for many pairs (to 0, or
# to subnormal numbers in a narrow band of distances). M = N = 2e4, one and
# 11 right-hand-side columns, float64 and float32, medians of 3 runs, seconds.
# Rerun: Rscript bench/spread.R [lib ...]   (each lib: a library holding a
# keopsr build, "default" for the installed one; runs alternate between them)
args <- commandArgs(TRUE)
libs <- if (length(args)) args else "default"
n <- 2e4
code <- '
  lib <- commandArgs(TRUE)[1]
  if (lib != "default") .libPaths(c(lib, .libPaths()))
  suppressMessages(library(keopsr)); keops_options(threads = 2)
  n <- as.numeric(commandArgs(TRUE)[2]); s <- as.numeric(commandArgs(TRUE)[3]); prec <- commandArgs(TRUE)[4]
  keops_options(precision = prec)
  set.seed(1)
  u <- matrix(rnorm(n * 3), n, 3) * s; W <- matrix(rnorm(n * 11), n, 11)
  h <- exp(-sqdist(Vi(u), Vj(u)) / 2)
  t1 <- system.time(sum(h * Vj(W[, 1]), index = "j"))[[3]]
  t11 <- system.time(sum(h * Vj(W), index = "j"))[[3]]
  cat(t1, t11, "\n")
'
script <- tempfile(fileext = ".R")
writeLines(code, script)
rows <- list()
for (s in c(1, 8, 14)) for (prec in c("float64", "float32")) {
  times <- lapply(libs, function(l) matrix(NA, 0, 2))
  for (run in 1:3) for (k in seq_along(libs)) {
    out <- system2(file.path(R.home("bin"), "Rscript"), c(script, libs[k], n, s, prec), stdout = TRUE)
    times[[k]] <- rbind(times[[k]], as.numeric(strsplit(trimws(out[length(out)]), " ")[[1]]))
  }
  for (k in seq_along(libs)) {
    rows[[length(rows) + 1]] <- data.frame(lib = libs[k], s = s, precision = prec,
                                           one_column = median(times[[k]][, 1]), eleven_columns = median(times[[k]][, 2]))
  }
}
res <- do.call(rbind, rows)
print(res, row.names = FALSE)
