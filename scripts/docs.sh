#!/usr/bin/env bash
# Builds the DocC documentation of FastStreams, FastStreamsTLS and FastStreamsNIOInterop and fails
# on any DocC warning (an unresolved ``link``, a parameter documented that does not exist or one
# left undocumented...) and on any public symbol without a doc comment. Prints how long it took.
#
#   scripts/docs.sh        archives in .build/plugins/Swift-DocC/outputs/<Target>.doccarchive
#
# The swift-docc-plugin dependency exists only while FASTSTREAMS_DOCS is set (see Package.swift),
# so ordinary builds never fetch it; docc itself comes with the Swift toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$(date +%s)
# Resolving with the plugin pins it in Package.resolved; put the file back as it was afterwards,
# so that later builds without FASTSTREAMS_DOCS do not check the plugin out.
saved_resolved=$(mktemp)
if [ -f Package.resolved ]; then cp Package.resolved "$saved_resolved"; else rm -f "$saved_resolved"; fi
restore_resolved() {
    if [ -f "$saved_resolved" ]; then mv "$saved_resolved" Package.resolved; else rm -f Package.resolved; fi
}
trap restore_resolved EXIT
export FASTSTREAMS_DOCS=1
targets=(FastStreams FastStreamsTLS FastStreamsNIOInterop)
log=.build/docs.log
mkdir -p .build
args=()
for target in "${targets[@]}"; do args+=(--target "$target"); done

# Symbol graphs of an earlier run must not stand in for this one's in the coverage check.
rm -rf .build/*/extracted-symbols
status=0
swift package --disable-sandbox generate-documentation "${args[@]}" \
    --warnings-as-errors --experimental-documentation-coverage --coverage-summary-level brief \
    >"$log" 2>&1 || status=$?
# The build and docc both report with "warning:" / "error:"; any of them fails the run.
if [ "$status" -ne 0 ] || grep -qE "(warning|error):" "$log"; then
    grep -E -A4 "(warning|error):" "$log" >&2 || tail -40 "$log" >&2
    echo "docs: FAILED (full log: $log)" >&2
    exit 1
fi

# Every public symbol must carry a doc comment: docc's coverage lists the ones without.
python3 scripts/docs-coverage.py .build/*/extracted-symbols "${targets[@]}"

echo "docs: ${targets[*]} built with no warnings in $(( $(date +%s) - start )) s"
echo "docs: archives in .build/plugins/Swift-DocC/outputs/"
