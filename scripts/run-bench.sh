#!/bin/sh
# make bench: runs every benchmark under bench/ against the given build
# directory. BENCH=name runs one. Results: BUILD/bench/*.json.
set -eu
build=${1:-build}
only=${BENCH:-}

run() {
	name=$1
	shift
	if [ -n "$only" ] && [ "$only" != "$name" ]; then
		return 0
	fi
	echo "==> bench/$name"
	"$@"
	echo
}

run startup /usr/bin/python3 bench/startup.py --build "$build"
# MMU walker and role speed on one core (docs/performance.md, "MMU").
run mmu "$build/bench/mmu" --runs "${MMU_BENCH_RUNS:-7}" --json-out "$build/bench/mmu.json"
# API throughput and latency with 50 defined VMs, QEMU QMP beside it.
run api /usr/bin/python3 bench/api.py --build "$build"
