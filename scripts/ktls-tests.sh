#!/usr/bin/env bash
# Runs the kernel-TLS tests (suite "KernelTLS") on a kernel that has KTLS: the test binary is built
# here and run inside ../shared/ktls-vm, a small QEMU VM with Debian's kernel and tls.ko loaded,
# which sees this machine's file system read-only and this folder read-write.
set -euo pipefail
cd "$(dirname "$0")/.."
vm=${KTLS_VM_SCRIPT:-$(cd .. && pwd)/shared/ktls-vm}
if [ ! -x "$vm" ]; then
    echo "ktls-tests: $vm not found; it comes with the build machines' shared/ folder" >&2
    exit 1
fi
bash scripts/install-deps.sh
swift build --build-tests
bin="$(swift build --show-bin-path)/FastStreamsPackageTests.xctest"
# The build machines' KVM cannot boot the guest: skip the 20 s probe and emulate.
export KTLS_VM_ACCEL=${KTLS_VM_ACCEL:-tcg}
"$vm" --timeout 1200 --mem 2G -- "$PWD" "$bin" --testing-library swift-testing --filter KernelTLS
