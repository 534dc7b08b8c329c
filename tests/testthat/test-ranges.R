# Block-sparse reductions against dense masked base-R computations.

# Points in clusters, a random keep mask, and the dense pair mask it implies.
clustered <- function(n_i, n_j, d, size, seed) {
  set.seed(seed)
  x <- matrix(runif(n_i * d), n_i, d)
  y <- matrix(runif(n_j * d), n_j, d)
  sx <- keops_sort_clusters(x, keops_grid_cluster(x, size))
  sy <- keops_sort_clusters(y, keops_grid_cluster(y, size))
  cx <- keops_cluster_ranges_centroids(sx$x, sx$labels)
  cy <- keops_cluster_ranges_centroids(sy$x, sy$labels)
  keep <- matrix(runif(nrow(cx$ranges) * nrow(cy$ranges)) < 0.4, nrow(cx$ranges))
  keep[1, ] <- FALSE # an i-cluster with no block at all
  keep[, 2] <- FALSE # a j-cluster with no block at all
  list(
    x = sx$x, y = sy$x, keep = keep,
    ranges = keops_ranges(sx$labels, sy$labels, keep),
    mask = keep[sx$labels, sy$labels, drop = FALSE]
  )
}

# Reduction of each row of F over the entries allowed by `mask` (empty rows
# get `empty`).
masked_rows <- function(F, mask, what, empty, K = 1) {
  out <- lapply(seq_len(nrow(F)), function(r) {
    keep <- which(mask[r, ])
    if (length(keep) < K) return(rep(empty, K))
    v <- F[r, keep]
    switch(what,
      Sum = sum(v),
      Min = min(v),
      Max = max(v),
      ArgMin = keep[which.min(v)],
      KMin = sort(v)[seq_len(K)],
      ArgKMin = keep[order(v)[seq_len(K)]],
      LogSumExp = max(v) + log(sum(exp(v - max(v))))
    )
  })
  do.call(rbind, out)
}

test_that("block-sparse reductions equal dense masked computations over j and over i", {
  p <- clustered(120, 150, 3, 0.5, 1)
  x_i <- Vi(p$x); y_j <- Vj(p$y)
  D <- dense_sqdist(p$x, p$y)
  G <- exp(-D)
  expect_gt(sum(p$mask), 0); expect_lt(sum(p$mask), length(p$mask))
  for (index in c("j", "i")) {
    M <- if (index == "j") p$mask else t(p$mask)
    Dt <- if (index == "j") D else t(D)
    Gt <- if (index == "j") G else t(G)
    expect_close(sum(exp(-sqdist(x_i, y_j)), index = index, ranges = p$ranges), masked_rows(Gt, M, "Sum", 0))
    got <- min(sqdist(x_i, y_j), index = index, ranges = p$ranges)
    want <- masked_rows(Dt, M, "Min", Inf)
    expect_identical(is.infinite(got), is.infinite(want))
    expect_close(got[is.finite(want)], want[is.finite(want)])
    expect_identical(
      unname(argmin(sqdist(x_i, y_j), index, ranges = p$ranges)),
      matrix(as.integer(masked_rows(Dt, M, "ArgMin", NA)), ncol = 1)
    )
    expect_identical(
      unname(argKmin(sqdist(x_i, y_j), 2, index, ranges = p$ranges)),
      matrix(as.integer(masked_rows(Dt, M, "ArgKMin", NA, K = 2)), ncol = 2)
    )
    got <- logsumexp(-sqdist(x_i, y_j), index, ranges = p$ranges)
    want <- masked_rows(-Dt, M, "LogSumExp", -Inf)
    expect_identical(got == -Inf, want == -Inf)
    expect_close(got[is.finite(want)], want[is.finite(want)])
  }
})

test_that("keeping every block gives the full reduction", {
  p <- clustered(200, 90, 5, 0.4, 2) # dimension 5: beyond KeOps' grid_cluster
  keep <- matrix(TRUE, nrow(p$keep), ncol(p$keep))
  labels_i <- keops_sort_clusters(p$x, keops_grid_cluster(p$x, 0.4))$labels
  labels_j <- keops_sort_clusters(p$y, keops_grid_cluster(p$y, 0.4))$labels
  r <- keops_ranges(labels_i, labels_j, keep)
  x_i <- Vi(p$x); y_j <- Vj(p$y)
  K <- exp(-sqdist(x_i, y_j))
  for (index in c("i", "j")) {
    expect_close(sum(K, index = index, ranges = r), sum(K, index = index))
    expect_identical(argKmin(sqdist(x_i, y_j), 3, index, ranges = r), argKmin(sqdist(x_i, y_j), 3, index))
    expect_close(max(K, index = index, ranges = r), max(K, index = index))
  }
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x = Vi(5)", "y = Vj(5)"))
  expect_close(op(list(p$x, p$y)), sum(K, index = "j"))
})

test_that("grid clustering, sorting and cluster ranges", {
  x <- cbind(c(0.05, 0.95, 0.15, 0.55, 0.91), c(0.1, 0.1, 0.12, 0.7, 0.2))
  # Cells of side 0.5 from the corner (0.05, 0.1): (0,0) (1,0) (0,0) (1,1) (1,0),
  # numbered in lexicographic order.
  lab <- keops_grid_cluster(x, 0.5)
  expect_identical(lab, c(1L, 2L, 1L, 3L, 2L))
  s <- keops_sort_clusters(x, lab)
  expect_identical(s$labels, c(1L, 1L, 2L, 2L, 3L))
  expect_identical(s$order, c(1L, 3L, 2L, 5L, 4L))
  expect_identical(s$x, x[c(1, 3, 2, 5, 4), ])
  cl <- keops_cluster_ranges_centroids(s$x, s$labels)
  expect_identical(unname(cl$ranges), cbind(c(1L, 3L, 5L), c(2L, 4L, 5L)))
  expect_equal(cl$centroids[1, ], colMeans(x[c(1, 3), ]))
  expect_equal(cl$weights, c(2, 2, 1))
  expect_identical(keops_grid_cluster(x, c(1, 0.5)), c(1L, 1L, 1L, 2L, 1L))
  expect_error(keops_cluster_ranges_centroids(x, lab), class = "keopsr_input_error")
  keep <- keops_cluster_mask(cl$centroids, cl$centroids, 0.5)
  expect_identical(keep, unname(as.matrix(dist(cl$centroids)) <= 0.5))
  r <- keops_ranges(cl$ranges, cl$ranges, keep)
  expect_s3_class(r, "keops_ranges")
  expect_identical(r$slices_i, as.integer(cumsum(rowSums(keep))))
  expect_output(print(r), "3 cluster")
})

test_that("bad ranges are classed errors", {
  x <- matrix(runif(20), 10, 2)
  K <- exp(-sqdist(Vi(x), Vj(x)))
  good <- keops_ranges(rep(1L, 10), rep(1L, 10), matrix(TRUE))
  expect_error(sum(K, index = "j", ranges = list(1, 2)), class = "keopsr_input_error")
  too_far <- good
  too_far$redranges_j <- matrix(c(1L, 11L), 1)
  expect_error(sum(K, index = "j", ranges = too_far), class = "keopsr_input_error")
  overlap <- good
  overlap$redranges_j <- rbind(c(1L, 5L), c(4L, 10L))
  overlap$slices_i <- 2L
  expect_error(sum(K, index = "j", ranges = overlap), class = "keopsr_input_error")
  y <- matrix(runif(8), 4, 2)
  expect_error(sum(exp(-sqdist(Vi(x), Vj(y))), index = "j", ranges = good), class = "keopsr_input_error")
  expect_error(keops_ranges(c(2L, 1L), 1L, matrix(TRUE, 2, 1)), class = "keopsr_input_error")
  expect_error(keops_ranges(1L, 1L, matrix(TRUE, 2, 2)), class = "keopsr_input_error")
})

test_that("keops_kernel() operators take ranges", {
  p <- clustered(60, 70, 2, 0.3, 3)
  G <- exp(-dense_sqdist(p$x, p$y))
  op_j <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x = Vi(2)", "y = Vj(2)"))
  op_i <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 0)", c("x = Vi(2)", "y = Vj(2)"))
  expect_close(op_j(list(p$x, p$y), ranges = p$ranges), masked_rows(G, p$mask, "Sum", 0))
  expect_close(op_i(list(p$x, p$y), ranges = p$ranges), masked_rows(t(G), t(p$mask), "Sum", 0))
})

test_that("block-sparse reductions in float32", {
  p <- clustered(100, 80, 2, 0.3, 4)
  old <- keops_options(precision = "float32")
  on.exit(keops_options(old))
  got <- sum(exp(-sqdist(Vi(p$x), Vj(p$y))), index = "j", ranges = p$ranges)
  expect_close(got, masked_rows(exp(-dense_sqdist(p$x, p$y)), p$mask, "Sum", 0), 1e-5)
})
