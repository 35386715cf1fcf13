#!/usr/bin/env bash
# Builds the libFuzzer harnesses (Fuzz/, with AddressSanitizer) and runs each for a bounded time.
#
#   scripts/fuzz.sh [seconds]     each target for `seconds` (default 60); CI runs this
#   scripts/fuzz.sh --replay      each target once over its corpus only (a quick regression run)
#
# Each target starts from its seed corpus Fuzz/Corpus/<target>/ (checked in: hand-made seeds and
# every input that ever crashed a harness) plus what earlier runs found in .build-fuzz/corpus/
# (not checked in). A crash, a failed check, a timeout or an out-of-memory stops that target;
# its input is saved as .build-fuzz/crashes/<target>-*, the script prints it and fails at the end.
# Add such an input to Fuzz/Corpus/<target>/ together with the fix and a test in
# Tests/FastStreamsTests, so every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# A failed check must not start the Swift runtime's backtracer: it reads raw stack memory, which
# AddressSanitizer reports (and can hang on) instead of the real failure.
export SWIFT_BACKTRACE=enable=no

mode=fuzz
seconds=60
case "${1:-}" in
    --replay) mode=replay ;;
    "") ;;
    *) seconds=$1 ;;
esac

targets=(FuzzInboundBuffer FuzzReader FuzzRequestHead FuzzTLSServer FuzzTLSRecords)
work=$PWD/.build-fuzz
mkdir -p "$work/crashes"
start=$(date +%s)
if ! swift build --package-path Fuzz --scratch-path "$work/build" --sanitize fuzzer --sanitize address >"$work/build.log" 2>&1; then
    grep -E "error" "$work/build.log" >&2 || tail -20 "$work/build.log" >&2
    exit 1
fi
bin=$(swift build --package-path Fuzz --scratch-path "$work/build" --sanitize fuzzer --sanitize address --show-bin-path)
for target in "${targets[@]}"; do
    [ -x "$bin/$target" ] || { echo "fuzz: $target was not built" >&2; exit 1; }
done
echo "fuzz: built in $(( $(date +%s) - start )) s"

# The harnesses that run connections and TLS engines leave frees to the event loop (sessions are
# released by the loop's idle sweep), which libFuzzer's per-input leak check would take for leaks
# and slows to a crawl: it stays on only for the pure InboundBuffer harness.
leaks() { [ "$1" = FuzzInboundBuffer ] && echo 1 || echo 0; }

failed=()
summary=()
for target in "${targets[@]}"; do
    seeds=Fuzz/Corpus/$target
    found=$work/corpus/$target
    mkdir -p "$found"
    log=$work/$target.log
    if [ "$mode" = replay ]; then
        args=(-runs=0 "$seeds")
    else
        args=(-max_total_time="$seconds" -max_len=4096 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 "$found" "$seeds")
    fi
    echo "fuzz: $target ${args[0]}"
    if "$bin/$target" -detect_leaks="$(leaks "$target")" -artifact_prefix="$work/crashes/$target-" "${args[@]}" >"$log" 2>&1; then
        runs=$(grep -oE "^Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1 || true)
        [ "$mode" = replay ] && runs="replayed $(grep -oE 'INITED.*corp: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?') inputs"
        summary+=("$target: ${runs:-see $log}")
    else
        failed+=("$target")
        summary+=("$target: FAILED (log: $log)")
        grep -E "fuzz check failed|ERROR: |SUMMARY: |Test unit written|Fatal error|==[0-9]+==" "$log" | head -20 >&2 || true
    fi
done
echo "fuzz: inputs executed per target:"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in $work/crashes/)" >&2
    exit 1
fi
echo "fuzz: no crash in $(( $(date +%s) - start )) s"
