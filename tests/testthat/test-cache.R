# The kernel cache under concurrency: several R processes compile the same
# kernels into one folder while another process damages its entries. Every
# compile must succeed with the right image; damaged entries are rebuilt.

cache_formulas <- c(
  "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)",
  "KMin_ArgKMin_Reduction(SqDist(x, y), 3, 1)",
  "LogSumExp_Reduction(-SqDist(x, y), 0, b)",
  "Max_ArgMax_Reduction(Sin(x - y) * b, 0)"
)
cache_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)")

test_that("entries are checked, counted and cleared", {
  nvrtc_or_skip()
  dir <- tempfile("keopsr-cache")
  old <- keops_options(cache_dir = dir)
  on.exit({
    keops_options(old)
    unlink(dir, recursive = TRUE)
  })
  first <- keops_cuda_compile(cache_formulas[1], cache_args, "sm_80")
  expect_false(first$cached)
  again <- keops_cuda_compile(cache_formulas[1], cache_args, "sm_80")
  expect_true(again$cached)
  expect_equal(again$bytes, first$bytes)
  expect_equal(keops_info()$cache_entries, 1)
  expect_gt(keops_info()$cache_bytes, first$bytes)
  # A truncated entry is detected and compiled again.
  entry <- list.files(dir, full.names = TRUE)
  writeBin(readBin(entry, "raw", 200), entry)
  rebuilt <- keops_cuda_compile(cache_formulas[1], cache_args, "sm_80")
  expect_false(rebuilt$cached)
  expect_equal(rebuilt$bytes, first$bytes)
  writeLines("not mine", file.path(dir, "notes.txt"))
  expect_equal(keops_cache_clear(), 1)
  expect_equal(keops_info()$cache_entries, 0)
  expect_true(file.exists(file.path(dir, "notes.txt")))
})

test_that("the cache folder comes from KEOPSR_CACHE_DIR unless the option is set", {
  skip_if_not_installed("callr")
  dir <- tempfile("keopsr-env-cache")
  got <- callr::r(function() keopsr::keops_info()$cache_dir, env = c(callr::rcmd_safe_env(), KEOPSR_CACHE_DIR = dir))
  expect_equal(got, dir)
})

test_that("processes compiling at once while entries are damaged all get correct kernels", {
  nvrtc_or_skip()
  skip_if_not_installed("callr")
  dir <- tempfile("keopsr-shared-cache")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  reference <- vapply(cache_formulas, function(f) {
    old <- keops_options(cache_dir = NA)
    on.exit(keops_options(old))
    keops_cuda_compile(f, cache_args, "sm_80")$bytes
  }, 0)
  nvrtc <- keops_info()$nvrtc
  compiler <- function(dir, formulas, args, nvrtc, rounds) {
    library(keopsr)
    keops_options(cache_dir = dir)
    res <- list()
    for (r in seq_len(rounds)) {
      for (f in formulas) res[[length(res) + 1]] <- keops_cuda_compile(f, args, "sm_80")[c("bytes", "cached")]
    }
    res
  }
  damager <- function(dir, seconds) {
    damaged <- 0
    end <- Sys.time() + seconds
    while (Sys.time() < end) {
      for (f in list.files(dir, pattern = "[.](cubin|ptx)$", full.names = TRUE)) {
        bytes <- tryCatch(readBin(f, "raw", 1e6), error = function(e) raw())
        if (length(bytes) > 100) {
          k <- sample(length(bytes), 1)
          bytes[k] <- xor(bytes[k], as.raw(0x5a))
          if (runif(1) < 0.5) bytes <- bytes[seq_len(length(bytes) %/% 2)]
          try(writeBin(bytes, f), silent = TRUE)
          damaged <- damaged + 1
        }
      }
      Sys.sleep(0.01)
    }
    damaged
  }
  env <- c(callr::rcmd_safe_env(), KEOPSR_NVRTC = nvrtc)
  workers <- lapply(1:3, function(k) {
    callr::r_bg(compiler, args = list(dir = dir, formulas = cache_formulas, args = cache_args, nvrtc = nvrtc, rounds = 15), env = env)
  })
  vandal <- callr::r_bg(damager, args = list(dir = dir, seconds = 8), env = env)
  for (w in workers) w$wait(120000)
  vandal$wait(60000)
  expect_gt(vandal$get_result(), 0)
  for (w in workers) {
    res <- w$get_result() # re-raises a worker's error
    bytes <- vapply(res, `[[`, 0, "bytes")
    expect_equal(bytes, rep(unname(reference), 15))
  }
  cached <- unlist(lapply(workers, function(w) vapply(w$get_result(), `[[`, NA, "cached")))
  expect_true(any(cached))
  # What is left in the folder is either valid or rebuilt on the next use.
  old <- keops_options(cache_dir = dir)
  on.exit(keops_options(old), add = TRUE)
  for (k in seq_along(cache_formulas)) {
    expect_equal(keops_cuda_compile(cache_formulas[k], cache_args, "sm_80")$bytes, unname(reference[k]))
  }
  expect_false(any(grepl("[.]tmp$", list.files(dir))))
})
