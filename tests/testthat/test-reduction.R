# Every reduction against a dense base-R reference, over both axes and in
# both precisions.

set.seed(42)
M <- 37; N <- 53; D <- 3
x <- random_points(M, D); y <- random_points(N, D); b <- rnorm(N); a <- rnorm(M)
Fxy <- -dense_sqdist(x, y) / 4 # F(x_i, y_j), M x N

with_precision <- function(precision, code) {
  old <- keops_options(precision = precision)
  on.exit(keops_options(old))
  code
}

for (precision in c("float64", "float32")) {
  tol <- if (precision == "float64") 1e-12 else 1e-5
  test_that(paste("sum, min, max, logsumexp over j and i,", precision), {
    with_precision(precision, {
      F <- -sqdist(Vi(x), Vj(y)) / 4
      for (what in c("Sum", "Min", "Max", "LogSumExp")) {
        f <- switch(what, Sum = sum, Min = min, Max = max, LogSumExp = logsumexp)
        expect_close(f(F, index = "j"), dense_reduce(Fxy, what), tol)
        expect_close(f(F, index = "i"), dense_reduce(t(Fxy), what), tol)
      }
      expect_close(sum(exp(F) * Vj(b), index = "j"), exp(Fxy) %*% b, tol)
      expect_close(sum(exp(F) * Vi(a), index = "i"), t(exp(Fxy)) %*% a, tol)
    })
  })

  test_that(paste("arg reductions return 1-based integer indices,", precision), {
    with_precision(precision, {
      F <- sqdist(Vi(x), Vj(y))
      D2 <- dense_sqdist(x, y)
      am <- argmin(F, "j")
      expect_type(am, "integer")
      expect_equal(dim(am), c(M, 1L))
      expect_equal(as.vector(am), dense_reduce(D2, "ArgMin"))
      expect_equal(as.vector(argmax(F, "i")), dense_reduce(t(D2), "ArgMax"))
      ma <- min_argmin(F, "j")
      expect_close(ma$values, dense_reduce(D2, "Min"), tol)
      expect_equal(as.vector(ma$indices), dense_reduce(D2, "ArgMin"))
      mx <- max_argmax(F, "i")
      expect_close(mx$values, dense_reduce(t(D2), "Max"), tol)
      expect_equal(as.vector(mx$indices), dense_reduce(t(D2), "ArgMax"))
      expect_close(min(F, index = "j"), dense_reduce(D2, "Min"), tol)
    })
  })

  test_that(paste("K-min reductions (kNN),", precision), {
    with_precision(precision, {
      F <- sqdist(Vi(x), Vj(y))
      D2 <- dense_sqdist(x, y)
      nn <- argKmin(F, K = 5, index = "j")
      expect_type(nn, "integer")
      expect_equal(unname(nn), dense_reduce(D2, "ArgKMin", K = 5))
      expect_close(Kmin(F, 5, "j"), dense_reduce(D2, "KMin", K = 5), tol)
      both <- Kmin_argKmin(F, 4, "i")
      expect_equal(unname(both$indices), dense_reduce(t(D2), "ArgKMin", K = 4))
      expect_close(both$values, dense_reduce(t(D2), "KMin", K = 4), tol)
    })
  })

  test_that(paste("weighted logsumexp and sumsoftmaxweight,", precision), {
    with_precision(precision, {
      F <- -sqdist(Vi(x), Vj(y)) / 4
      w <- exp(rnorm(N))
      expect_close(logsumexp(F, "j", weight = Vj(w)), log(exp(Fxy) %*% w), tol)
      expect_close(sumsoftmaxweight(F, "j", Vj(y)), (exp(Fxy) %*% y) / rowSums(exp(Fxy)), tol)
      expect_close(sumsoftmaxweight(F, "i", weight = Vi(x)), (t(exp(Fxy)) %*% x) / colSums(exp(Fxy)), tol)
    })
  })
}

test_that("vector-valued sums give one column per component", {
  F <- exp(-sqdist(Vi(x), Vj(y))) * Vj(y)
  expect_close(sum(F, index = "j"), exp(-dense_sqdist(x, y)) %*% y)
})

test_that("a component-wise Kmin of a vector formula is an n x K x d array, as in rkeops", {
  F <- Vi(x[, 1:2]) - Vj(y[, 1:2]) # dimension 2
  km <- Kmin(F, 3, "j")
  expect_equal(dim(km), c(M, 3L, 2L))
  both <- Kmin_argKmin(F, 3, "j")
  expect_identical(both$values, km)
  expect_identical(both$indices, argKmin(F, 3, "j"))
  for (c in 1:2) {
    D <- outer(x[, c], y[, c], "-")
    expect_close(km[, , c], dense_reduce(D, "KMin", K = 3))
    expect_equal(unname(argKmin(F, 3, "j")[, , c]), dense_reduce(D, "ArgKMin", K = 3))
  }
  # rkeops' own example: the 2 smallest of two copies of (1, 2, 3), over i.
  z <- matrix(c(1, 2, 3), 2, 3, byrow = TRUE)
  expect_equal(Kmin(Vi(z), 2, "i"), array(z, c(1, 2, 3)))
})

test_that("reduction.LazyTensor matches the named functions", {
  F <- sqdist(Vi(x), Vj(y))
  expect_identical(reduction.LazyTensor(F, "ArgKMin", "j", opt_arg = 3), argKmin(F, 3, "j"))
  expect_identical(reduction.LazyTensor(F, "Sum", "i"), sum(F, index = "i"))
  expect_identical(reduction.LazyTensor(-F, "SumSoftMaxWeight", "j", opt_arg = Vj(y)), sumsoftmaxweight(-F, Vj(y), "j")) # keopsr 0.1 order
})

test_that("thread counts give identical answers", {
  F <- exp(-sqdist(Vi(x), Vj(y))) * Vj(b)
  results <- lapply(c(1, 2, 3), function(n) {
    old <- keops_options(threads = n)
    on.exit(keops_options(old))
    list(sum(F, index = "j"), argKmin(sqdist(Vi(x), Vj(y)), 3, "i"))
  })
  expect_identical(results[[1]], results[[2]])
  expect_identical(results[[1]], results[[3]])
})

test_that("sum schemes agree and kahan is accurate", {
  big <- c(1, rep(1e-16, 20000))
  terms <- Vj(matrix(big)) * 1 + Vi(matrix(0)) # 1 x 20001 formula
  exact <- 1 + 20000 * 1e-16
  kahan <- keops_kernel("Sum_Reduction(b + x * 0, 1)", c("x = Vi(1)", "b = Vj(1)"), sum_scheme = "kahan")
  direct <- keops_kernel("Sum_Reduction(b + x * 0, 1)", c("x = Vi(1)", "b = Vj(1)"), sum_scheme = "direct")
  expect_lt(abs(kahan(list(0, big)) - exact), 1e-15)
  expect_equal(direct(list(0, big))[1, 1], 1)
  expect_close(sum(terms, index = "j"), sum(big))
})

test_that("NA, NaN and Inf follow IEEE arithmetic", {
  yy <- y; yy[2, 1] <- NA
  s <- sum(sqdist(Vi(x), Vj(yy)), index = "j")
  expect_true(all(is.na(s)))
  m <- min_argmin(sqdist(Vi(x), Vj(yy)), "j")
  D2 <- dense_sqdist(x, yy); D2[is.na(D2)] <- Inf
  expect_equal(as.vector(m$indices), apply(D2, 1, which.min)) # NaN ranks last
  expect_equal(logsumexp(Vj(c(-Inf, -Inf)) + Vi(0), "j")[1, 1], -Inf)
  expect_equal(logsumexp(Vj(c(0, Inf)) + Vi(0), "j")[1, 1], Inf)
})

test_that("a formula without j-variables reduced over j counts one term", {
  expect_close(sum(Vi(x) * 2, index = "j"), x * 2)
})

test_that("forked children (parallel::mclapply) reduce after the parent started its threads", {
  skip_on_os("windows")
  skip_if_not_installed("callr")
  # In a child R session with a time limit: a hang fails instead of blocking.
  res <- callr::r(function() {
    library(keopsr)
    set.seed(2)
    x <- matrix(rnorm(3000), 1000, 3)
    f <- function() sum(exp(-sqdist(Vi(x), Vj(x))), index = "j")
    keops_options(threads = 2)
    parent <- f()
    children <- parallel::mclapply(1:3, function(k) f(), mc.cores = 2)
    keops_options(threads = 1)
    one_thread <- parallel::mclapply(1:2, function(k) f(), mc.cores = 2)
    c(vapply(children, function(r) max(abs(r - parent)), 0), vapply(one_thread, function(r) max(abs(r - parent)), 0))
  }, timeout = 120)
  expect_equal(res, rep(0, 5))
})

test_that("index_base = 0L returns rkeops' 0-based indices everywhere", {
  set.seed(8)
  x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(45), 15, 3)
  D <- sqdist(Vi(x), Vj(y))
  one <- list(argmin(D, "j"), argKmin(D, 3, "i"), Kmin_argKmin(D, 2, "j")$indices, max_argmax(D, "i")$indices,
    keops_kernel("ArgKMin_Reduction(SqDist(x, y), 4, 1)", c("x = Vi(3)", "y = Vj(3)"))(list(x, y)))
  old <- keops_options(index_base = 0L)
  on.exit(keops_options(old))
  zero <- list(argmin(D, "j"), argKmin(D, 3, "i"), Kmin_argKmin(D, 2, "j")$indices, max_argmax(D, "i")$indices,
    keops_kernel("ArgKMin_Reduction(SqDist(x, y), 4, 1)", c("x = Vi(3)", "y = Vj(3)"))(list(x, y)))
  for (k in seq_along(one)) expect_identical(zero[[k]], one[[k]] - 1L)
  expect_identical(Kmin_argKmin(D, 2, "j")$values, Kmin(D, 2, "j"))
  expect_close(sum(D, index = "j"), rowSums(dense_sqdist(x, y)))
  expect_error(keops_options(index_base = 2), class = "keopsr_option_error")
})
