# Every named limit: a test hits it, sees a clear error naming the limit, and
# other clients keep working.
import base64
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import VMMD, Daemon, create_vm, guest, needs_kvm, wait_for, wait_state


@pytest.fixture
def limited(request):
    d = Daemon(extra_args=[a for kv in request.param for a in ("--limit", kv)]).start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def limits(*kv):
    return pytest.mark.parametrize("limited", [kv], indirect=True)


def raw_connect(d):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(d.socket))
    return s


def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


@limits("max-connections=5")
def test_max_connections(limited):
    held = [limited.rpc() for _ in range(4)]  # plus none: 4 of 5
    try:
        fifth = limited.rpc()
        held.append(fifth)
        extra = raw_connect(limited)
        reply = json.loads(read_line(extra))
        assert reply["error"] == {"code": -32005, "message": "too many connections (limit 5)"}
        assert extra.recv(1) == b"", "the refused connection was not closed"
        for c in held:
            assert c.result("vm.list") == {"vms": []}
    finally:
        for c in held:
            c.close()
    # vmmd notices the closed connections asynchronously; then slots free up.
    wait_for(lambda: connects_and_lists(limited), what="a free connection slot")
    assert "too many connections (limit 5)" in limited.read_log()


def connects_and_lists(d):
    try:
        with d.rpc() as r:
            return r.result("vm.list") == {"vms": []}
    except (ConnectionError, OSError, KeyError):
        return False


@limits("max-connections-per-uid=3")
def test_max_connections_per_uid(limited):
    held = [limited.rpc() for _ in range(3)]
    try:
        extra = raw_connect(limited)
        reply = json.loads(read_line(extra))
        assert reply["error"]["code"] == -32005
        assert reply["error"]["message"] == f"too many connections from uid {os.geteuid()} (limit 3)"
        for c in held:
            assert c.result("vm.list") == {"vms": []}
    finally:
        for c in held:
            c.close()


@limits("max-vms=2")
def test_max_vms(limited):
    with limited.rpc() as r:
        create_vm(r, "a")
        create_vm(r, "b")
        err = r.error("vm.create", {"name": "c", "memory": 32, "kernel": guest("hello.elf")})
        assert err == {"code": -32005, "message": "too many VMs (limit 2)"}
        assert [v["name"] for v in r.result("vm.list")["vms"]] == ["a", "b"]
        r.result("vm.delete", {"name": "a"})
        create_vm(r, "c")


@needs_kvm
@limits("max-in-flight=1")
def test_max_in_flight(limited):
    with limited.rpc() as r, limited.rpc() as other:
        create_vm(r, "slow", kernel="echo.elf")
        # vm.start waits for the worker; the vm.list behind it in the same
        # write finds the one slot taken.
        r.send_raw(b'{"jsonrpc":"2.0","method":"vm.start","params":{"name":"slow"},"id":1}\n'
                   b'{"jsonrpc":"2.0","method":"vm.list","id":2}\n')
        replies = {m["id"]: m for m in (r.recv(), r.recv())}
        assert replies[2]["error"] == {
            "code": -32005, "message": "too many requests in flight on this connection (limit 1)"}
        assert replies[1]["result"]["state"] == "running"
        assert other.result("vm.info", {"name": "slow"})["state"] == "running"
        r.result("vm.stop", {"name": "slow"})


@limits("max-vcpus=2", "max-memory=64")
def test_per_vm_limits(limited):
    with limited.rpc() as r:
        err = r.error("vm.create", {"name": "v", "memory": 32, "vcpus": 3,
                                    "kernel": guest("hello.elf")})
        assert err["message"] == \
            "parameter 'vcpus' must be between 1 and 2 (vmmd's max-vcpus limit), got 3"
        err = r.error("vm.create", {"name": "v", "memory": 128, "kernel": guest("hello.elf")})
        assert err["message"] == \
            "parameter 'memory' (128 MiB) exceeds vmmd's max-memory limit of 64 MiB"
        info = r.result("daemon.version")
        assert (info["max_vcpus"], info["max_memory"]) == (2, 64)
        create_vm(r, "v", memory=64, vcpus=2)


@needs_kvm
@limits("notify-queue=4096")
def test_slow_subscriber_is_dropped(limited):
    with limited.rpc() as r:
        create_vm(r, "loud", kernel="counter.elf", cmdline="period_ms=1 pad=200")
        slow = raw_connect(limited)
        slow.sendall(b'{"jsonrpc":"2.0","method":"vm.console.attach","params":{"name":"loud","history":false},"id":1}\n')
        time.sleep(0.1)
        r.result("vm.start", {"name": "loud"})
        # Never read: the kernel's socket buffer fills, then vmmd's queue.
        wait_for(lambda: "dropped for not reading its notifications" in limited.read_log(),
                 timeout=60, what="the slow subscriber to be dropped")
        data = b""
        while True:
            chunk = slow.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        last = json.loads(data.strip().split(b"\n")[-1])
        assert last["method"] == "events.dropped"
        assert "not read fast enough" in last["params"]["reason"]
        # vmmd and the VM carry on.
        assert r.result("vm.info", {"name": "loud"})["state"] == "running"
        r.result("vm.stop", {"name": "loud"})


@needs_kvm
@limits("console-log-size=4096")
def test_console_log_is_rotated(limited):
    with limited.rpc() as r:
        create_vm(r, "chatty", kernel="counter.elf", cmdline="period_ms=2")
        info = r.result("vm.start", {"name": "chatty"})
        log = info["console_log"]
        wait_for(lambda: os.path.exists(log + ".1") and os.path.getsize(log) > 1000,
                 what="a rotation")
        r.result("vm.stop", {"name": "chatty"})
    old, new = open(log + ".1").read(), open(log).read()
    assert len(old) <= 4096 + 512 and len(new) <= 4096 + 512
    ticks = [int(n) for n in re.findall(r"^tick=(\d+)\n", old + new, re.M)]
    tail = ticks[-20:]
    assert tail == list(range(tail[0], tail[0] + len(tail))), "output lost at rotation"


HISTORY = 64 * 1024  # console history kept per VM for vm.console.attach


@needs_kvm
def test_console_history_keeps_the_last_64_kib(daemon, rpc):
    # 1040 lines of 64 bytes, then "echo: ready\n": 1036 bytes beyond the history.
    lines = HISTORY // 64 + 16
    create_vm(rpc, "flood", kernel="echo.elf", cmdline=f"flood={lines}")
    log = rpc.result("vm.start", {"name": "flood"})["console_log"]
    wait_for(lambda: open(log, "rb").read().endswith(b"echo: ready\n"), timeout=60,
             what="the guest's output")
    with daemon.rpc() as viewer:
        history = base64.b64decode(viewer.result("vm.console.attach", {"name": "flood"})["history"])
    everything = open(log, "rb").read()
    assert len(everything) == lines * 64 + len(b"echo: ready\n")
    assert len(history) == HISTORY
    assert history == everything[-HISTORY:]
    # The oldest 1036 bytes are gone: lines 0-15 and the first 12 bytes of 16.
    assert history.startswith(b" " + b"." * 50 + b"\nflood 000017 ")
    assert b"flood 000016" not in history
    assert history.endswith(b"flood 001039 " + b"." * 50 + b"\necho: ready\n")
    rpc.result("vm.stop", {"name": "flood"})


@limits("idle-timeout=1")
def test_idle_connections_time_out(limited):
    idle = raw_connect(limited)
    with limited.rpc() as sub, limited.rpc() as busy:
        sub.result("events.subscribe")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            busy.result("vm.list")
            time.sleep(0.2)
        reply = json.loads(read_line(idle))
        assert reply["error"]["code"] == -32005
        assert reply["error"]["message"] == "idle for 1 s (idle-timeout); closing"
        assert idle.recv(1) == b""
        # Subscribers and active clients stay.
        assert sub.result("vm.list") == {"vms": []}
        assert busy.result("vm.list") == {"vms": []}


@limits("partial-timeout=1", "idle-timeout=0")
def test_half_sent_messages_time_out(limited):
    half = raw_connect(limited)
    half.sendall(b'{"jsonrpc":"2.0","method":"vm.li')
    with limited.rpc() as other:
        reply = json.loads(read_line(half))
        assert reply["error"]["code"] == -32600
        assert "incomplete message stalled for 1 s (partial-timeout)" in reply["error"]["message"]
        assert other.result("vm.list") == {"vms": []}


def test_limit_option_errors():
    for arg, fragment in [("max-vms", "--limit needs NAME=VALUE"),
                          ("colour=red", "unknown limit 'colour'"),
                          ("max-vms=lots", "limit 'max-vms' must be a whole number"),
                          ("max-vms=0", "between 1 and"),
                          ("max-vms=1.5", "whole number"),
                          ("idle-timeout=-1", "between 0 and")]:
        r = subprocess.run([str(VMMD), "--limit", arg], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, arg
        assert fragment in r.stderr, (arg, r.stderr)
