"""Helpers shared by the benchmark scripts."""
import os
import select
import subprocess
import sys


def start_vmmd(build, tmp, name, extra_args=()):
    """A vmmd on tmp/vmmd.sock, returned once it serves."""
    r, w = os.pipe()
    proc = subprocess.Popen([str(build / "vmmd"), "--socket", f"{tmp}/vmmd.sock",
                             "--state-dir", f"{tmp}/state", "--log-level", "warning",
                             "--ready-fd", str(w), *extra_args], pass_fds=(w,))
    os.close(w)
    ready, _, _ = select.select([r], [], [], 10)
    if not ready or os.read(r, 16) != b"READY\n":
        sys.exit(f"bench/{name}: vmmd did not start")
    os.close(r)
    return proc
