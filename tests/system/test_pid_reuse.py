# A reused pid is never adopted: a restarted vmmd takes a process for a VM's
# worker only if it was started at the time the worker recorded. Here an
# impostor passes every other check (it runs "... --worker NAME", listens on
# the worker's socket and answers worker.attach like a worker), so only the
# start-time check stands between it and the VM.
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import Daemon, create_vm, needs_kvm, pid_alive, wait_for

pytestmark = needs_kvm

# argv after -c: --worker NAME SOCKET. Reports on stdout: "ready", then one
# line per connection and per signal received.
IMPOSTOR = r"""
import json, os, signal, socket, sys, threading, time
name, path = sys.argv[2], sys.argv[3]
def report(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(sig, lambda s, f: report(f"signal {s}"))
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(4)
report("ready")
def serve(conn):
    f = conn.makefile("rwb")
    for line in f:
        req = json.loads(line)
        report("request " + req["method"])
        result = {"name": name, "pid": os.getpid(), "state": "running",
                  "started_at": time.time(), "definition": {}}
        f.write(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode() + b"\n")
        f.flush()
while True:
    conn, _ = srv.accept()
    report("connection")
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def start_time(pid):
    """Field 22 of /proc/PID/stat: clock ticks (1/100 s) after boot."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def ticks_since_boot():
    with open("/proc/uptime") as f:
        return int(float(f.read().split()[0]) * 100)


@pytest.fixture
def impostor_daemon():
    d = Daemon().start()
    procs = []
    yield d, procs
    for p in procs:
        p.kill()
        p.wait()
    try:
        if d.proc.poll() is None:
            d.stop()
    finally:
        d.cleanup()


def test_live_process_with_the_workers_command_line_but_another_start_time(impostor_daemon):
    d, procs = impostor_daemon
    with d.rpc() as r:
        create_vm(r, "ghost", kernel="counter.elf")
        worker = r.result("vm.start", {"name": "ghost"})["pid"]
    d.kill()
    pidfile = d.run_dir / "vms" / "ghost.pid"
    record = json.loads(pidfile.read_text())
    assert record["pid"] == worker
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: not pid_alive(worker), what="worker death")

    # All of this can happen within one clock tick: let the next begin, so
    # the impostor's start time differs from the worker's.
    wait_for(lambda: ticks_since_boot() > record["start_time"] + 1, what="a clock tick")
    sock = d.run_dir / "vms" / "ghost.sock"
    impostor = subprocess.Popen([sys.executable, "-c", IMPOSTOR, "--worker", "ghost", str(sock)],
                                stdout=subprocess.PIPE, text=True)
    procs.append(impostor)
    assert impostor.stdout.readline() == "ready\n"
    cmdline = open(f"/proc/{impostor.pid}/cmdline", "rb").read().split(b"\0")
    assert cmdline[cmdline.index(b"--worker") + 1] == b"ghost"
    # The worker's pid now names the impostor, as if the pid had been reused;
    # the recorded start time is the worker's own.
    assert start_time(impostor.pid) != record["start_time"]
    record["pid"] = impostor.pid
    pidfile.write_text(json.dumps(record))

    d.log.close()
    d.start()
    with d.rpc() as r:
        info = r.result("vm.info", {"name": "ghost"})
        assert info["state"] == "crashed"
        assert info["pid"] is None
        assert info["reason"] == \
            f"worker {impostor.pid} ended while vmmd was not running, without a report"
    assert not pidfile.exists()
    # vmmd neither talked to the impostor nor signalled it.
    assert pid_alive(impostor.pid)
    impostor.kill()
    impostor.wait()
    assert impostor.stdout.read() == ""
