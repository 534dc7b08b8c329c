# Block-sparse reductions: clustering helpers and the `ranges` object.

#' Block-sparse reductions: clusters and ranges
#'
#' A block-sparse reduction skips blocks of the symbolic matrix known to be
#' negligible, such as far-away pairs of a truncated kernel. The recipe
#' (as in KeOps' `pykeops.*.cluster` module) is:
#' 1. cluster the points with `keops_grid_cluster()` (any dimension, where
#'    KeOps' `grid_cluster` handles at most 3);
#' 2. sort them so that each cluster is contiguous with `keops_sort_clusters()`
#'    (sort the data that goes with them, such as weights, the same way);
#' 3. get each cluster's rows and centroid with `keops_cluster_ranges_centroids()`;
#' 4. decide which pairs of clusters interact with `keops_cluster_mask()`;
#' 5. turn labels (or cluster rows) and the mask into a `ranges` object with
#'    `keops_ranges()` and pass it to any reduction: `sum(K, index = "j", ranges = r)`.
#'
#' Block-sparse reductions run on CPU threads: with `backend = "auto"` they
#' stay on the CPU when a GPU is usable, and `backend = "gpu"` with `ranges`
#' is a `keopsr_backend_error`.
#'
#' Output points not covered by any kept block get the reduction's value on
#' an empty set: 0 for `sum()`, `Inf` for `min()`, `-Inf` for `max()` and
#' `logsumexp()`, `NA` for the indices of `argmin()`, `argKmin()`, and `NaN`
#' for the values of `Kmin()`.
#'
#' **Format.** A `keops_ranges` object is a list of six integer objects,
#' KeOps' `(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)`:
#' `ranges_i` has one row `(start, end)` per cluster of i, `slices_i[k]` is the
#' number of kept blocks of i-clusters 1 to k, and `redranges_j` lists, for
#' each i-cluster in turn, the rows of the j-clusters it interacts with;
#' the last three are the same for a reduction over i. As everywhere in R,
#' rows are 1-based and both ends are included (an empty cluster has
#' `end = start - 1`): pykeops' 0-based half-open `[start, end)` row is
#' `(start + 1, end)` here. A reduction over j uses the first three
#' elements, a reduction over i the last three.
#'
#' @param x a numeric matrix of points, one per row (or a vector: points
#'   on a line).
#' @param size side of the grid cells: one number, or one per column.
#' @param labels cluster labels of the points: integers `1, ..., C`.
#' @param weights optional weights of the points (default: 1 each).
#' @param centroids_x,centroids_y cluster centroids, one per row.
#' @param max_dist largest distance between centroids of interacting
#'   clusters. The mask is a dense Cx x Cy matrix (as in KeOps): meant for up
#'   to a few thousand clusters of each index. With grid cells of side `size` in dimension d, every pair of
#'   points closer than `R` lies in clusters whose centroids are closer than
#'   `R + 2 * size * sqrt(d)`.
#' @param i,j the clusters of the i and j points: sorted label vectors, or
#'   two-column matrices of cluster rows `(start, end)` (as returned by
#'   `keops_cluster_ranges_centroids()`).
#' @param keep a logical matrix, one row per i-cluster and one column per
#'   j-cluster: which blocks to compute.
#' @return `keops_grid_cluster()`: integer labels `1, ..., C`, numbered in
#'   the lexicographic order of the grid cells. `keops_sort_clusters()`: a
#'   list with the sorted `x`, the sorted `labels` and the permutation
#'   `order` (`x[order, ]` is the sorted `x`). `keops_cluster_ranges_centroids()`:
#'   a list with `ranges` (C x 2 integer matrix of rows), `centroids` (C x d,
#'   weighted means; NaN for an empty cluster) and `weights` (total weight per
#'   cluster). `keops_cluster_mask()`: a logical matrix. `keops_ranges()`: an
#'   object of class `keops_ranges`.
#' @name keops_ranges
#' @examples
#' set.seed(1)
#' x <- matrix(runif(2000), ncol = 2)
#' s <- keops_sort_clusters(x, keops_grid_cluster(x, 0.1))
#' cl <- keops_cluster_ranges_centroids(s$x, s$labels)
#' keep <- keops_cluster_mask(cl$centroids, cl$centroids, 0.1 + 2 * 0.1 * sqrt(2))
#' r <- keops_ranges(cl$ranges, cl$ranges, keep)
#' r
#' K <- exp(-sqdist(Vi(s$x), Vj(s$x)) / 0.01^2)
#' max(abs(sum(K, index = "j", ranges = r) - sum(K, index = "j")))
NULL

as_points <- function(x, what, call) {
  if (is.null(dim(x))) x <- matrix(x, ncol = 1)
  if (!is.numeric(x) || length(dim(x)) != 2) {
    keopsr_abort("input", sprintf("%s must be a numeric matrix (one point per row) or vector", what), call)
  }
  x
}

check_labels <- function(labels, n, call) {
  if (!is.numeric(labels) || length(labels) != n || anyNA(labels) || any(labels < 1) ||
    any(labels != round(labels))) {
    keopsr_abort("input", sprintf("labels must be %d whole numbers >= 1 (one per point)", n), call)
  }
  as.integer(labels)
}

#' @rdname keops_ranges
#' @export
keops_grid_cluster <- function(x, size) {
  call <- sys.call()
  x <- as_points(x, "x", call)
  if (!is.numeric(size) || !length(size) %in% c(1, ncol(x)) || anyNA(size) || any(size <= 0)) {
    keopsr_abort("input", "size must be positive: one number or one per column of x", call)
  }
  if (nrow(x) == 0) return(integer())
  if (!all(is.finite(x))) keopsr_abort("input", "x must hold finite numbers only", call)
  size <- rep_len(size, ncol(x))
  cells <- floor(sweep(sweep(x, 2, apply(x, 2, min)), 2, size, "/"))
  o <- do.call(order, unname(as.data.frame(cells)))
  sorted <- cells[o, , drop = FALSE]
  new_cell <- c(TRUE, rowSums(sorted[-1, , drop = FALSE] != sorted[-nrow(sorted), , drop = FALSE]) > 0)
  labels <- integer(nrow(x))
  labels[o] <- cumsum(new_cell)
  labels
}

#' @rdname keops_ranges
#' @export
keops_sort_clusters <- function(x, labels) {
  call <- sys.call()
  x_is_vector <- is.null(dim(x))
  x <- as_points(x, "x", call)
  labels <- check_labels(labels, nrow(x), call)
  o <- order(labels)
  list(x = if (x_is_vector) x[o, 1] else x[o, , drop = FALSE], labels = labels[o], order = o)
}

#' @rdname keops_ranges
#' @export
keops_cluster_ranges_centroids <- function(x, labels, weights = NULL) {
  call <- sys.call()
  x <- as_points(x, "x", call)
  labels <- check_labels(labels, nrow(x), call)
  if (is.unsorted(labels)) {
    keopsr_abort("input", "labels must be sorted (clusters contiguous): use keops_sort_clusters() first", call)
  }
  if (is.null(weights)) weights <- rep(1, nrow(x))
  if (!is.numeric(weights) || length(weights) != nrow(x)) {
    keopsr_abort("input", "weights must be a numeric vector with one value per point", call)
  }
  C <- if (length(labels)) max(labels) else 0L
  counts <- tabulate(labels, C)
  ends <- cumsum(counts)
  w <- as.vector(rowsum(weights, factor(labels, levels = seq_len(C))))
  sums <- rowsum(x * weights, factor(labels, levels = seq_len(C)))
  list(
    ranges = cbind(start = as.integer(ends - counts + 1L), end = as.integer(ends)),
    centroids = unname(sums / w),
    weights = w
  )
}

#' @rdname keops_ranges
#' @export
keops_cluster_mask <- function(centroids_x, centroids_y, max_dist) {
  call <- sys.call()
  cx <- as_points(centroids_x, "centroids_x", call)
  cy <- as_points(centroids_y, "centroids_y", call)
  if (ncol(cx) != ncol(cy)) {
    keopsr_abort("dimension", sprintf(
      "centroids_x has %d column(s) but centroids_y has %d", ncol(cx), ncol(cy)
    ), call)
  }
  if (!is.numeric(max_dist) || length(max_dist) != 1 || is.na(max_dist)) {
    keopsr_abort("input", "max_dist must be one number", call)
  }
  d2 <- outer(rowSums(cx^2), rowSums(cy^2), "+") - 2 * tcrossprod(cx, cy)
  keep <- d2 <= max_dist^2
  keep[is.na(keep)] <- FALSE # empty clusters have NaN centroids
  keep
}

# Cluster rows from sorted labels, or checked (start, end) rows.
cluster_rows <- function(x, what, call) {
  if (is.matrix(x) && ncol(x) == 2) {
    if (!is.numeric(x) || anyNA(x)) keopsr_abort("input", sprintf("%s must hold whole numbers", what), call)
    return(matrix(as.integer(x), ncol = 2))
  }
  labels <- check_labels(x, length(x), call)
  if (is.unsorted(labels)) {
    keopsr_abort("input", sprintf("%s: labels must be sorted (use keops_sort_clusters())", what), call)
  }
  C <- if (length(labels)) max(labels) else 0L
  counts <- tabulate(labels, C)
  ends <- cumsum(counts)
  cbind(as.integer(ends - counts + 1L), as.integer(ends))
}

#' @rdname keops_ranges
#' @export
keops_ranges <- function(i, j, keep) {
  call <- sys.call()
  ri <- cluster_rows(i, "i", call)
  rj <- cluster_rows(j, "j", call)
  if (!is.logical(keep) || !is.matrix(keep) || nrow(keep) != nrow(ri) ||
    ncol(keep) != nrow(rj) || anyNA(keep)) {
    keopsr_abort("input", sprintf(
      "keep must be a logical matrix without NA, with %d row(s) (clusters of i) and %d column(s) (clusters of j)",
      nrow(ri), nrow(rj)
    ), call)
  }
  # For each i-cluster in turn, the j-clusters it keeps (and conversely).
  kept_j <- (which(t(keep)) - 1L) %% nrow(rj) + 1L
  kept_i <- (which(keep) - 1L) %% nrow(ri) + 1L
  structure(list(
    ranges_i = ri,
    slices_i = as.integer(cumsum(rowSums(keep))),
    redranges_j = rj[kept_j, , drop = FALSE],
    ranges_j = rj,
    slices_j = as.integer(cumsum(colSums(keep))),
    redranges_i = ri[kept_i, , drop = FALSE]
  ), class = "keops_ranges")
}

#' @export
print.keops_ranges <- function(x, ...) {
  ni <- nrow(x$ranges_i)
  nj <- nrow(x$ranges_j)
  kept <- if (ni) x$slices_i[ni] else 0L
  cat(sprintf(
    "keops_ranges: %d cluster(s) of i, %d cluster(s) of j, %d of %d blocks kept (%.1f%%)\n",
    ni, nj, kept, ni * nj, if (ni * nj > 0) 100 * kept / (ni * nj) else 0
  ))
  invisible(x)
}

# The 0-based half-open arrays that the core takes, for a reduction over
# `index` ("j": the i-clusters and their j-intervals).
ranges_for <- function(ranges, index, call) {
  if (is.null(ranges)) return(NULL)
  if (!is.list(ranges) || length(ranges) != 6) {
    keopsr_abort("input", paste(
      "ranges must be a keops_ranges object (see keops_ranges()) or a list of six elements",
      "(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)"
    ), call)
  }
  part <- if (identical(index, "j")) ranges[1:3] else ranges[4:6]
  as_rows <- function(m, what) {
    m <- as.matrix(m)
    if (!is.numeric(m) || ncol(m) != 2 || anyNA(m) || any(m != round(m)) || any(abs(m) > .Machine$integer.max)) {
      keopsr_abort("input", sprintf("ranges: %s must be a two-column matrix of whole numbers", what), call)
    }
    m
  }
  out <- as_rows(part[[1]], "the clusters of output rows")
  red <- as_rows(part[[3]], "the reduced intervals")
  slices <- part[[2]]
  if (!is.numeric(slices) || anyNA(slices) || any(slices != round(slices))) {
    keopsr_abort("input", "ranges: slices must be whole numbers", call)
  }
  list(
    out_start = as.integer(out[, 1] - 1), out_end = as.integer(out[, 2]),
    slices = as.integer(slices),
    red_start = as.integer(red[, 1] - 1), red_end = as.integer(red[, 2])
  )
}
