# Runs the testthat suite against the installed package and ends with one
# "N passed, N failed, N skipped" line; exits non-zero on any failure.
library(testthat)
library(keopsr)
res <- as.data.frame(test_dir("tests/testthat", package = "keopsr", load_package = "installed",
  reporter = "summary", stop_on_failure = FALSE))
failed <- sum(res$failed) + sum(res$error)
cat(sprintf("\ntestthat: %d passed, %d failed, %d skipped\n", sum(res$passed), failed, sum(res$skipped)))
quit(status = if (failed > 0) 1 else 0)
