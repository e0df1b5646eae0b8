#!/usr/bin/env bash
# Builds a fuzz target with libFuzzer's coverage instrumentation on the
# stable toolchain and runs it for a given time.
#
#   bash fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
#   bash fuzz/run.sh shapes 600 -fork=1 -ignore_crashes=1   # keep going after crashes
#   bash fuzz/run.sh csv 0 artifacts/csv/crash-...           # replay one input
#   bash fuzz/run.sh --build-only                            # build every target
#
# Targets: checkpoint, csv, shapes. The corpus grows in fuzz/corpus/TARGET
# (seeded from fuzz/seeds/TARGET; FUZZ_CORPUS=DIR puts it elsewhere, as CI
# does to start empty); crashing inputs go to fuzz/artifacts/TARGET/.
# An input that runs longer than 10 s counts as a crash (a hang); pass
# -timeout=N to change that. Prints how many inputs ran; exits non-zero if
# the target crashed.
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(checkpoint csv shapes)
HOST=$(rustc -vV | sed -n 's/^host: //p')
# Stable rustc flags for libFuzzer's SanitizerCoverage (the flags cargo-fuzz
# passes), with overflow checks and debug assertions on: what `cargo fuzz
# build --sanitizer none` does, without needing cargo-fuzz or nightly.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
# One thread for the kernels: the fuzzer's inputs are small, and the
# machine's other core stays free.
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

if ! command -v c++ >/dev/null; then
    echo "run.sh: libfuzzer-sys builds libFuzzer from C++: install g++ (apt-get install g++)" >&2
    exit 2
fi

build() {
    # --target keeps the instrumentation off build scripts and proc macros.
    cargo build --release --target "$HOST" "$@"
}

if [[ ${1:-} == --build-only ]]; then
    build --bins
    exit 0
fi

if [[ $# -lt 2 ]]; then
    echo "usage: bash fuzz/run.sh TARGET SECONDS [libFuzzer flags...] (targets: ${TARGETS[*]})" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
if [[ ! " ${TARGETS[*]} " == *" $target "* ]]; then
    echo "run.sh: unknown target $target (targets: ${TARGETS[*]})" >&2
    exit 2
fi

build --bin "$target"
bin="target/$HOST/release/$target"
corpus=${FUZZ_CORPUS:-corpus/$target}
mkdir -p "$corpus" "artifacts/$target"
dict=()
[[ -f dicts/$target.dict ]] && dict=("-dict=dicts/$target.dict")

# A file argument means "replay these inputs", not "fuzz".
if [[ $# -gt 0 && -f ${1} ]]; then
    exec "$bin" "$@"
fi

log=$(mktemp)
stamp=$(mktemp)
trap 'rm -f "$log" "$stamp"' EXIT
start=$(date +%s)
status=0
"$bin" "$corpus" "seeds/$target" "${dict[@]}" \
    -max_total_time="$seconds" -artifact_prefix="artifacts/$target/" \
    -print_final_stats=1 -timeout=10 "$@" 2>&1 | tee "$log" \
    | grep --line-buffered -v -E '^(#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|"|###### )' || status=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - start))

# Inputs run: the final stats, or in fork mode the last progress line.
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
if [[ -z $runs ]]; then
    runs=$(grep -o -E '^#[0-9]+' "$log" | tail -1 | tr -d '#')
fi
crashes=$(find "artifacts/$target" -type f -newer "$stamp" | wc -l)
echo "== fuzz $target: ${runs:-0} inputs in ${elapsed} s, exit status $status, $crashes new artifact(s) in fuzz/artifacts/$target/"
exit "$status"
