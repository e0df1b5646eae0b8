#!/usr/bin/env python3
"""Alternate tapegrad's and PyTorch's runs of the reference workloads and
print, per workload, the ratio of medians (ours / PyTorch's time) with its
spread over the pairs of runs, so that every speed claim in the README can be
re-checked with one command.

    python3 benches/compare.py                       # every workload, 3 pairs
    python3 benches/compare.py --pairs 5 matmul mlp_step
    TORCH_PYTHON=/path/to/venv/bin/python python3 benches/compare.py cnn_step

Each pair runs `cargo bench -p tapegrad-benches --bench workloads -- FILTER`
and then `benches/torch_workloads.py FILTER`, both with the same thread count
(`--threads`, default 2: RAYON_NUM_THREADS for ours, PEERS_THREADS for
PyTorch's). A filter is a substring of the workload ids; the two sides print
the same ids. Ratios below 1 mean tapegrad is faster.

The PyTorch side needs an interpreter with torch: TORCH_PYTHON, else
`python3` if it imports torch. Without one the script prints our medians
alone and says so. The machine should be otherwise quiet: a busy machine
hurts PyTorch's OpenMP threads far more than ours, and the ratios then mean
nothing. The script prints the load average before and after.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNITS = {"ps": 1e-12, "ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
# criterion: "<id>  time:   [low median high]", the id possibly on the line before.
CRITERION_TIME = re.compile(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")
# torch_workloads.py: "<id>  time:   <median> <unit>  (min ..., max ...)".
TORCH_LINE = re.compile(r"^(\S+)\s+time:\s+(\S+) (\S+)\s+\(min")


def seconds(value, unit):
    return float(value) * UNITS[unit]


def parse_criterion(output):
    """{id: median seconds} from criterion's terminal output."""
    medians, last_id = {}, None
    for line in output.splitlines():
        if line and not line[0].isspace() and not line.startswith(("Benchmarking", "Found", "Gnuplot")):
            last_id = line.split()[0]
        match = CRITERION_TIME.search(line)
        if match and last_id:
            medians[last_id] = seconds(*match.groups())
    return medians


def parse_torch(output):
    medians = {}
    for line in output.splitlines():
        match = TORCH_LINE.match(line)
        if match:
            medians[match.group(1)] = seconds(match.group(2), match.group(3))
    return medians


def torch_python():
    candidates = [os.environ.get("TORCH_PYTHON"), "python3"]
    for python in filter(None, candidates):
        probe = subprocess.run([python, "-c", "import torch"], capture_output=True)
        if probe.returncode == 0:
            return python
    return None


def run_ours(filters, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    regex = "|".join(re.escape(f) for f in filters)
    command = ["cargo", "bench", "-q", "-p", "tapegrad-benches", "--bench", "workloads", "--"]
    if regex:
        command.append(regex)
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"cargo bench failed:\n{out.stderr[-3000:]}")
    return parse_criterion(out.stdout)


def run_torch(python, filters, threads):
    env = dict(os.environ, PEERS_THREADS=str(threads))
    script = os.path.join(ROOT, "benches", "torch_workloads.py")
    out = subprocess.run([python, script, *filters], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"torch_workloads.py failed:\n{out.stderr[-3000:]}")
    return parse_torch(out.stdout)


def fmt_time(s):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e12:.3g} ps"


def fmt_runs(times):
    """The median of the runs' medians and the spread (max − min) / median."""
    mid = statistics.median(times)
    return f"{fmt_time(mid)} [±{(max(times) - min(times)) / mid * 50:.0f}%]"


def load_average():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("filters", nargs="*", help="substrings of workload ids (default: all)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="threads on both sides (default 2)")
    args = parser.parse_args()

    python = torch_python()
    if python is None:
        print("PyTorch not found (set TORCH_PYTHON to a python with torch): ours alone.")
    print(f"load average before: {load_average()}", flush=True)
    ours, theirs = [], []
    for pair in range(args.pairs):
        ours.append(run_ours(args.filters, args.threads))
        if python:
            theirs.append(run_torch(python, args.filters, args.threads))
        print(f"pair {pair + 1}/{args.pairs} done", file=sys.stderr, flush=True)
    print(f"load average after: {load_average()}")

    ids = [i for i in ours[0] if not args.filters or any(f in i for f in args.filters)]
    width = max((len(i) for i in ids), default=10)
    print(f"{'workload':{width}s}  {'ours: median [spread]':>24s}  {'torch: median [spread]':>24s}"
          "  ratio per pair → median [min–max]")
    for wid in ids:
        our_times = [run[wid] for run in ours if wid in run]
        their_times = [run[wid] for run in theirs if wid in run]
        line = f"{wid:{width}s}  {fmt_runs(our_times):>24s}"
        if len(their_times) == len(our_times) and their_times:
            ratios = [a / b for a, b in zip(our_times, their_times)]
            pairs = " ".join(f"{r:.2f}" for r in ratios)
            line += (f"  {fmt_runs(their_times):>24s}  {pairs} → "
                     f"{statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}]")
        print(line)
    # Every pair's two times, so a ratio near a threshold can be checked.
    print()
    print("per pair, ours / torch:")
    for wid in ids:
        our_times = [run[wid] for run in ours if wid in run]
        their_times = [run[wid] for run in theirs if wid in run]
        cells = [f"{fmt_time(a)} / {fmt_time(b)} = {a / b:.3f}"
                 for a, b in zip(our_times, their_times)]
        print(f"  {wid}: " + ("; ".join(cells) if cells else ", ".join(map(fmt_time, our_times))))


if __name__ == "__main__":
    main()
