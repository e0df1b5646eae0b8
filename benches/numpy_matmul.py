#!/usr/bin/env python3
"""numpy's matrix product (its bundled BLAS, OpenBLAS for the PyPI wheels) on
the matmul workload's sizes, for comparing a system BLAS with ours and
PyTorch's (README, "Speed"):

    OPENBLAS_NUM_THREADS=2 python benches/numpy_matmul.py

Prints, per N, the median of 7 timed loops and GFLOPS [slowest–fastest loop].
"""
import statistics
import time

import numpy as np

for n in (128, 512, 1024):
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    reps = max(5, int(2e9 / (2 * n**3)))  # about a second per loop
    a @ b  # warm up (thread pool, caches)
    loops = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        loops.append((time.perf_counter() - t) / reps)
    gflops = lambda s: 2 * n**3 / s / 1e9
    med = statistics.median(loops)
    print(f"numpy matmul/f32/{n}: {med * 1e6:.1f} µs, {gflops(med):.0f} GFLOPS "
          f"[{gflops(max(loops)):.0f}–{gflops(min(loops)):.0f}]")
