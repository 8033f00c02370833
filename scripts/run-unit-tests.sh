#!/bin/sh
# Runs each cmocka unit-test binary given on the command line and reports a
# summary. Fails if any binary fails or if none was given.
set -u
[ $# -gt 0 ] || { echo "run-unit-tests: no unit tests given" >&2; exit 1; }
failed=""
for t in "$@"; do
	if ! "$t"; then
		failed="$failed $(basename "$t")"
	fi
done
if [ -n "$failed" ]; then
	echo "run-unit-tests: FAILED:$failed" >&2
	exit 1
fi
echo "run-unit-tests: $# binaries passed"
