#!/bin/sh
# Installs the Debian packages vmmd needs to build, test and benchmark.
#
#   scripts/install-deps.sh            install what is missing (root), or
#                                      print the apt-get line (non-root)
#   scripts/install-deps.sh --ensure   same, but silent when nothing is missing
#   scripts/install-deps.sh --list     print the package list
#
# Exit status: 0 when every package is present afterwards, 1 otherwise.
set -eu

PACKAGES="
gcc
make
binutils
pkg-config
libev-dev
libjson-c-dev
libseccomp-dev
libcmocka-dev
python3
python3-pytest
qemu-system-x86
socat
strace
systemd
"

mode=${1:-install}

missing_packages() {
	for p in $PACKAGES; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$status" in
		*" installed") ;;
		*) printf '%s ' "$p" ;;
		esac
	done
}

case "$mode" in
--list)
	echo $PACKAGES
	exit 0
	;;
--ensure | install) ;;
*)
	echo "usage: $0 [--ensure|--list]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: this script needs a Debian-based system (dpkg-query not found)" >&2
	exit 1
fi

missing=$(missing_packages)
if [ -z "$missing" ]; then
	[ "$mode" = --ensure ] || echo "install-deps: all packages present"
	exit 0
fi

line="apt-get install -y --no-install-recommends $missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: $missing" >&2
	echo "install-deps: run as root:  $line" >&2
	exit 1
fi

echo "install-deps: installing $missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
still=$(missing_packages)
if [ -n "$still" ]; then
	echo "install-deps: still missing after install: $still" >&2
	exit 1
fi
