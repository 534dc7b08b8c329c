"""pykeops side of the keopsr benchmark suite (called by bench/run.R).

Times one case with pykeops on the CPU: optionally the first call of a formula
never seen before (a fresh random constant in it, so pykeops generates and
compiles it with g++), then a warm-up call of the benchmark formula and `runs`
timed calls. The inputs are the very matrices keopsr gets: run.R writes them
as float64 column-major binary files; the conversion to C-contiguous arrays of
the requested dtype is done before timing (a numpy user would have them).

Prints `key=value` lines on stdout (first_call_s, warmup_s, times, median_s)
and writes the result of the last call, column-major float64, to --out so that
run.R can compare it with keopsr's.
"""

import argparse
import os
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--formula", required=True, help="pykeops formula (no outer reduction)")
    p.add_argument("--first-formula", default="", help="formula for the first-call measurement")
    p.add_argument("--aliases", required=True, help="argument declarations separated by ';'")
    p.add_argument("--reduction", default="Sum")
    p.add_argument("--opt-arg", type=int, default=None, help="K for KMin-type reductions")
    p.add_argument("--axis", type=int, default=1)
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--dir", required=True, help="folder with NAME.bin input files")
    p.add_argument("--inputs", required=True, help="NAME:ROWS:COLS,... in argument order")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", default="")
    p.add_argument("--build-folder", default="")
    a = p.parse_args()

    import numpy as np
    import pykeops

    if a.build_folder:
        pykeops.set_build_folder(a.build_folder)
    from pykeops.numpy import Genred

    arrays = []
    for spec in a.inputs.split(","):
        name, rows, cols = spec.split(":")
        rows, cols = int(rows), int(cols)
        flat = np.fromfile(os.path.join(a.dir, name + ".bin"), dtype=np.float64)
        arrays.append(np.ascontiguousarray(flat.reshape((cols, rows)).T, dtype=a.dtype))

    aliases = [s.strip() for s in a.aliases.split(";") if s.strip()]
    kw = dict(reduction_op=a.reduction, axis=a.axis)
    if a.opt_arg is not None:
        kw["opt_arg"] = a.opt_arg

    def call(formula):
        op = Genred(formula, aliases, **kw)
        return op, op(*arrays, backend="CPU")

    clock = time.perf_counter
    if a.first_formula:
        t0 = clock()
        call(a.first_formula)
        print("first_call_s=%.6f" % (clock() - t0))

    t0 = clock()
    op, out = call(a.formula)
    print("warmup_s=%.6f" % (clock() - t0))
    times = []
    for _ in range(max(a.runs, 1)):  # runs = 0: one run after the compiling call
        t0 = clock()
        out = op(*arrays, backend="CPU")
        times.append(clock() - t0)
    print("times=" + ",".join("%.6f" % t for t in times))
    print("median_s=%.6f" % statistics.median(times))
    print("threads=%s" % os.environ.get("OMP_NUM_THREADS", "default"))
    if a.out:
        np.asarray(out, dtype=np.float64).T.tofile(a.out)  # column-major, as R reads it
    sys.stdout.flush()


if __name__ == "__main__":
    main()
