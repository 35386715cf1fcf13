#!/bin/bash
# Counts Swift runtime calls per round trip of FastStreams' one-loop ping-pong, with uprobes:
# executor hops (swift_task_switch), task-allocator frames, current-task lookups, enqueues,
# exclusivity checks, swift_once and retain/release; with --hops, also which resume function
# each hop goes to.
#   Benchmarks/Tools/runtime-calls.sh [--hops] [BENCH_BINARY] [CELL] [TRANSPORT]
# Needs root (perf probe) and linux-perf. Each side of a ping-pong waits once per round trip, so
# swift_continuation_init counts 2 per round trip; every figure is divided by half of it.
set -euo pipefail
hops=0; if [ "${1:-}" = "--hops" ]; then hops=1; shift; fi
bin=$(readlink -f "${1:-$(dirname "$0")/../.build/release/FastStreamsBench}")
cell=${2:-pingpong-256-one}; transport=${3:-tcp}
lib=$(dirname "$(ldd "$bin" | awk '/libswift_Concurrency.so/ {print $3}')")
concurrency=(swift_task_switch swift_task_alloc swift_task_getCurrent swift_task_enqueue
             swift_continuation_init swift_task_addCancellationHandler)
core=(swift_beginAccess swift_once swift_retain swift_release)
events=()
for f in "${concurrency[@]}"; do
    perf probe -q -x "$lib/libswift_Concurrency.so" "$f" 2>/dev/null || true
    events+=("probe_libswift_Concurrency:$f")
done
for f in "${core[@]}"; do
    perf probe -q -x "$lib/libswiftCore.so" "$f" 2>/dev/null || true
    events+=("probe_libswiftCore:$f")
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
run=("$bin" run --contenders faststreams --cells "$cell" --transports "$transport" --seconds 2
     --warmup 0 --repetitions 1 --output "$work/out")
perf stat -x, -e "$(IFS=,; echo "${events[*]}")" -o "$work/stat" -- "${run[@]}" > "$work/log" 2>&1
awk -F, '$3 ~ /probe_/ {n[$3]=$1} END {
    rt = n["probe_libswift_Concurrency:swift_continuation_init"] / 2
    printf "%d round trips (incl. warm-up)\n", rt
    for (k in n) { name = k; sub(/.*:/, "", name); printf "  %-36s %6.2f per round trip\n", name, n[k] / rt }
}' "$work/stat"
[ $hops = 1 ] || exit 0
# Which partial function each hop resumes: swift_task_switch's first argument (the resume
# function), symbolized against the binary's and the runtime's load addresses.
perf probe -q -d probe_libswift_Concurrency:swift_task_switch
perf probe -q -x "$lib/libswift_Concurrency.so" 'swift_task_switch resume=%di:x64'
perf record -q -e probe_libswift_Concurrency:swift_task_switch -o "$work/hops.data" -- "${run[@]}" > "$work/log" 2>&1
perf script -i "$work/hops.data" --show-mmap-events 2>/dev/null > "$work/script"
base=$(grep -m1 "r-xp $bin" "$work/script" | sed -E 's/.*\[(0x[0-9a-f]+)\(.*/\1/')
cbase=$(grep -m1 'r-xp .*libswift_Concurrency.so' "$work/script" | sed -E 's/.*\[(0x[0-9a-f]+)\(.*/\1/')
objdump -d --no-show-raw-insn "$bin" | grep -E '^[0-9a-f]+ <' > "$work/symbols"
echo "hops by resume function (count over the run):"
grep -o 'resume=0x[0-9a-f]*' "$work/script" | sort | uniq -c | sort -rn | awk '$1 > 100' |
while read -r n address; do
    address=${address#resume=}
    name=$(grep -m1 "^0*$(printf '%x' $((address - base))) <" "$work/symbols" | sed -E 's/.*<(.*)>:/\1/' || true)
    [ -n "$name" ] || name=$(addr2line -f -e "$lib/libswift_Concurrency.so" "$(printf '0x%x' $((address - cbase)))" | head -1)
    printf "  %8d  %s\n" "$n" "$(echo "$name" | swift demangle --simplified | cut -c1-140)"
done
perf probe -q -d probe_libswift_Concurrency:swift_task_switch
