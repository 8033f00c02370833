# vmmd out of file descriptors (a low RLIMIT_NOFILE, set with prlimit): new
# connections wait in the listen backlog, vmmd neither spins nor floods its
# log, open connections are still served, and once descriptors free up the
# waiting connections are answered.
import os
import shutil
import socket
import time

import pytest

from conftest import Daemon

FD_LIMIT = 24

pytestmark = pytest.mark.skipif(not shutil.which("prlimit"), reason="prlimit(1) is not installed")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def ask_version(path):
    """A connection with daemon.version sent on it; the reply is read later."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    s.sendall(b'{"jsonrpc":"2.0","method":"daemon.version","id":1}\n')
    return s


def answered(s, timeout):
    s.settimeout(timeout)
    try:
        return b'"result"' in s.recv(4096)
    except (socket.timeout, ConnectionError):
        return False


@pytest.fixture
def limited():
    d = Daemon(wrapper=["prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}"]).start()
    yield d
    try:
        assert d.stop() == 0, d.read_log()
    finally:
        d.cleanup()


def accept_lines(log):
    return [line for line in log.splitlines()
            if "accept" in line and ("cannot" in line or "again" in line)]


def test_out_of_descriptors_waits_serves_and_recovers(limited):
    pid = limited.proc.pid
    with limited.rpc() as first:
        assert first.result("daemon.version")["pid"] == pid
        # Fill every descriptor vmmd has left; the rest wait in the backlog.
        extra, waiting = [], []
        for _ in range(FD_LIMIT + 8):
            s = ask_version(limited.socket)
            if answered(s, 0.5):
                extra.append(s)
            else:
                waiting.append(s)
                if len(waiting) == 3:
                    break
        assert len(waiting) == 3, "vmmd never ran out of descriptors"
        assert open_fds(pid) == FD_LIMIT

        # Exhausted: no busy loop, a short log, the open connection served.
        cpu = cpu_seconds(pid)
        time.sleep(1.0)
        assert cpu_seconds(pid) - cpu < 0.3, "vmmd spins while out of descriptors"
        assert first.result("vm.list") == {"vms": []}
        lines = accept_lines(limited.read_log())
        assert len(lines) == 1, lines
        assert (f"cannot accept connections: Too many open files, vmmd's limit of {FD_LIMIT} "
                "open files (RLIMIT_NOFILE) reached; new connections wait") in lines[0]

        # Descriptors free up: the waiting connections are answered.
        for s in extra:
            s.close()
        start = time.monotonic()
        assert all(answered(s, 2.0) for s in waiting)
        assert time.monotonic() - start < 2.0
        for s in waiting:
            s.close()
        with limited.rpc_when_possible(timeout=2) as again:
            assert again.result("daemon.version")["pid"] == pid
        assert first.result("daemon.version")["pid"] == pid
    lines = accept_lines(limited.read_log())
    assert len(lines) == 2 and "accepting connections again after" in lines[1], lines
    assert len(limited.read_log().splitlines()) < 200
