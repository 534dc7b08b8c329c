"""pykeops and blocked numpy sides of bench/highdim.R: the Gaussian kernel sum
out_i = sum_j exp(-|x_i - y_j|^2 / (2 D)) b_j in float64.

x (M x D), y (N x D) and b (N) come as float64 column-major binary files
written by R; they are converted to C-contiguous arrays before timing (a
numpy user would have them). `method` is
- `pykeops`: Genred on the CPU backend (threads from OMP_NUM_THREADS);
- `numpy`: blocks of `block` rows, |x|^2 + |y|^2 - 2 x y^T by BLAS (numpy's
  OpenBLAS, threads from OPENBLAS_NUM_THREADS), then exp and a matrix-vector
  product: the formulation a numpy user writes, storing a block x N matrix.
Two warm-up calls (pykeops compiles its formula in the first), then `runs` timed
calls (up to 30 when a call takes under 0.1 s, as in bench/highdim.R); prints the median time and writes the last result (float64) to out.

Run: python highdim_py.py method x.f64 M y.f64 N b.f64 D runs out [block] [keops_build_folder]
"""
import statistics
import sys
import time

import numpy as np

method, xf, m, yf, n, bf, d, runs, out = sys.argv[1:10]
block = int(sys.argv[10]) if len(sys.argv) > 10 else 1000
m, n, d, runs = map(int, (m, n, d, runs))
x = np.ascontiguousarray(np.fromfile(xf).reshape(d, m).T)
y = np.ascontiguousarray(np.fromfile(yf).reshape(d, n).T)
b = np.fromfile(bf).reshape(n, 1)
gamma = 1.0 / (2.0 * d)

if method == "pykeops":
    import pykeops

    if len(sys.argv) > 11:
        pykeops.set_build_folder(sys.argv[11])
    from pykeops.numpy import Genred

    op = Genred("Exp(-g * SqDist(x, y)) * b", [f"x = Vi({d})", f"y = Vj({d})", "b = Vj(1)", "g = Pm(1)"],
                reduction_op="Sum", axis=1)
    g = np.array([gamma])

    def run():
        return op(x, y, b, g, backend="CPU")
elif method == "numpy":
    def run():
        yy = np.einsum("ij,ij->i", y, y)
        res = np.empty((m, 1))
        for s in range(0, m, block):
            xb = x[s:s + block]
            d2 = np.einsum("ij,ij->i", xb, xb)[:, None] + yy[None, :] - 2.0 * (xb @ y.T)
            np.maximum(d2, 0.0, out=d2)
            np.multiply(d2, -gamma, out=d2)
            np.exp(d2, out=d2)
            res[s:s + block] = d2 @ b
        return res
else:
    sys.exit(f"unknown method {method}")

res = run()  # pykeops compiles its formula here
t0 = time.perf_counter()
res = run()
warm = time.perf_counter() - t0
runs = max(runs, min(30, int(1 / max(warm, 1e-3)) + 1))
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    res = run()
    times.append(time.perf_counter() - t0)
np.asarray(res, dtype=np.float64).reshape(-1).tofile(out)
print(statistics.median(times))
