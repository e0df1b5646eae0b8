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

Where the host has put the two threads matters as much: on shared virtual
machines the two vCPUs sometimes share a last-level cache and sometimes do
not, and two-thread steps that pass data between threads run up to 1.5×
slower in the second placement (PyTorch's too). Before and after each side
of each pair the script measures the cores' round-trip latency
(`benches/core_latency.rs`) and prints it with the pair's times, so that a
ratio from two runs in different placements can be told apart.
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


# A round trip above this (ns) means the two cores do not share a cache:
# ~100 ns when they do, 350-400 ns when not, on the machines measured.
FAR_CORES_NS = 250


def core_latency_binary():
    """Builds `benches/core_latency.rs` and returns its path (None if the
    build fails: the pairs then run without placement figures)."""
    build = subprocess.run(
        ["cargo", "build", "-q", "--release", "-p", "tapegrad-benches", "--example", "core_latency"],
        cwd=ROOT, capture_output=True, text=True)
    if build.returncode != 0:
        print(f"core_latency did not build; no placement figures:\n{build.stderr[-1000:]}")
        return None
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", "core_latency")


def round_trip_ns(binary):
    """The cores' round-trip latency right now, in ns (see core_latency.rs)."""
    if binary is None:
        return None
    out = subprocess.run([binary], capture_output=True, text=True)
    match = re.search(r"round_trip_ns (\d+)", out.stdout)
    return int(match.group(1)) if match else None


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


def is_far(ns):
    """Whether a probe's round trip (None: no probe) says far-apart cores."""
    return ns is not None and ns > FAR_CORES_NS


def placement_mark(placement):
    """' (far cores: ours, torch)' naming the sides that saw far-apart
    cores at either end of their run ('' when every figure was near or
    missing)."""
    before, between, after = placement
    sides = [name for name, probes in (("ours", (before, between)), ("torch", (between, after)))
             if any(map(is_far, probes))]
    return f" (far cores: {', '.join(sides)})" if sides else ""


def same_placement(placement):
    """'near' or 'far' when every probe of the pair says so, else None."""
    if None in placement:
        return None
    far = [is_far(n) for n in placement]
    return "far" if all(far) else "near" if not any(far) else None


def pairs_with(wid, ours, theirs, placements):
    """(our time, torch's time, placement) of every pair that ran `wid` on
    both sides, kept aligned with its placement probes."""
    return [(a[wid], b[wid], p) for a, b, p in zip(ours, theirs, placements)
            if wid in a and wid in b]


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
    latency = core_latency_binary()
    ours, theirs, placements = [], [], []
    for pair in range(args.pairs):
        before = round_trip_ns(latency)
        ours.append(run_ours(args.filters, args.threads))
        between = round_trip_ns(latency)
        if python:
            theirs.append(run_torch(python, args.filters, args.threads))
        after = round_trip_ns(latency)
        placements.append((before, between, after))
        print(f"pair {pair + 1}/{args.pairs} done", file=sys.stderr, flush=True)
    print(f"load average after: {load_average()}")
    if latency:
        print("cores' round trip (ns) before ours, between, after torch: "
              + "; ".join(f"pair {i + 1}: {b} {m} {a}" for i, (b, m, a) in enumerate(placements)))
        print(f"(about 100 ns: the two threads share a last-level cache; {FAR_CORES_NS} ns or more:"
              " they do not, and two-thread steps run slower)")

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
        cells = [f"{fmt_time(a)} / {fmt_time(b)} = {a / b:.3f}{placement_mark(p)}"
                 for a, b, p in pairs_with(wid, ours, theirs, placements)]
        our_times = [run[wid] for run in ours if wid in run]
        print(f"  {wid}: " + ("; ".join(cells) if cells else ", ".join(map(fmt_time, our_times))))
    # The like-for-like subset: both sides ran with the cores placed alike.
    if latency and theirs:
        print()
        print("pairs whose three placement probes agree (all near or all far), ours / torch:")
        for wid in ids:
            alike = [f"{a / b:.3f} ({same_placement(p)})"
                     for a, b, p in pairs_with(wid, ours, theirs, placements) if same_placement(p)]
            print(f"  {wid}: {', '.join(alike) or 'none'}")

if __name__ == "__main__":
    main()
