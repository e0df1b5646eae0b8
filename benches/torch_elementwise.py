"""PyTorch side of crates/tensor/benches/elementwise.rs: the same ops on the
same shapes (1024 x 1024 f32), timed with the shared protocol, for ratios.

    PEERS_THREADS=2 python benches/torch_elementwise.py   # torch in a venv
    RAYON_NUM_THREADS=2 cargo bench -p tapegrad-tensor --bench elementwise

Prints one line per op: name and median microseconds.
"""
import os
import sys
import time

import torch

torch.set_num_threads(int(os.environ.get("PEERS_THREADS", "2")))


def median_us(f, warm=0.3, blocks=7, block=0.2):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < warm:
        f()
    t1, n = time.perf_counter(), 0
    while time.perf_counter() - t1 < 0.05:
        f()
        n += 1
    iters = max(1, int(block / ((time.perf_counter() - t1) / n)))
    out = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(iters):
            f()
        out.append((time.perf_counter() - t) / iters)
    return sorted(out)[len(out) // 2] * 1e6


g = torch.Generator().manual_seed(0)
a = torch.rand(1024, 1024, generator=g) * 6 - 3
b = torch.rand(1024, 1024, generator=g) * 6 - 3
row = torch.rand(1024, generator=g)
s = torch.tensor(2.0)
at = a.t()
mask = a > b
a_abs = a.abs()
a_pos = a_abs + 1e-3
ops = {
    "unary/tanh": lambda: torch.tanh(a),
    "unary/exp": lambda: torch.exp(a),
    "unary/ln": lambda: torch.log(a_pos),
    "unary/sigmoid": lambda: torch.sigmoid(a),
    "unary/relu": lambda: torch.relu(a),
    "unary/mul_scalar": lambda: a * 2.0,
    "unary/neg": lambda: -a,
    "unary/abs": lambda: a.abs(),
    "unary/sin": lambda: a.sin(),
    "unary/cos": lambda: a.cos(),
    "unary/softplus": lambda: torch.nn.functional.softplus(a),
    "unary/clamp": lambda: a.clamp(-1.0, 1.0),
    "unary/powf_2": lambda: a**2,
    "unary/powf_1_5": lambda: a_abs**1.5,
    "binary/add": lambda: a + b,
    "binary/mul": lambda: a * b,
    "binary/add_row_broadcast": lambda: a + row,
    "binary/mul_0d": lambda: a * s,
    "binary/sub": lambda: a - b,
    "binary/div": lambda: a / b,
    "binary/pow": lambda: a_pos**b,
    "binary/maximum": lambda: torch.maximum(a, b),
    "binary/gt_mask": lambda: a > b,
    "binary/where": lambda: torch.where(mask, a, b),
    "binary/tanh_a_mul_b_add_c": lambda: torch.tanh(a * b + a),
    "reduce/sum_all": lambda: a.sum(),
    "reduce/max_all": lambda: a.max(),
    "reduce/sum_axis0": lambda: a.sum(0),
    "reduce/sum_axis1": lambda: a.sum(1),
    "reduce/sum_all_transposed": lambda: at.sum(),
    "reduce/softmax_axis1": lambda: torch.softmax(a, 1),
    "reduce/log_softmax_axis1": lambda: torch.log_softmax(a, 1),
    "reduce/logsumexp_axis1": lambda: torch.logsumexp(a, 1),
    "reduce/mean_axis0": lambda: a.mean(0),
    "reduce/max_axis1": lambda: a.amax(1),
    "reduce/argmax_axis1": lambda: a.argmax(1),
    "reduce/var_axis1": lambda: a.var(1),
}
for name, f in ops.items():
    print(f"{name:32s} {median_us(f):10.1f} us", flush=True)
sys.exit(0)
