# The on-disk cache of compiled GPU kernels. Entries are written atomically
# and carry a checksum (src/rust/core/src/cuda/nvrtc.rs), so several R
# processes can share one folder; a damaged entry is compiled again.

# The default folder: KEOPSR_CACHE_DIR when set, else R's per-user cache.
default_cache_dir <- function() {
  env <- Sys.getenv("KEOPSR_CACHE_DIR")
  if (nzchar(env)) path.expand(env) else tools::R_user_dir("keopsr", "cache")
}

# The folder in use (NA when the disk cache is disabled).
current_cache_dir <- function() {
  dir <- keops_options()$cache_dir
  if (is.null(dir)) default_cache_dir() else dir
}

#' Clear the cache of compiled GPU kernels
#'
#' keopsr compiles each GPU kernel once with NVRTC and keeps the result in a
#' cache folder (the `cache_dir` option of [keops_options()], else the
#' environment variable `KEOPSR_CACHE_DIR`, else
#' `tools::R_user_dir("keopsr", "cache")`), keyed by the kernel's source,
#' the GPU architecture, the NVRTC and keopsr versions. Entries are written
#' atomically (a temporary file, then a rename) and carry a checksum: any
#' number of R processes can share the folder, and a truncated or corrupted
#' entry is detected and compiled again. [keops_info()] reports the number
#' of entries and their size. `keops_cache_clear()` removes them (only
#' keopsr's own files); the next GPU call compiles again.
#'
#' @return The number of files removed, invisibly.
#' @export
#' @examples
#' keops_info()$cache_entries
#' \dontrun{
#' keops_cache_clear()
#' }
keops_cache_clear <- function() {
  dir <- current_cache_dir()
  invisible(if (is.na(dir)) 0 else keopsr_cache_clear(dir))
}
