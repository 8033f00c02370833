#!/bin/sh
# make demo: start a private vmmd, boot the demo guest, show its console,
# shut everything down cleanly. Usage: scripts/demo.sh [BUILD_DIR]
set -eu

build=${1:-build}
vmmd="$build/vmmd"
vmctl="$build/vmctl"
kernel="$build/guests/demo.elf"

if [ ! -c /dev/kvm ]; then
	echo "demo: /dev/kvm does not exist: this machine has no KVM (enable virtualization" >&2
	echo "      in the firmware or load kvm_intel/kvm_amd)" >&2
	exit 1
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "demo: no permission on /dev/kvm: run as root or join the 'kvm' group" >&2
	exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/vmmd-demo-XXXXXX")
sock="$dir/vmmd.sock"
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "==> starting a private vmmd on $sock"
mkfifo "$dir/ready"
"$vmmd" --socket "$sock" --state-dir "$dir/state" --log-level warning \
	--ready-fd 3 3>"$dir/ready" &
pid=$!
read -r ready <"$dir/ready" || true
if [ "${ready:-}" != "READY" ]; then
	echo "demo: vmmd did not start" >&2
	exit 1
fi

echo "==> vmctl run $kernel   (long mode, real work in ring 3)"
echo
status=0
"$vmctl" --socket "$sock" run "$kernel" --memory 128 --name demo || status=$?
echo
if [ "$status" -ne 0 ]; then
	echo "demo: the guest ended with status $status" >&2
	exit "$status"
fi

echo "==> stopping vmmd"
kill -TERM "$pid"
wait "$pid"
pid=""
echo "==> done: vmmd exited cleanly. Next: README.md, docs/architecture.md, 'make check'."
