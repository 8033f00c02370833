# Shared fixtures for the system tests: real vmmd processes on temporary
# sockets, a raw JSON-RPC client, and a vmctl runner.
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("VMMD_BUILD", ROOT / "build"))
VMMD = BUILD / "vmmd"
VMCTL = BUILD / "vmctl"
GUESTS = BUILD / "guests"

KVM_OK = os.access("/dev/kvm", os.R_OK | os.W_OK)
needs_kvm = pytest.mark.skipif(not KVM_OK, reason="/dev/kvm is absent or not accessible")


def needs_kvm_to(what):
    """needs_kvm, with why the test cannot do without it."""
    return pytest.mark.skipif(not KVM_OK,
                              reason=f"/dev/kvm is absent or not accessible, and {what}")
SLOW = os.environ.get("VMMD_SLOW") == "1"


def guest(name):
    path = GUESTS / name
    assert path.exists(), f"guest {path} was not built (make guests)"
    return str(path)


class RpcError(Exception):
    def __init__(self, error):
        super().__init__(f"{error['code']}: {error['message']}")
        self.code = error["code"]
        self.message = error["message"]


class Rpc:
    """A raw JSON-RPC 2.0 client: one JSON text per line."""

    def __init__(self, path, timeout=15):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.queue = []
        self.next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv_line(self, timeout=15):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete message from vmmd")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("vmmd closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=15):
        if self.queue:
            return self.queue.pop(0)
        return json.loads(self.recv_line(timeout))

    def request(self, method, params=None):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return rid

    def response(self, rid, timeout=15):
        """The reply to request rid; notifications met on the way are queued."""
        deadline = time.monotonic() + timeout
        pending = []
        try:
            while True:
                msg = json.loads(self.recv_line(max(0.01, deadline - time.monotonic())))
                if isinstance(msg, dict) and msg.get("id") == rid and "method" not in msg:
                    return msg
                pending.append(msg)
        finally:
            self.queue.extend(pending)

    def call(self, method, params=None, timeout=15):
        """The full response object of method(params)."""
        return self.response(self.request(method, params), timeout)

    def result(self, method, params=None, timeout=15):
        r = self.call(method, params, timeout)
        if "error" in r:
            raise RpcError(r["error"])
        return r["result"]

    def error(self, method, params=None):
        r = self.call(method, params)
        assert "error" in r, f"{method} {params} unexpectedly succeeded: {r}"
        return r["error"]

    def wait_notification(self, method, pred=lambda p: True, timeout=15):
        deadline = time.monotonic() + timeout
        kept = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {method} notification")
                if self.queue:
                    msg = self.queue.pop(0)
                else:
                    msg = json.loads(self.recv_line(left))
                if isinstance(msg, dict) and msg.get("method") == method and pred(msg.get("params", {})):
                    return msg["params"]
                kept.append(msg)
        finally:
            self.queue = kept + self.queue


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return None


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_for(pred, timeout=10, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


class Daemon:
    """One real vmmd on a private socket, state and run directory."""

    def __init__(self, extra_args=(), env=None, wrapper=()):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="vmmd-t-", dir="/tmp"))
        self.socket = self.dir / "vmmd.sock"
        self.state_dir = self.dir / "state"
        self.run_dir = self.dir / "run"
        self.log_path = self.dir / "vmmd.log"
        self.extra_args = list(extra_args)
        self.env = env
        # A command vmmd runs under (e.g. strace); self.proc is then that command.
        self.wrapper = list(wrapper)
        self.proc = None

    def start(self, timeout=10, wait_ready=True):
        """Starts vmmd and waits for its READY, or with wait_ready=False only
        until its socket serves (READY is then awaited with wait_ready())."""
        r, w = os.pipe()
        args = [*self.wrapper, str(VMMD), "--socket", str(self.socket),
                "--state-dir", str(self.state_dir),
                "--run-dir", str(self.run_dir), "--ready-fd", str(w),
                "--log-level", "debug", *self.extra_args]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, pass_fds=(w,), stdout=self.log, stderr=self.log,
                                     env=self.env)
        os.close(w)
        self.ready_pipe = r
        if wait_ready:
            self.wait_ready(timeout)
        else:
            self.rpc_when_possible(timeout).close()
        return self

    def is_ready(self):
        """True once vmmd has written READY (without waiting for it)."""
        ready, _, _ = select.select([self.ready_pipe], [], [], 0)
        return bool(ready)

    def wait_ready(self, timeout=10):
        r = self.ready_pipe
        ready, _, _ = select.select([r], [], [], timeout)
        data = os.read(r, 16) if ready else b""
        os.close(r)
        assert data == b"READY\n", f"vmmd did not become ready: {self.read_log()}"

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def rpc(self, timeout=15):
        return Rpc(self.socket, timeout)

    def vmctl(self, *args, input=None, timeout=60, json_out=False):
        cmd = [str(VMCTL), "--socket", str(self.socket)]
        if json_out:
            cmd.append("--json")
        return subprocess.run(cmd + [str(a) for a in args], input=input, capture_output=True,
                              timeout=timeout, text=isinstance(input, str) or input is None)

    def worker_pids(self):
        """Live worker processes started by this daemon (children with --worker)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            cmd = proc_cmdline(int(entry))
            if cmd and b"--worker" in cmd and pid_alive(int(entry)):
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().split(") ", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if self.proc and ppid == self.proc.pid:
                    pids.append(int(entry))
        return pids

    def rpc_when_possible(self, timeout=10):
        """A connection, retried while vmmd refuses new ones (limits being tested)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                r = self.rpc()
                r.result("daemon.version")
                return r
            except (ConnectionError, OSError, KeyError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop_running_vms(self):
        """Powers off every live VM through the API (persistent VMs outlive vmmd)."""
        with self.rpc_when_possible() as r:
            for vm in r.result("vm.list")["vms"]:
                if vm["state"] in ("starting", "running", "stopping"):
                    r.call("vm.stop", {"name": vm["name"]})

    def run_dir_workers(self):
        """Worker pids recorded in this daemon's run directory."""
        pids = []
        for f in (self.run_dir / "vms").glob("*.pid"):
            try:
                pid = json.loads(f.read_text())["pid"]
            except (OSError, ValueError, KeyError):
                continue
            cmd = proc_cmdline(pid)
            if cmd and b"--worker" in cmd and pid_alive(pid):
                pids.append(pid)
        return pids

    def stop(self, sig=signal.SIGTERM, timeout=20, stop_vms=True):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        if stop_vms:
            self.stop_running_vms()
        workers = self.worker_pids() if stop_vms else []
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"vmmd did not exit on {sig!r}: {self.read_log()}")
        for pid in workers:
            wait_for(lambda: not pid_alive(pid), what=f"worker {pid} to exit")
        return rc

    def kill(self):
        """kill -9 of vmmd itself; its workers keep running."""
        self.proc.kill()
        self.proc.wait()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.run_dir_workers():
            os.kill(pid, signal.SIGKILL)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def daemon():
    d = Daemon().start()
    yield d
    try:
        rc = d.stop()
        assert rc == 0, f"vmmd exited with {rc}: {d.read_log()}"
    finally:
        d.cleanup()


@pytest.fixture
def rpc(daemon):
    with daemon.rpc() as r:
        yield r


def running(d):
    """Starts daemon d, yields it, then stops it and removes its files (for
    fixtures: `yield from running(Daemon(...))`)."""
    d.start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def serve_to_other_users(d):
    """running(d), with d's directory open to other users, so that its
    sockets are reachable where their modes allow."""
    d.dir.chmod(0o755)
    yield from running(d)


@pytest.fixture
def make_daemon():
    made = []

    def factory(*args, **kw):
        d = Daemon(*args, **kw).start()
        made.append(d)
        return d

    yield factory
    for d in made:
        try:
            d.stop()
        finally:
            d.cleanup()


def create_vm(rpc, name, kernel="hello.elf", memory=32, **kw):
    params = {"name": name, "memory": memory, "kernel": guest(kernel), **kw}
    return rpc.result("vm.create", params)


def wait_state(rpc, name, states, timeout=15):
    if isinstance(states, str):
        states = (states,)
    return wait_for(lambda: (lambda i: i if i["state"] in states else None)(
        rpc.result("vm.info", {"name": name})), timeout, what=f"VM {name} to be {states}")
