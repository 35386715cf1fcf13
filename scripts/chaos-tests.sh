#!/usr/bin/env bash
# Runs the network-chaos tests (suite "Chaos") inside ../shared/ktls-vm, whose kernel has sch_netem
# and kernel TLS (this machine's kernel has neither): one netem profile on the guest's loopback at a
# time, the Chaos suite once per profile with FASTSTREAMS_NETEM naming it. Each test prints what it
# checked (bytes, messages, queue peaks, timeouts) under which settings.
set -euo pipefail
cd "$(dirname "$0")/.."

# Separate profiles, one kind of trouble each (netem on lo acts on every packet, both directions).
profiles=(
    "loss 3%"
    "delay 5ms 2ms"
    "delay 2ms reorder 25% 50%"
    "duplicate 5%"
)

if [ "${1:-}" = "--in-guest" ]; then
    bin=$2
    summary=()
    status=0
    for profile in "${profiles[@]}"; do
        tc qdisc del dev lo root 2>/dev/null || true
        # shellcheck disable=SC2086 # the profile is a list of tc words
        tc qdisc add dev lo root netem $profile
        echo "=== netem on lo: $(tc qdisc show dev lo)"
        # Timeouts alone first (no transfer loads the loops their timers run on), then transfers.
        for suite in ChaosTimeouts ChaosTransfers; do
            if FASTSTREAMS_NETEM="$profile" "$bin" --testing-library swift-testing --filter "$suite"; then
                summary+=("passed: $suite, netem $profile")
            else
                summary+=("FAILED: $suite, netem $profile")
                status=1
            fi
        done
        tc qdisc del dev lo root
    done
    echo "=== chaos summary"
    printf '    %s\n' "${summary[@]}"
    exit $status
fi

vm=${KTLS_VM_SCRIPT:-$(cd .. && pwd)/shared/ktls-vm}
if [ ! -x "$vm" ]; then
    echo "chaos-tests: $vm not found; it comes with the build machines' shared/ folder" >&2
    exit 1
fi
bash scripts/install-deps.sh
# tc (iproute2) runs in the guest, which sees this machine's file system.
if ! command -v tc >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi
swift build --build-tests
bin="$(swift build --show-bin-path)/FastStreamsPackageTests.xctest"
# The build machines' KVM cannot boot the guest: skip the 20 s probe and emulate.
export KTLS_VM_ACCEL=${KTLS_VM_ACCEL:-tcg}
"$vm" --timeout 2400 --mem 2G -- "$PWD" bash scripts/chaos-tests.sh --in-guest "$bin"
