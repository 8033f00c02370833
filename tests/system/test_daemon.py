# vmmd as a JSON-RPC server: framing, errors, batches, many clients, hostile
# clients, signals, and its command line.
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import VMMD, Daemon, Rpc, wait_for

MIB = 1024 * 1024


def test_version_over_raw_socket(rpc):
    r = rpc.call("daemon.version")
    assert r["jsonrpc"] == "2.0"
    assert r["id"] == 1
    res = r["result"]
    assert res["version"]
    assert res["pid"] > 0
    assert res["max_vcpus"] >= 1
    assert res["max_memory"] > 0
    assert res["max_memory_read"] == 65536


def test_unknown_method(rpc):
    err = rpc.error("vm.fly", {"name": "x"})
    assert err["code"] == -32601
    assert "vm.fly" in err["message"]


def test_parse_error_then_connection_still_works(rpc):
    rpc.send_raw(b'{"jsonrpc": "2.0", "method": "daemon.version", "id": 1\n')
    r = rpc.recv()
    assert r["error"]["code"] == -32700
    assert r["id"] is None
    assert rpc.result("daemon.version")["version"]


def test_invalid_requests(rpc):
    cases = [
        (b'[1]', -32600, "expected a JSON object"),
        (b'"x"', -32600, "expected a JSON object"),
        (b'{"method": "daemon.version", "id": 3}', -32600, "'jsonrpc' must be"),
        (b'{"jsonrpc": "2.0", "method": 1, "id": 4}', -32600, "'method' must be a string"),
        (b'{"jsonrpc": "2.0", "method": "vm.info", "params": 1, "id": 5}', -32600, "'params'"),
        (b"{'jsonrpc': '2.0'}", -32700, "single quotes"),
        (b'\xff\xfe', -32700, "parse error"),
    ]
    for raw, code, fragment in cases:
        rpc.send_raw(raw + b"\n")
        r = rpc.recv()
        batch = r if isinstance(r, list) else [r]
        assert batch[0]["error"]["code"] == code, raw
        assert fragment in batch[0]["error"]["message"], (raw, batch[0])


def test_message_split_across_many_writes(rpc):
    msg = json.dumps({"jsonrpc": "2.0", "method": "daemon.version", "id": 77}).encode() + b"\n"
    for i in range(len(msg)):
        rpc.send_raw(msg[i:i + 1])
        time.sleep(0.001)
    assert rpc.recv()["id"] == 77


def test_two_messages_in_one_write(rpc):
    rpc.send_raw(b'{"jsonrpc":"2.0","method":"daemon.version","id":1}\n'
                 b'{"jsonrpc":"2.0","method":"vm.list","id":2}\n')
    ids = {rpc.recv()["id"], rpc.recv()["id"]}
    assert ids == {1, 2}


def test_oversized_message_is_rejected_and_connection_survives(rpc):
    big = b'{"jsonrpc":"2.0","method":"vm.info","params":{"name":"' + b"a" * (MIB + 10) + b'"},"id":9}\n'
    rpc.send_raw(big)
    r = rpc.recv()
    assert r["error"]["code"] == -32600
    assert "exceeds the limit of 1048576 bytes" in r["error"]["message"]
    assert rpc.result("daemon.version")["pid"] > 0


def test_message_of_exactly_one_mib_is_parsed(rpc):
    head = b'{"jsonrpc":"2.0","method":"vm.info","params":{"name":"'
    tail = b'"},"id":5}'
    filler = b"a" * (MIB - len(head) - len(tail))
    rpc.send_raw(head + filler + tail + b"\n")
    r = rpc.recv()
    # Parsed and validated: the name is too long, which is a params error.
    assert r["id"] == 5
    assert r["error"]["code"] == -32602
    assert "parameter 'name' is too long" in r["error"]["message"]


def test_batch_request(rpc):
    rpc.send([
        {"jsonrpc": "2.0", "method": "daemon.version", "id": 1},
        {"jsonrpc": "2.0", "method": "vm.list"},
        {"jsonrpc": "2.0", "method": "vm.info", "params": {"name": "nope"}, "id": 2},
        {"jsonrpc": "2.0", "method": "nope", "id": 3},
    ])
    replies = rpc.recv()
    assert isinstance(replies, list)
    by_id = {r["id"]: r for r in replies}
    assert set(by_id) == {1, 2, 3}
    assert "result" in by_id[1]
    assert by_id[2]["error"]["code"] == -32001
    assert by_id[3]["error"]["code"] == -32601


def test_empty_batch(rpc):
    rpc.send_raw(b"[]\n")
    r = rpc.recv()
    assert r["error"]["code"] == -32600
    assert "empty batch" in r["error"]["message"]


def test_notification_gets_no_reply(rpc):
    rpc.send({"jsonrpc": "2.0", "method": "daemon.version"})
    rid = rpc.request("vm.list")
    assert rpc.recv()["id"] == rid


def test_hundred_concurrent_clients(daemon):
    clients = [daemon.rpc() for _ in range(100)]
    try:
        for i, c in enumerate(clients):
            c.send({"jsonrpc": "2.0", "method": "vm.list", "id": i})
        for i, c in enumerate(clients):
            r = c.recv()
            assert r["id"] == i
            assert r["result"] == {"vms": []}
    finally:
        for c in clients:
            c.close()


def test_silent_half_sent_and_flooding_clients_do_not_block_others(daemon):
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(daemon.socket))
    half = socket.socket(socket.AF_UNIX)
    half.connect(str(daemon.socket))
    half.sendall(b'{"jsonrpc":"2.0","method":"daemon.ver')
    # A client that sends many requests and never reads a reply.
    flood = socket.socket(socket.AF_UNIX)
    flood.connect(str(daemon.socket))
    flood.setblocking(False)
    req = b'{"jsonrpc":"2.0","method":"vm.list","id":1}\n' * 1000
    sent = 0
    try:
        for _ in range(200):
            try:
                sent += flood.send(req)
            except BlockingIOError:
                break
        with daemon.rpc(timeout=5) as good:
            t0 = time.monotonic()
            for _ in range(20):
                assert good.result("vm.list") == {"vms": []}
            assert time.monotonic() - t0 < 5
    finally:
        for s in (silent, half, flood):
            s.close()
    assert sent > 0


def test_client_that_disconnects_mid_request_is_harmless(daemon):
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(daemon.socket))
        s.sendall(b'{"jsonrpc":"2.0","method":"vm.list","id":1}\n')
        s.close()
    with daemon.rpc() as r:
        assert r.result("vm.list") == {"vms": []}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_on_signal(sig):
    d = Daemon().start()
    try:
        with d.rpc() as events:
            events.result("events.subscribe")
            d.proc.send_signal(sig)
            note = events.wait_notification("daemon.shutting-down")
            assert note["reason"] in ("SIGTERM", "SIGINT")
        assert d.proc.wait(10) == 0
        assert not d.socket.exists(), "socket left behind"
        assert "shutting down" in d.read_log()
    finally:
        d.cleanup()


def test_second_daemon_on_the_same_socket_is_refused(daemon):
    r = subprocess.run([str(VMMD), "--socket", str(daemon.socket), "--state-dir",
                        str(daemon.dir / "other")], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "another vmmd is already serving" in r.stderr
    with daemon.rpc() as c:
        assert c.result("daemon.version")["pid"] == daemon.proc.pid


def test_stale_socket_is_replaced():
    d = Daemon()
    d.dir.mkdir(exist_ok=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(d.socket))
    stale.close()  # bound but nobody listening: what a crashed daemon leaves
    try:
        d.start()
        with d.rpc() as c:
            assert c.result("daemon.version")["pid"] == d.proc.pid
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_command_line():
    r = subprocess.run([str(VMMD), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--socket PATH" in r.stdout
    r = subprocess.run([str(VMMD), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("vmmd ")
    r = subprocess.run([str(VMMD), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([str(VMMD), "--log-level", "loud"], capture_output=True, text=True)
    assert r.returncode == 2 and "--log-level" in r.stderr
    r = subprocess.run([str(VMMD), "--ready-fd", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "--ready-fd" in r.stderr
    r = subprocess.run([str(VMMD), "extra"], capture_output=True, text=True)
    assert r.returncode == 2 and "unexpected argument" in r.stderr


def test_bad_log_level_in_the_environment_is_refused(tmp_path):
    sock = tmp_path / "vmmd.sock"
    args = [str(VMMD), "--socket", str(sock), "--state-dir", str(tmp_path / "state")]
    for extra in ([], ["--log-level", "debug"]):
        r = subprocess.run(args + extra, env=dict(os.environ, VMMD_LOG_LEVEL="loud"),
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, r.stderr
        assert ("VMMD_LOG_LEVEL must be err, warning, notice, info or debug, got 'loud'"
                in r.stderr)
        assert not sock.exists(), "vmmd started anyway"
    # --help and --version still work.
    r = subprocess.run([str(VMMD), "--version"], env=dict(os.environ, VMMD_LOG_LEVEL="loud"),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0


@pytest.mark.parametrize("level,shown,hidden", [
    ("warning", [], ["notice:", "info:"]),
    ("notice", ["notice: vmmd 0.1.0 serving"], ["info:"]),
    ("", ["notice: vmmd 0.1.0 serving", "info: "], ["debug:"]),  # empty: the default
])
def test_log_level_from_the_environment(tmp_path, level, shown, hidden):
    # No --log-level (the Daemon fixture adds one): the variable decides.
    sock, log_path = tmp_path / "vmmd.sock", tmp_path / "vmmd.log"
    r, w = os.pipe()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(VMMD), "--socket", str(sock), "--state-dir", str(tmp_path / "state"),
             "--ready-fd", str(w), "--group", "nonexistent"],
            pass_fds=(w,), stdout=log, stderr=log, env=dict(os.environ, VMMD_LOG_LEVEL=level))
    os.close(w)
    try:
        assert os.read(r, 16) == b"READY\n"
        with Rpc(sock) as c:
            c.result("vm.list")
    finally:
        os.close(r)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    text = log_path.read_text()
    for fragment in shown:
        assert fragment in text, text
    for fragment in hidden:
        assert fragment not in text, text


def test_socket_path_too_long_is_a_clear_error(tmp_path):
    long_path = "/tmp/" + "x" * 120 + "/vmmd.sock"
    r = subprocess.run([str(VMMD), "--socket", long_path, "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "too long" in r.stderr
