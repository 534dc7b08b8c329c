#' keopsr: kernel operations on symbolic matrices
#'
#' keopsr computes reductions (sums, log-sum-exp, minima, k-nearest
#' neighbours, ...) of matrices \eqn{F(x_i, y_j)} given by a formula, without
#' storing them: memory stays linear in the number of points.
#'
#' Build formulas with [LazyTensor()] (or [Vi()], [Vj()], [Pm()]) and reduce
#' them with [sum()][Summary.LazyTensor], [argKmin()], [logsumexp()], ...; or
#' write a KeOps formula string for [keops_kernel()].
#'
#' @section Conventions:
#' - **Axis**: `index = "i"` reduces over i (one output row per j);
#'   `index = "j"` reduces over j (one output row per i). In formula strings,
#'   `Sum_Reduction(F, 0)` reduces over i and `Sum_Reduction(F, 1)` over j.
#' - **Data**: i- and j-variables are matrices with one row per point
#'   (a plain vector is one column); parameters are numeric vectors.
#' - **Indices** returned by `argmin()`, `argKmin()`, ... are 1-based integers.
#'   Positions inside formulas (`Vi(0, 3)`) are 0-based, as in KeOps.
#' - **Precision**: float64 by default; float32 with
#'   `keops_options(precision = "float32")`.
#'
#' @section Special values:
#' NA, NaN and Inf follow IEEE arithmetic inside formulas (an NA input gives
#' NA or NaN wherever it is used). Sums propagate NaN. Min/max-type reductions
#' (`min`, `argmin`, `Kmin`, `argKmin`, ...) rank NaN after every number, as
#' [order()] and [which.min()] do, so NaN is returned only when every value is
#' NaN; ties go to the smallest index. `logsumexp()` treats `-Inf` entries as
#' contributing nothing and returns `-Inf` when all are `-Inf`.
#'
#' @keywords internal
#' @useDynLib keopsr, .registration = TRUE
"_PACKAGE"

.onLoad <- function(libname, pkgname) {
  keopsr_init()
  keopsr_set_cache_dir(default_cache_dir())
  invisible()
}
