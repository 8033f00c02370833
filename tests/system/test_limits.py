# Every named limit: a test hits it, sees a clear error naming the limit, and
# other clients keep working.
import base64
import grp
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import (VMMD, Daemon, create_vm, guest, needs_kvm, serve_to_other_users,
                      wait_for, wait_state)


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


NOBODY = 65534

# Run as another user: one connection per method, all kept open; prints the
# first message each connection received.
MULTI_CLIENT = r"""
import json, socket, sys
held, out = [], []
for method in json.loads(sys.argv[2]):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    try:
        s.sendall(json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}).encode() + b"\n")
    except BrokenPipeError:
        pass  # refused: vmmd already said why and closed
    out.append(json.loads(s.makefile("rb").readline()))
    held.append(s)
print(json.dumps(out))
"""


@pytest.fixture
def shared_with_users(request):
    """A daemon whose main socket members of group 'users' may use."""
    yield from serve_to_other_users(Daemon(extra_args=["--group", "users", *request.param]))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
@pytest.mark.parametrize("shared_with_users", [["--limit", "max-connections-per-uid=3"]],
                         indirect=True)
def test_connections_per_uid_are_counted_per_user(shared_with_users):
    d = shared_with_users
    held = [d.rpc() for _ in range(3)]
    try:
        extra = raw_connect(d)
        assert json.loads(read_line(extra))["error"]["message"] == \
            "too many connections from uid 0 (limit 3)"
        # uid 0 is at its limit; another user still gets its own three.
        r = subprocess.run([sys.executable, "-c", MULTI_CLIENT, str(d.socket),
                            json.dumps(["vm.list"] * 4)],
                           user=NOBODY, group=NOBODY, extra_groups=[grp.getgrnam("users").gr_gid],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        first = json.loads(r.stdout)
        assert [m.get("result") for m in first[:3]] == [{"vms": []}] * 3
        assert first[3]["error"] == {"code": -32005, "message":
                                     f"too many connections from uid {NOBODY} (limit 3)"}
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
        # The limit is vmmd's, not the connection's; everything else still works.
        with limited.rpc() as other:
            assert other.error("vm.create", {"name": "d", "memory": 32,
                                             "kernel": guest("hello.elf")}) == err
            assert other.result("vm.info", {"name": "b"})["state"] == "defined"
            assert other.result("vm.update", {"name": "b", "memory": 64})["memory"] == 64
            r.result("vm.delete", {"name": "a"})
            create_vm(other, "c")
        assert [v["name"] for v in r.result("vm.list")["vms"]] == ["b", "c"]


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
            "parameter 'memory' must be between 2 and 64 MiB (vmmd's max-memory limit), got 128"
        info = r.result("daemon.version")
        assert (info["max_vcpus"], info["max_memory"]) == (2, 64)
        with limited.rpc() as other:
            # Another client, at the limits exactly, is not refused.
            create_vm(other, "w", memory=64, vcpus=2)
            err = other.error("vm.update", {"name": "w", "vcpus": 3})
            assert err["message"] == \
                "parameter 'vcpus' must be between 1 and 2 (vmmd's max-vcpus limit), got 3"
            assert other.result("vm.info", {"name": "w"})["vcpus"] == 2
        create_vm(r, "v", memory=64, vcpus=2)
        assert [v["name"] for v in r.result("vm.list")["vms"]] == ["v", "w"]


@needs_kvm
@limits("notify-queue=4096")
def test_slow_subscriber_is_dropped(limited):
    with limited.rpc() as r:
        create_vm(r, "loud", kernel="counter.elf", cmdline="period_ms=1 pad=200")
        slow = raw_connect(limited)
        slow.sendall(b'{"jsonrpc":"2.0","method":"vm.console.attach","params":{"name":"loud","history":false},"id":1}\n')
        assert json.loads(read_line(slow))["result"]["name"] == "loud"
        r.result("vm.start", {"name": "loud"})
        # Never read: the kernel's socket buffer fills, then vmmd's queue.
        wait_for(lambda: "dropped for not reading its notifications" in limited.read_log(),
                 timeout=60, what="the slow subscriber to be dropped")
        assert read_to_end(slow)[-1] == {"jsonrpc": "2.0", "method": "events.dropped", "params": {
            "reason": "notifications were not read fast enough"}}
        # vmmd and the VM carry on.
        assert r.result("vm.info", {"name": "loud"})["state"] == "running"
        r.result("vm.stop", {"name": "loud"})


def read_to_end(s):
    """Every message until the peer closes."""
    data = b""
    while chunk := s.recv(1 << 20):
        data += chunk
    return [json.loads(line) for line in data.splitlines()]


@needs_kvm
@limits("notify-queue=4096")
def test_slow_event_subscriber_is_dropped_and_others_keep_receiving(limited):
    name = "v" * 64  # the longest name: longer notifications fill the queue sooner
    with limited.rpc() as r, limited.rpc() as reader:
        create_vm(r, name, kernel="echo.elf")
        r.result("vm.start", {"name": name})
        reader.result("events.subscribe")
        slow = raw_connect(limited)
        slow.sendall(b'{"jsonrpc":"2.0","method":"events.subscribe","id":1}\n')
        assert json.loads(read_line(slow)) == {"jsonrpc": "2.0", "id": 1, "result": {}}
        # From here on the slow subscriber reads nothing. Each pause and
        # resume is an event; the reader takes each as it comes.
        changes = 0
        while "dropped for not reading its notifications" not in limited.read_log():
            for method, new in (("vm.pause", "paused"), ("vm.resume", "running")):
                r.result(method, {"name": name})
                ev = reader.wait_notification("vm.state-changed")
                assert (ev["name"], ev["new"]) == (name, new)
                changes += 1
            assert changes < 20000, "the slow subscriber was never dropped"
        events = read_to_end(slow)
        assert events[-1] == {"jsonrpc": "2.0", "method": "events.dropped", "params": {
            "reason": "notifications were not read fast enough"}}
        # What it did get came in order, with none missing, before the notice.
        news = [e["params"]["new"] for e in events[:-1]]
        assert news == ["paused", "running"] * (len(news) // 2) + ["paused"] * (len(news) % 2)
        assert 0 < len(news) < changes
        # The reader keeps receiving, and vmmd and the VM carry on.
        r.result("vm.pause", {"name": name})
        assert reader.wait_notification("vm.state-changed")["new"] == "paused"
        assert reader.result("vm.info", {"name": name})["state"] == "paused"
        r.result("vm.stop", {"name": name})


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
        assert reply["error"]["message"] == ("incomplete message not finished within 1 s of its "
                                             "first byte (partial-timeout); closing")
        assert other.result("vm.list") == {"vms": []}


def send_slowly(s, pieces, pause):
    """Sends each piece, pausing in between."""
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(pause)
        s.sendall(piece)


@limits("partial-timeout=2", "idle-timeout=0")
def test_a_slow_drip_does_not_keep_a_half_sent_message_alive(limited):
    # One byte every 0.25 s: each read is fresh input, but the message it
    # belongs to started with the first byte and never ends.
    drip = raw_connect(limited)
    message = b'{"jsonrpc":"2.0","method":"vm.list","id":1}'
    # Meanwhile a client that sends its messages in slow pieces, each one
    # finished within the limit, is served throughout.
    steady = raw_connect(limited)
    request = b'{"jsonrpc":"2.0","method":"vm.list","id":%d}\n'
    steady_replies = []

    def steady_client():
        # Message 1 from 0 s to 1.2 s; message 2 from 1.2 s to 2.4 s: more than
        # the limit after message 1's first byte, within it for each message.
        send_slowly(steady, [(request % 1)[:20], (request % 1)[20:] + (request % 2)[:20],
                             (request % 2)[20:]], 1.2)
        steady_replies.extend(json.loads(read_line(steady)) for _ in range(2))

    helper = threading.Thread(target=steady_client)
    start = time.monotonic()
    helper.start()
    try:
        for byte in message:
            drip.sendall(bytes([byte]))
            if select.select([drip], [], [], 0.25)[0]:
                break
        reply = json.loads(read_line(drip))
        elapsed = time.monotonic() - start
    finally:
        helper.join(10)
    assert reply["error"]["code"] == -32600
    assert "(partial-timeout)" in reply["error"]["message"]
    assert 2 <= elapsed < 3.6, f"closed {elapsed:.1f} s after the first byte"
    assert drip.recv(1) == b""
    assert [r["result"] for r in steady_replies] == [{"vms": []}, {"vms": []}]
    steady.close()


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
