# vmmd under systemd: the units verify, sysusers/tmpfiles entries apply,
# socket activation works (main and read-only sockets), readiness and
# status reach a NOTIFY_SOCKET, and logs carry syslog priority prefixes.
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, ROOT, VMMD, Rpc, create_vm, needs_kvm_to, wait_for

SYSTEMD = ROOT / "systemd"


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="vmmd-sd-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def render_units(dest):
    text = (SYSTEMD / "vmmd.service.in").read_text()
    text = text.replace("@SBINDIR@", str(BUILD)).replace("@DOCDIR@", str(ROOT / "docs"))
    (dest / "vmmd.service").write_text(text)
    for name in ("vmmd.socket", "vmmd-ro.socket"):
        shutil.copy(SYSTEMD / name, dest / name)
    return [str(dest / n) for n in ("vmmd.service", "vmmd.socket", "vmmd-ro.socket")]


def test_units_verify(tmp_path):
    need("systemd-analyze")
    units = render_units(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr
    service = (tmp_path / "vmmd.service").read_text()
    assert "Type=notify" in service and "KillMode=process" in service


def test_verify_catches_a_broken_unit(tmp_path):
    need("systemd-analyze")
    render_units(tmp_path)
    broken = tmp_path / "vmmd.service"
    broken.write_text(broken.read_text().replace(str(BUILD), "/nonexistent"))
    r = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0


def test_sysusers_creates_the_group(tmp_path):
    need("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    for f in ("passwd", "group", "shadow", "gshadow"):
        (tmp_path / "etc" / f).write_text("")
    r = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "vmmd.sysusers")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    groups = (tmp_path / "etc" / "group").read_text()
    assert any(line.startswith("vmmd:") for line in groups.splitlines())


def test_tmpfiles_creates_the_directories(tmp_path):
    need("systemd-tmpfiles")
    r = subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}",
                        str(SYSTEMD / "vmmd.tmpfiles")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "run/vmmd").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "var/lib/vmmd").stat().st_mode) == 0o700


def start_activated(workdir, env=None):
    main, ro = f"{workdir}/vmmd.sock", f"{workdir}/vmmd-ro.sock"
    log = open(f"{workdir}/vmmd.log", "wb")
    proc = subprocess.Popen(["systemd-socket-activate", "-l", main, "-l", ro,
                             "--fdname=main:ro", str(VMMD), "--state-dir", f"{workdir}/state",
                             "--run-dir", f"{workdir}/run", "--log-level", "info"],
                            stdout=log, stderr=log, env=env)
    wait_for(lambda: os.path.exists(main) and os.path.exists(ro), what="the sockets")
    return proc, main, ro


def test_socket_activation(workdir):
    need("systemd-socket-activate")
    proc, main, ro = start_activated(workdir)
    try:
        # The first connection makes systemd-socket-activate exec vmmd with
        # both listening sockets.
        with Rpc(main) as r:
            info = r.result("daemon.version")
            assert info["pid"] == proc.pid
            create_vm(r, "act")
        with Rpc(ro) as r:
            assert [v["name"] for v in r.result("vm.list")["vms"]] == ["act"]
            assert r.error("vm.delete", {"name": "act"})["code"] == -32006
        log = open(f"{workdir}/vmmd.log").read()
        assert "using socket 3 from systemd named main" in log
        assert "using socket 4 from systemd named ro" in log
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    # The sockets belong to the service manager: vmmd leaves them in place.
    assert os.path.exists(main) and os.path.exists(ro)


class NotifySocket:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(10)

    def next(self):
        return dict(line.split("=", 1) for line in
                    self.sock.recv(4096).decode().strip().splitlines())

    def until(self, key, pred=lambda v: True):
        while True:
            msg = self.next()
            if key in msg and pred(msg[key]):
                return msg


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_readiness_status_and_stopping(workdir, abstract):
    name = f"@vmmd-test-{os.getpid()}-{time.monotonic_ns()}" if abstract \
        else f"{workdir}/notify.sock"
    notify = NotifySocket("\0" + name[1:] if abstract else name)
    env = dict(os.environ, NOTIFY_SOCKET=name)
    log = open(f"{workdir}/vmmd.log", "wb")
    proc = subprocess.Popen([str(VMMD), "--socket", f"{workdir}/vmmd.sock", "--state-dir",
                             f"{workdir}/state"], env=env, stdout=log, stderr=log)
    try:
        ready = notify.until("READY")
        assert ready["READY"] == "1"
        assert ready["STATUS"] == "0 VMs defined, 0 running"
        # READY comes only once the socket serves.
        with Rpc(f"{workdir}/vmmd.sock") as r:
            create_vm(r, "n1")
        assert notify.until("STATUS", lambda s: s.startswith("1 VMs"))["STATUS"] == \
            "1 VMs defined, 0 running"
        proc.send_signal(signal.SIGTERM)
        stopping = notify.until("STOPPING")
        assert stopping["STOPPING"] == "1"
        assert stopping["STATUS"] == "shutting down (SIGTERM)"
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@needs_kvm_to("only a running VM has a worker whose environment can be read")
def test_workers_do_not_inherit_notify_socket(workdir):
    notify = NotifySocket(f"{workdir}/notify.sock")
    env = dict(os.environ, NOTIFY_SOCKET=f"{workdir}/notify.sock")
    log = open(f"{workdir}/vmmd.log", "wb")
    proc = subprocess.Popen([str(VMMD), "--socket", f"{workdir}/vmmd.sock", "--state-dir",
                             f"{workdir}/state"], env=env, stdout=log, stderr=log)
    try:
        notify.until("READY")
        with Rpc(f"{workdir}/vmmd.sock") as r:
            create_vm(r, "w", kernel="echo.elf")
            pid = r.result("vm.start", {"name": "w"})["pid"]
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            assert not any(e.startswith(b"NOTIFY_SOCKET=") for e in environ)
            r.result("vm.stop", {"name": "w"})
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def journal_stream_of(fd):
    """JOURNAL_STREAM as journald sets it for a stream connected to fd."""
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def run_with_stderr_pipe(args, journal_stream, **kw):
    """Runs args with stderr on a pipe; JOURNAL_STREAM=journal_stream(stderr fd)
    (a function, since the value depends on the pipe); returns (proc, reader)."""
    r, w = os.pipe()
    env = dict(os.environ, JOURNAL_STREAM=journal_stream(w))
    proc = subprocess.Popen(args, env=env, stderr=w, **kw)
    os.close(w)
    return proc, os.fdopen(r)


def test_journal_priority_prefixes(workdir):
    # stderr is the stream JOURNAL_STREAM names: journald is reading it.
    proc, err = run_with_stderr_pipe([str(VMMD), "--socket", "/nonexistent-dir/" + "x" * 120],
                                     journal_stream_of)
    assert proc.wait(10) != 0
    line = err.read().strip().splitlines()[0]
    assert line.startswith("<3>"), line  # LOG_ERR
    proc, err = run_with_stderr_pipe(
        [str(VMMD), "--socket", f"{workdir}/vmmd.sock", "--state-dir", f"{workdir}/state",
         "--ready-fd", "1"], journal_stream_of, stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    lines = err.read().strip().splitlines()
    assert lines and all(line[:3] in ("<3>", "<4>", "<5>", "<6>", "<7>") for line in lines), lines
    assert any(line.startswith("<5>vmmd ") and "serving" in line for line in lines)


@pytest.mark.parametrize("stream", ["8:12345", "garbage", "", "{dev}:{ino}0", "{dev}:{ino}:1"])
def test_journal_stream_naming_another_stream_is_ignored(stream):
    # A program started from a service inherits JOURNAL_STREAM even when its
    # stderr goes elsewhere (here a pipe): then lines must be plain text.
    def other(fd):
        st = os.fstat(fd)
        return stream.format(dev=st.st_dev, ino=st.st_ino)

    proc, err = run_with_stderr_pipe([str(VMMD), "--socket", "/nonexistent-dir/" + "x" * 120],
                                     other)
    assert proc.wait(10) != 0
    line = err.read().strip().splitlines()[0]
    assert line.startswith(f"vmmd[{proc.pid}] err: "), line