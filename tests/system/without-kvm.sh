#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs a command as if this host had no KVM: in a mount namespace of its
# own whose /dev is a copy of the real one without kvm (every other entry
# is bound to the original, so /dev/null, /dev/pts and /dev/shm work). The
# host's /dev is never touched. Needs root and unshare(1):
#
#   tests/system/without-kvm.sh COMMAND [ARG]...
#   tests/system/without-kvm.sh make check
#
# Used by tests/system/test_no_kvm.py; see docs/host-notes.md.
set -eu

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG]..." >&2
	exit 2
fi

ns_self=$(readlink /proc/self/ns/mnt) || ns_self=
ns_parent=$(readlink "/proc/$PPID/ns/mnt") || ns_parent=
if [ -z "$ns_self" ] || [ -z "$ns_parent" ]; then
	echo "$0: cannot tell mount namespaces apart (/proc/PID/ns/mnt)" >&2
	exit 1
fi
# Still in the caller's namespace: start again in a new one (unshare execs
# this script with the same pid, so $PPID is still the caller).
if [ "$ns_self" = "$ns_parent" ]; then
	exec unshare --mount --propagation private "$0" "$@"
fi

new=$(mktemp -d)
mount -t tmpfs -o mode=0755 vmmd-without-kvm "$new"
for entry in /dev/* /dev/.[!.]*; do
	[ -e "$entry" ] || [ -L "$entry" ] || continue
	name=${entry#/dev/}
	[ "$name" = kvm ] && continue
	if [ -L "$entry" ]; then
		cp -P "$entry" "$new/$name"
	elif [ -d "$entry" ]; then
		mkdir "$new/$name"
		mount --rbind "$entry" "$new/$name"
	else
		touch "$new/$name"
		mount --bind "$entry" "$new/$name"
	fi
done
mount --move "$new" /dev
rmdir "$new"
exec "$@"
