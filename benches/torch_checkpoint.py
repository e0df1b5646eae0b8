"""PyTorch side of examples/checkpoint_memory.rs: training steps of a deep
MLP (32 Linear(1024, 1024) + ReLU layers, batch 256, float32, MSE loss,
SGD) without checkpointing and with `checkpoint_sequential` cutting the 64
modules into 8 segments of 4 layers (the last segment is not checkpointed,
as in tapegrad's `Sequential::checkpointed`). One mode per process:

    PEERS_THREADS=2 python benches/torch_checkpoint.py plain
    PEERS_THREADS=2 python benches/torch_checkpoint.py every4

Prints the median step time over the steps after the first, the peak
resident memory (VmHWM) and the peak minus the resident memory once the
model and data exist, in the Rust example's format.
"""
import os
import sys
import time

import torch
from torch.utils.checkpoint import checkpoint_sequential

THREADS = int(os.environ.get("PEERS_THREADS", "2"))
torch.set_num_threads(THREADS)
LAYERS, WIDTH, BATCH = 32, 1024, 256


def resident():
    """(VmRSS, VmHWM) in bytes, from /proc/self/status."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "plain"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    if mode not in ("plain", "every4"):
        sys.exit(f"unknown mode {mode!r}: plain or every4")
    torch.manual_seed(0)
    layers = []
    for _ in range(LAYERS):
        layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    x = torch.randn(BATCH, WIDTH)
    y = torch.randn(BATCH, WIDTH)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    base, _ = resident()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if mode == "plain":
            out = model(x)
        else:
            out = checkpoint_sequential(model, 8, x, use_reentrant=False)
        loss = torch.nn.functional.mse_loss(out, y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    later = sorted(times[1:] or times)
    med = later[len(later) // 2]
    print(
        f"{mode}: {LAYERS}x{WIDTH} MLP, batch {BATCH} (PyTorch {torch.__version__}): "
        f"median step {med * 1e3:.1f} ms (min {later[0] * 1e3:.1f}, max {later[-1] * 1e3:.1f}, "
        f"{len(later)} steps after the first)"
    )
    _, peak = resident()
    mib = 1024 * 1024
    print(
        f"{mode}: peak resident {peak / mib:.1f} MiB, of which the steps {(peak - base) / mib:.1f} MiB "
        f"(resident before them {base / mib:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
