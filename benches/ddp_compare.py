#!/usr/bin/env python3
"""Alternate the ddp_step workload of ours (`examples/ddp_step.rs` under
`mpirun`) and PyTorch's DistributedDataParallel over gloo
(`benches/ddp_torch.py`), and print the ratios of the median step times,
of the steps without the all-reduce, and of the communication the overlap
does not hide (step minus step without all-reduce), with their spread.

    cargo build --release --features mpi --example ddp_step
    TORCH_PYTHON=/path/to/venv/bin/python python3 benches/ddp_compare.py [--pairs 3] [--world 2] [--bucket-mb 25]

Both sides run WORLD processes of one thread each on this machine, 128 rows
per process (the workload of ../shared/bench/README.md). Ours needs Open MPI
(`apt-get install openmpi-bin libopenmpi-dev`); run on an otherwise quiet
machine, since two single-thread processes already fill two cores.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def last_json(output):
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"no JSON line in:\n{output[-2000:]}")


def run_ours(world, bucket_mb):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, "release", "examples", "ddp_step")
    command = ["mpirun", "-n", str(world), "--bind-to", "none", "--oversubscribe"]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    out = subprocess.run([*command, binary, str(bucket_mb)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"ddp_step failed:\n{out.stderr[-3000:]}")
    return last_json(out.stdout)


def run_torch(python, world):
    script = os.path.join(ROOT, "benches", "ddp_torch.py")
    out = subprocess.run([python, script, str(world)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"ddp_torch.py failed:\n{out.stderr[-3000:]}")
    return last_json(out.stdout)


def summary(values):
    return f"{statistics.median(values):.3g} [{min(values):.3g}–{max(values):.3g}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--bucket-mb", type=float, default=25)
    args = parser.parse_args()
    python = os.environ.get("TORCH_PYTHON", "python3")

    rows = []
    for pair in range(args.pairs):
        ours = run_ours(args.world, args.bucket_mb)
        theirs = run_torch(python, args.world)
        rows.append((ours, theirs))
        print(f"pair {pair + 1}: ours {ours['median']} ms ({ours['no_sync_median']} without all-reduce), "
              f"torch {theirs['median']} ms ({theirs['no_sync_median']}); "
              f"all-reduce of all gradients {ours['allreduce_ms']} ms = {ours['allreduce_gb_per_s']} GB/s",
              flush=True)

    def exposed(run):
        return run["median"] - run["no_sync_median"]

    print(f"step time, ms: ours {summary([o['median'] for o, _ in rows])}, "
          f"torch {summary([t['median'] for _, t in rows])}, "
          f"ratio {summary([o['median'] / t['median'] for o, t in rows])}")
    print(f"without all-reduce, ms: ours {summary([o['no_sync_median'] for o, _ in rows])}, "
          f"torch {summary([t['no_sync_median'] for _, t in rows])}")
    print(f"communication not hidden, ms: ours {summary([exposed(o) for o, _ in rows])}, "
          f"torch {summary([exposed(t) for _, t in rows])}")


if __name__ == "__main__":
    main()
