#!/usr/bin/env bash
# Groups a target's crashing inputs by where they panicked and prints the
# smallest input of each group with the panic message and the first frames
# inside the workspace's crates.
#
#   bash fuzz/triage.sh TARGET        # after bash fuzz/run.sh TARGET ... has built it
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: bash fuzz/triage.sh TARGET}
HOST=$(rustc -vV | sed -n 's/^host: //p')
bin="target/$HOST/release/$target"
[[ -x $bin ]] || { echo "build it first: bash fuzz/run.sh --build-only" >&2; exit 2; }
export RUST_BACKTRACE=1 RAYON_NUM_THREADS=1

declare -A best size msg
for f in artifacts/"$target"/*; do
    [[ -f $f ]] || continue
    out=$("$bin" -timeout=10 "$f" 2>&1 || true)
    where=$( (grep -m1 -o 'panicked at [^ ]*' <<<"$out" || true) | sed 's/panicked at //; s#.*/crates/#crates/#')
    if [[ $where == /rustc/* ]]; then
        # Panicked in the standard library: group by the first workspace frame.
        where=$( (grep -m1 -o -E '/crates/[^ ]+' <<<"$out" || true) | sed 's#^/##')
    fi
    if [[ -z $where ]]; then
        # An abort without a panic (a failed allocation, say): its first line.
        where=$(grep -m1 -E 'memory allocation|fatal runtime|ERROR: libFuzzer' <<<"$out" || echo "no crash on replay")
    fi
    n=$(stat -c %s "$f")
    if [[ -z ${best[$where]:-} || $n -lt ${size[$where]} ]]; then
        best[$where]=$f
        size[$where]=$n
        msg[$where]=$( (grep -A1 -m1 'panicked at' <<<"$out" || true) | tail -1)
    fi
done
for where in "${!best[@]}"; do
    f=${best[$where]}
    echo "== $where: ${msg[$where]}"
    echo "   smallest input: $f (${size[$where]} bytes), base64 $(base64 -w0 "$f")"
    if [[ $target == shapes ]]; then
        # The decoded op list (libfuzzer-sys writes it, pretty-printed).
        dbg=$(mktemp)
        RUST_LIBFUZZER_DEBUG_PATH=$dbg "$bin" "$f" >/dev/null 2>&1 || true
        echo "   decoded: $(tr -s ' \n' ' ' <"$dbg" | sed 's/, }/ }/g; s/, ]/]/g; s/,)/)/g; s/( /(/g; s/\[ /[/g')"
        rm -f "$dbg"
    fi
    # Frames in the workspace's crates: "name  at crates/...".
    "$bin" -timeout=10 "$f" 2>&1 | awk '/^ +[0-9]+: /{fn=$2} /^ +at .*\/crates\//{sub(/.*\/crates\//,"crates/"); print "   " fn "  at " $NF}' | head -5 || true
done
