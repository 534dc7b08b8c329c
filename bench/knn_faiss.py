"""faiss-cpu IndexFlatL2 for bench/knn.R: exact kNN of the queries x against
the points y (float32 binary files written by R, column-major n x d), K
neighbours, median of `runs` timed searches after one warm-up, on `threads`
OpenMP threads. Writes 1-based indices (int32, row-major m x K) and squared
distances (float32) next to the inputs, and prints the median time.

Run: python knn_faiss.py x.f32 m y.f32 n d K threads runs out_prefix
"""
import statistics
import sys
import time

import faiss
import numpy as np

xf, m, yf, n, d, k, threads, runs, out = sys.argv[1:10]
m, n, d, k, threads, runs = map(int, (m, n, d, k, threads, runs))
faiss.omp_set_num_threads(threads)
# R writes column-major: read as (d, n) and transpose to C-contiguous (n, d).
x = np.ascontiguousarray(np.fromfile(xf, dtype=np.float32).reshape(d, m).T)
y = np.ascontiguousarray(np.fromfile(yf, dtype=np.float32).reshape(d, n).T)
times = []
for r in range(runs + 1):
    t0 = time.perf_counter()
    index = faiss.IndexFlatL2(d)
    index.add(y)
    dist, idx = index.search(x, k)
    if r > 0:
        times.append(time.perf_counter() - t0)
(idx.astype(np.int32) + 1).tofile(out + ".idx")
dist.astype(np.float32).tofile(out + ".dist")
print(statistics.median(times))
