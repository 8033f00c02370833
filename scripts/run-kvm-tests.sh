#!/bin/sh
# Runs the KVM-tier test programs given on the command line. Each is a
# cmocka program on real /dev/kvm; one that cannot run here prints
# "SKIP: <reason>" and exits 77, and a single test that cannot run prints
# "SKIP: <test>: <reason>". Skips are counted and listed, never reported
# as passes. Fails if any program fails or if none was given.
set -u
[ $# -gt 0 ] || { echo "run-kvm-tests: no KVM tests given" >&2; exit 1; }
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
passed=0 failed="" skipped_programs=0 skipped_tests=0 reasons=""
for t in "$@"; do
	name=$(basename "$t")
	"$t" >"$out" 2>&1
	rc=$?
	cat "$out"
	skips=$(grep '^SKIP: ' "$out" | sed "s|^SKIP: |  $name: |")
	if [ $rc -eq 77 ]; then
		skipped_programs=$((skipped_programs + 1))
	elif [ $rc -ne 0 ]; then
		failed="$failed $name"
	else
		passed=$((passed + 1))
		skipped_tests=$((skipped_tests + $(grep -c '^SKIP: ' "$out")))
	fi
	[ -n "$skips" ] && reasons="$reasons
$skips"
done
if [ -n "$failed" ]; then
	echo "run-kvm-tests: FAILED:$failed" >&2
	exit 1
fi
echo "run-kvm-tests: $passed programs passed, $skipped_programs programs skipped, $skipped_tests tests skipped"
if [ -n "$reasons" ]; then
	echo "run-kvm-tests: SKIPPED (not passed):$reasons"
fi
