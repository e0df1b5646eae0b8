"""PyTorch side of benches/workloads.rs: the same reference workloads
(../shared/bench/README.md), with the same sizes and ids, so the two can be
run one after the other and compared as ratios of medians.

    PEERS_THREADS=2 python benches/torch_workloads.py          # torch in a venv
    RAYON_NUM_THREADS=2 cargo bench --bench workloads
    python benches/torch_workloads.py matmul small_mlp         # ids containing a filter

Each benchmark warms up for at least 0.5 s, then times 7 blocks of about
0.3 s and prints the median time per iteration in criterion's units (and,
for matmul and scalar_tape, the throughput in criterion's elements per
second: 2n^3 for matmul, so Gelem/s is GFLOPS; 10,002 recorded ops for the
scalar tape). `memory` runs 200 mlp_step iterations in a fresh process and
prints its peak resident memory, the figure `examples/mlp_memory.rs` prints;
`memory/cnn_step` does the same for 200 cnn_step iterations
(`examples/cnn_memory.rs`).
"""
import math
import os
import subprocess
import sys
import time

import torch

THREADS = int(os.environ.get("PEERS_THREADS", "2"))
torch.set_num_threads(THREADS)

MATMUL_SIZES = (128, 512, 1024)
MLP_SIZES, MLP_BATCH = (784, 512, 512, 10), 128
SMALL_SIZES, SMALL_BATCHES = (2, 16, 16, 1), (32, 1)
LR = 0.01
TAPE_ITERS, TAPE_X0 = 3334, 0.5  # 3 recorded ops per iteration
EW_LEN = 1_000_000
MEM_STEPS = 200
CONV_SHAPE, CONV_OUT = (32, 3, 32, 32), 64
CNN_BATCH = 64


def tape_leaves():
    """The scalar-tape leaf values, from the same 64-bit LCG as the Rust
    bench: w in [0.5, 1.5), b in [-0.5, 0.5), drawn w, b, w, b, ..."""
    state = 0x2545F4914F6CDD1D
    ws, bs = [], []
    for _ in range(TAPE_ITERS):
        draws = []
        for _ in range(2):
            state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
            draws.append((state >> 40) / 2.0**24)
        ws.append(0.5 + draws[0])
        bs.append(draws[1] - 0.5)
    return ws, bs


def time_per_iter(step, warmup=0.5, blocks=7, block_s=0.3):
    """Median seconds per call of `step`, and the min and max over blocks."""
    start = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start < warmup:
        step()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    iters = max(1, math.ceil(block_s / per_call))
    times = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t) / iters)
    times.sort()
    return times[len(times) // 2], times[0], times[-1]


def short(v):
    """A number as criterion writes it: five significant digits below 10,
    then one fewer decimal per digit before the point."""
    for limit, decimals in ((10, 4), (100, 3), (1000, 2)):
        if v < limit:
            return f"{v:.{decimals}f}"
    return f"{v:.1f}"


def fmt_time(s):
    """Seconds in the unit criterion picks (ns, µs, ms or s)."""
    for unit, scale in (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3)):
        if s < scale * 1000:
            return f"{short(s / scale)} {unit}"
    return f"{short(s)} s"


def fmt_rate(per_s):
    """Elements per second with criterion's prefixes (Kelem/s, ...)."""
    for prefix, scale in (("", 1.0), ("K", 1e3), ("M", 1e6)):
        if per_s < scale * 1000:
            return f"{short(per_s / scale)} {prefix}elem/s"
    return f"{short(per_s / 1e9)} Gelem/s"


def report(name, step, elements=None):
    med, lo, hi = time_per_iter(step)
    line = f"{name:32s} time: {fmt_time(med):>11s}  (min {fmt_time(lo)}, max {fmt_time(hi)})"
    if elements:
        line += f"  thrpt: {fmt_rate(elements / med)}"
    print(line, flush=True)


def mlp_params(sizes):
    """[W0, b0, W1, b1, ...], W as [in, out], uniform in ±1/sqrt(fan_in)."""
    ps = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        k = 1.0 / math.sqrt(fan_in)
        ps.append(torch.empty(fan_in, fan_out).uniform_(-k, k).requires_grad_())
        ps.append(torch.empty(fan_out).uniform_(-k, k).requires_grad_())
    return ps


def mlp_step_fn(sizes, batch, act):
    """One training step: h·W + b per layer (act between), MSE loss, full
    backward, plain SGD p ← p − lr·grad on every parameter, grads cleared."""
    ps = mlp_params(sizes)
    x, y = torch.randn(batch, sizes[0]), torch.randn(batch, sizes[-1])
    layers = len(ps) // 2

    def step():
        h = x
        for i in range(layers):
            h = h @ ps[2 * i] + ps[2 * i + 1]
            if i + 1 < layers:
                h = act(h)
        (h - y).square().mean().backward()
        with torch.no_grad():
            for p in ps:
                p.sub_(p.grad, alpha=LR)
                p.grad = None

    return step


def bench_matmul():
    for n in MATMUL_SIZES:
        a, b = torch.randn(n, n), torch.randn(n, n)
        yield f"matmul/f32/{n}", (lambda a=a, b=b: a @ b), 2 * n**3


def bench_scalar_tape():
    wv, bv = tape_leaves()
    ws = [torch.tensor(v, requires_grad=True) for v in wv]
    bs = [torch.tensor(v, requires_grad=True) for v in bv]
    x0 = torch.tensor(TAPE_X0)

    def step():
        x = x0
        for w, b in zip(ws, bs):
            x = torch.tanh(x * w + b)
        x.backward()
        for leaf in ws + bs:
            leaf.grad = None

    yield f"scalar_tape/tanh_chain/{3 * TAPE_ITERS}", step, 3 * TAPE_ITERS


def bench_elementwise():
    a, b, c = (torch.randn(EW_LEN).requires_grad_() for _ in range(3))

    def step():
        torch.tanh(a * b + c).sum().backward()
        a.grad = b.grad = c.grad = None

    yield f"elementwise/tanh_fma/{EW_LEN}", step, None


def bench_mlp():
    sizes = "-".join(map(str, MLP_SIZES))
    yield f"mlp_step/{sizes}/{MLP_BATCH}", mlp_step_fn(MLP_SIZES, MLP_BATCH, torch.relu), None
    small = "-".join(map(str, SMALL_SIZES))
    for batch in SMALL_BATCHES:
        yield f"small_mlp_step/{small}/{batch}", mlp_step_fn(SMALL_SIZES, batch, torch.tanh), None


JAC_SIZES, JAC_BATCH = (2, 16, 16, 8), 256
PSG_SIZES, PSG_BATCH = (64, 256, 10), 128


def bench_transforms():
    """torch.func on the function-transform workloads of workloads.rs:
    per-sample Jacobians of the 2-16-16-8 tanh MLP's output with respect to
    its input (vmap(jacrev) and vmap(jacfwd)), and per-sample gradients of
    the digits MLP's cross-entropy (vmap(grad) over functional_call)."""
    from torch.func import functional_call, grad, jacfwd, jacrev, vmap

    ps = [p.detach() for p in mlp_params(JAC_SIZES)]
    layers = len(ps) // 2

    def mlp_one(x):
        h = x
        for i in range(layers):
            h = h @ ps[2 * i] + ps[2 * i + 1]
            if i + 1 < layers:
                h = torch.tanh(h)
        return h

    x = torch.randn(JAC_BATCH, JAC_SIZES[0])
    sizes = "-".join(map(str, JAC_SIZES))
    rev, fwd = vmap(jacrev(mlp_one)), vmap(jacfwd(mlp_one))
    yield f"jacobian/{sizes}/{JAC_BATCH}-reverse", lambda: rev(x), None
    yield f"jacobian/{sizes}/{JAC_BATCH}-forward", lambda: fwd(x), None

    model = torch.nn.Sequential(
        torch.nn.Linear(PSG_SIZES[0], PSG_SIZES[1]), torch.nn.ReLU(),
        torch.nn.Linear(PSG_SIZES[1], PSG_SIZES[2]))
    params = {k: v.detach() for k, v in model.named_parameters()}
    xb = torch.randn(PSG_BATCH, PSG_SIZES[0])
    yb = torch.tensor([(i * 7) % 10 for i in range(PSG_BATCH)])

    def loss_one(p, x, y):
        out = functional_call(model, p, (x.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, y.unsqueeze(0))

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))
    sizes = "-".join(map(str, PSG_SIZES))
    yield f"per_sample_grads/{sizes}/{PSG_BATCH}", lambda: per_sample(params, xb, yb), None


def bench_transformer():
    """transformer_step: bench_torch.Gpt from ../shared/bench (defined there and in
    its README), batch 16 of random windows, cross-entropy, AdamW(lr 3e-4)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "shared", "bench"))
    import bench_torch  # noqa: E402

    vocab, block, batch = 65, 64, 16
    m = bench_torch.Gpt()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4)
    idx = torch.randint(0, vocab, (batch, block + 1))
    x, y = idx[:, :-1], idx[:, 1:]
    F = torch.nn.functional

    def step():
        F.cross_entropy(m(x).reshape(-1, vocab), y.reshape(-1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    yield f"transformer_step/gpt-2x128/{batch}", step, None


def lenet():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def cnn_step_fn():
    """cnn_step: LeNet-style CNN, batch 64 of random 1x28x28 inputs and labels,
    cross-entropy, plain SGD, gradients cleared (as ../shared/bench/bench_torch.py)."""
    m = lenet()
    opt = torch.optim.SGD(m.parameters(), lr=LR)
    x = torch.randn(CNN_BATCH, 1, 28, 28)
    y = torch.randint(0, 10, (CNN_BATCH,))

    def step():
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def bench_conv():
    conv = torch.nn.Conv2d(CONV_SHAPE[1], CONV_OUT, 3, padding=1)
    x = torch.randn(*CONV_SHAPE, requires_grad=True)

    def conv_step():
        conv(x).sum().backward()
        x.grad = None
        conv.zero_grad(set_to_none=True)

    yield "conv2d/32x3x32x32-64k3", conv_step, None
    yield f"cnn_step/lenet-16-32/{CNN_BATCH}", cnn_step_fn(), None


LSTM_IN, LSTM_HIDDEN, LSTM_SEQ, LSTM_BATCH = 32, 128, 50, 32


def bench_lstm():
    """lstm_step: torch.nn.LSTM(32, 128, batch_first=True) over 50 steps of a
    batch of 32, the last step's h -> Linear(128, 1), MSE, SGD (lr 0.01);
    the definition of ../shared/bench/bench_torch.py."""
    lstm = torch.nn.LSTM(LSTM_IN, LSTM_HIDDEN, batch_first=True)
    head = torch.nn.Linear(LSTM_HIDDEN, 1)
    opt = torch.optim.SGD(list(lstm.parameters()) + list(head.parameters()), lr=LR)
    x = torch.randn(LSTM_BATCH, LSTM_SEQ, LSTM_IN)
    y = torch.randn(LSTM_BATCH, 1)

    def step():
        out, _ = lstm(x)
        torch.nn.functional.mse_loss(head(out[:, -1]), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    yield f"lstm_step/{LSTM_IN}-{LSTM_HIDDEN}x{LSTM_SEQ}/{LSTM_BATCH}", step, None


def peak_resident_mib():
    """This process's peak resident memory (VmHWM), as mlp_memory reports it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # ru_maxrss is in KiB on Linux

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(workload="mlp_step"):
    step = cnn_step_fn() if workload == "cnn_step" else mlp_step_fn(MLP_SIZES, MLP_BATCH, torch.relu)
    for _ in range(MEM_STEPS):
        step()
    print(f"{peak_resident_mib():.1f}")


def bench_memory(workload="mlp_step"):
    """200 mlp_step (or cnn_step) iterations in a fresh process (so nothing
    timed before counts), which prints its own peak."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", workload],
                         check=True, capture_output=True, text=True).stdout
    name = f"memory/{workload}/{MEM_STEPS}"
    print(f"{name:32s} peak resident memory: {float(out.split()[-1]):.1f} MiB", flush=True)


def main(filters):
    print(f"torch {torch.__version__}, torch.set_num_threads({THREADS}) -> "
          f"{torch.get_num_threads()} threads", flush=True)
    torch.manual_seed(0)

    def wanted(name):
        return not filters or any(f in name for f in filters)

    for group in (bench_matmul, bench_scalar_tape, bench_elementwise, bench_mlp,
                  bench_transforms, bench_transformer, bench_conv, bench_lstm):
        for name, step, elements in group():
            if wanted(name):
                report(name, step, elements)
    if wanted(f"memory/mlp_step/{MEM_STEPS}"):
        bench_memory()
    if wanted(f"memory/cnn_step/{MEM_STEPS}"):
        bench_memory("cnn_step")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-child"]:
        memory_child(*sys.argv[2:3])
    else:
        main(sys.argv[1:])
