# Exact kNN in high dimension (issue 19): keopsr's GEMM distances with an
# exact re-rank (keops_options(gemm = "auto")) against its direct loop
# (gemm = "never"), faiss-cpu's IndexFlatL2 (pip wheel, BLAS GEMM tiles and
# a heap) and, at low dimension, FNN and RANN (kd-trees, one thread): K = 10,
# float32, M queries against N points drawn from N(0, I_D), side by side in
# one run, medians of `runs` timed runs after a warm-up.
#
# Run: Rscript bench/knn.R [--dims=16,50,128,784] [--n=5e4] [--m=5e3]
#        [--runs=3] [--threads=2] [--kdtree-max-dim=16] [--out=bench/RESULTS-knn.md]
# faiss comes from a virtual environment bench/.venv (created with
# `pip install faiss-cpu numpy` when missing; git-ignored).
library(keopsr)
source("bench/common.R")
dims <- nums(arg("dims", "16,50,128,784"))
N <- as.numeric(arg("n", "5e4"))
M <- as.numeric(arg("m", "5e3"))
runs <- as.integer(arg("runs", "3"))
threads <- as.integer(arg("threads", "2"))
kdtree_max_dim <- as.numeric(arg("kdtree-max-dim", "16"))
out <- arg("out", "bench/RESULTS-knn.md")
K <- 10L

python <- bench_python(c("faiss", "numpy"), c("faiss-cpu", "numpy"))
faiss_version <- py_version(python, "faiss")


faiss_knn <- function(x, y) {
  dir <- tempfile("knn")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE))
  xf <- file.path(dir, "x.f32")
  yf <- file.path(dir, "y.f32")
  writeBin(as.vector(x), xf, size = 4)
  writeBin(as.vector(y), yf, size = 4)
  prefix <- file.path(dir, "out")
  t <- system2(python, c("bench/knn_faiss.py", xf, nrow(x), yf, nrow(y), ncol(x), K, threads, runs, prefix),
               stdout = TRUE)
  idx <- matrix(readBin(paste0(prefix, ".idx"), "integer", nrow(x) * K, size = 4), ncol = K, byrow = TRUE)
  dist <- matrix(readBin(paste0(prefix, ".dist"), "double", nrow(x) * K, size = 4), ncol = K, byrow = TRUE)
  list(time = as.numeric(tail(t, 1)), index = idx, dist = dist)
}

# Exact squared distances (float64) of the pairs (i, index[i, r]).
exact_sqdist <- function(x, y, index) {
  sapply(seq_len(ncol(index)), function(r) rowSums((x - y[index[, r], , drop = FALSE])^2))
}

# Share of (query, rank) entries whose index equals the reference's, and
# the same counting a differing index as agreeing when its exact distance
# ties the reference's within float32 rounding (ties aside).
agreement <- function(index, ref, x, y) {
  same <- index == ref
  d1 <- exact_sqdist(x, y, index)
  d2 <- exact_sqdist(x, y, ref)
  tied <- abs(d1 - d2) <= 1e-5 * pmax(d1, d2)
  c(exact = mean(same), ties_aside = mean(same | tied))
}

rows <- list()
set.seed(1)
for (D in dims) {
  x <- matrix(rnorm(M * D), M, D)
  y <- matrix(rnorm(N * D), N, D)
  # Both sides see the same float32 data.
  x <- matrix(readBin(writeBin(as.vector(x), raw(), size = 4), "double", M * D, size = 4), M, D)
  y <- matrix(readBin(writeBin(as.vector(y), raw(), size = 4), "double", N * D, size = 4), N, D)
  decl <- c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D))
  op <- keops_kernel(sprintf("KMin_ArgKMin_Reduction(SqDist(x, y), %d, 1)", K), decl)
  keopsr_run <- function(gemm) {
    keops_options(precision = "float32", threads = threads, gemm = gemm)
    on.exit(keops_options(precision = "float64", threads = 0, gemm = "auto"))
    r <- timed(function() op(list(x, y)), runs)
    r$dist <- r$value$values
    r$index <- r$value$indices
    r
  }
  auto <- keopsr_run("auto")
  never <- keopsr_run("never")
  fa <- faiss_knn(x, y)
  row <- list(D = D, auto = auto$time, never = never$time, faiss = fa$time,
              same_as_direct = identical(auto$value, never$value),
              vs_faiss = agreement(auto$index, fa$index, x, y),
              dist_error = max(abs(auto$dist - exact_sqdist(x, y, auto$index)) / exact_sqdist(x, y, auto$index)))
  if (D <= kdtree_max_dim) {
    row$fnn <- elapsed(fnn <- FNN::get.knnx(y, x, k = K)$nn.index)
    row$rann <- elapsed(rann <- RANN::nn2(y, x, k = K)$nn.idx)
    row$vs_fnn <- agreement(auto$index, fnn, x, y)
  }
  rows[[length(rows) + 1]] <- row
  cat(sprintf("D = %d: auto %.3f s, never %.3f s, faiss %.3f s\n", D, auto$time, never$time, fa$time))
}

lines <- c(
  "# Exact kNN in high dimension: keopsr against faiss-cpu",
  "",
  report_header("knn.R"),
  sprintf("- faiss-cpu %s (pip), FNN %s, RANN %s", faiss_version, utils::packageVersion("FNN"),
          utils::packageVersion("RANN")),
  sprintf("- K = %d, float32, M = %s queries against N = %s points, x and y from N(0, I_D); %d threads for keopsr and faiss (`omp_set_num_threads`), FNN and RANN on one; medians of %d runs after a warm-up (FNN, RANN: one run)",
          K, format(M, big.mark = ","), format(N, big.mark = ","), threads, runs),
  "- keopsr: `KMin_ArgKMin_Reduction(SqDist(x, y), 10, 1)`, `gemm = \"auto\"` (GEMM distances, exact re-rank) and `\"never\"` (direct loop); faiss: `IndexFlatL2` add + search (distances and indices)",
  "- Ratios: other's time / keopsr auto's (above 1: keopsr is faster)",
  "",
  "| D | keopsr auto | keopsr never | ratio | faiss | ratio | FNN | ratio | RANN | ratio | auto = never (bits) | indices = faiss | ties aside | max rel. distance error |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
for (r in rows) {
  lines <- c(lines, sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f%% | %.2f%% | %.1e |",
                            r$D, f(r$auto), f(r$never), ratio(r$never, r$auto), f(r$faiss), ratio(r$faiss, r$auto),
                            f(r$fnn), ratio(r$fnn, r$auto), f(r$rann), ratio(r$rann, r$auto),
                            if (r$same_as_direct) "yes" else "NO", 100 * r$vs_faiss[["exact"]],
                            100 * r$vs_faiss[["ties_aside"]], r$dist_error))
}
writeLines(lines, out)
cat(lines, sep = "\n")
