# Restart without VM downtime: workers outlive vmmd, and a new vmmd on the
# same state and run directories reattaches them.
import base64
import json
import os
import re
import shutil
import signal
import threading
import socket
import threading
import time

import pytest

from conftest import Daemon, create_vm, needs_kvm, pid_alive, wait_for, wait_state

pytestmark = needs_kvm


@pytest.fixture
def daemon2():
    d = Daemon().start()
    yield d
    try:
        if d.proc.poll() is None:
            d.stop()
    finally:
        d.cleanup()


def ticks(text):
    """Numbers of the complete tick lines (a trailing partial line is ignored)."""
    return [int(n) for n in re.findall(r"^tick=(\d+)\r?\n", text, re.M)]


def console_log(d, name):
    return (d.state_dir / "console" / f"{name}.log").read_text()


def assert_consecutive(numbers):
    assert numbers, "no ticks"
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), \
        f"ticks not consecutive: {numbers}"


def start_counters(d, names):
    pids = {}
    with d.rpc() as r:
        for n in names:
            # The guest flags any stall of its vCPU >= gap_ms. vmmd is not on
            # that path, so a stall can only come from host scheduling, which
            # reaches a few hundred ms when parallel builds load both cores.
            create_vm(r, n, kernel="counter.elf", cmdline="period_ms=20 gap_ms=1500")
            pids[n] = r.result("vm.start", {"name": n})["pid"]
    for n in names:
        wait_for(lambda: len(ticks(console_log(d, n))) >= 3, what=f"{n} to count")
    return pids


def kill_vmmd_then_workers(d, names):
    """Starts a counter VM per name, kills vmmd, then kills each worker while
    vmmd is away; returns the dead workers' pids."""
    with d.rpc() as r:
        for n in names:
            create_vm(r, n, kernel="counter.elf")
        pids = [r.result("vm.start", {"name": n})["pid"] for n in names]
    d.kill()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), what="worker death")
    return pids


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_three_vms_survive_a_vmmd_restart(daemon2, how):
    names = ["c1", "c2", "c3"]
    pids = start_counters(daemon2, names)
    if how == "kill -9":
        daemon2.kill()
    else:
        assert daemon2.stop(stop_vms=False) == 0
    # vmmd is gone; the guests keep counting on their own.
    before = {n: len(ticks(console_log(daemon2, n))) for n in names}
    time.sleep(0.5)
    for n in names:
        assert pid_alive(pids[n])
        assert len(ticks(console_log(daemon2, n))) >= before[n] + 10, f"{n} stalled without vmmd"
    daemon2.log.close()
    daemon2.start()
    with daemon2.rpc() as r:
        for n in names:
            info = r.result("vm.info", {"name": n})
            assert info["state"] == "running"
            assert info["pid"] == pids[n], "a new worker replaced the old one"
            assert info["uptime"] >= 0.5
            # The console history kept by the worker covers the downtime, and
            # the live stream continues exactly where it ended.
            text = base64.b64decode(r.result("vm.console.attach", {"name": n})["history"])
            seen = len(ticks(text.decode()))
            while len(ticks(text.decode())) < seen + 3:
                note = r.wait_notification("vm.console.output", lambda p: p["name"] == n)
                text += base64.b64decode(note["data"])
            assert_consecutive(ticks(text.decode()))
            r.result("vm.console.detach", {"name": n})
        for n in names:
            stopped = r.result("vm.stop", {"name": n})
            assert stopped["state"] == "stopped"
            assert stopped["reason"] == "powered off by vm.stop"
    for n in names:
        wait_for(lambda: not pid_alive(pids[n]), what=f"worker {n} to exit")
        log = console_log(daemon2, n)
        assert_consecutive(ticks(log))
        assert "GAP" not in log, f"{n} was interrupted: {log}"
    assert not list((daemon2.run_dir / "vms").glob("*.pid"))


def test_vm_that_ends_while_vmmd_is_away(daemon2):
    with daemon2.rpc() as r:
        create_vm(r, "short", kernel="counter.elf", cmdline="period_ms=20 count=15")
        pid = r.result("vm.start", {"name": "short"})["pid"]
    daemon2.kill()
    wait_for(lambda: not pid_alive(pid), what="the guest to finish")
    exit_record = daemon2.run_dir / "vms" / "short.exit"
    assert json.loads(exit_record.read_text())["exit_status"] == 0
    daemon2.log.close()
    daemon2.start()
    with daemon2.rpc() as r:
        info = r.result("vm.info", {"name": "short"})
        assert info["state"] == "stopped"
        assert info["exit_status"] == 0
        assert info["reason"] == "guest wrote 0 to the debug-exit port 0xf4"
    assert not exit_record.exists()


def test_worker_killed_while_vmmd_is_away(daemon2):
    (pid,) = kill_vmmd_then_workers(daemon2, ["doomed"])
    daemon2.log.close()
    daemon2.start()
    with daemon2.rpc() as r:
        info = r.result("vm.info", {"name": "doomed"})
        assert info["state"] == "crashed"
        assert f"worker {pid} ended while vmmd was not running" in info["reason"]
        # It can be started again.
        assert r.result("vm.start", {"name": "doomed"})["state"] == "running"


def test_reused_pid_is_never_adopted(daemon2):
    kill_vmmd_then_workers(daemon2, ["ghost"])
    # The pid file now names a live process that is not that worker: this test.
    pidfile = daemon2.run_dir / "vms" / "ghost.pid"
    record = json.loads(pidfile.read_text())
    record["pid"] = os.getpid()
    pidfile.write_text(json.dumps(record))
    daemon2.log.close()
    daemon2.start()
    with daemon2.rpc() as r:
        info = r.result("vm.info", {"name": "ghost"})
        assert info["state"] == "crashed"
        assert info["pid"] is None
    assert pid_alive(os.getpid())


def test_corrupt_run_directory_records(daemon2):
    kill_vmmd_then_workers(daemon2, ["p1", "p2"])
    vms = daemon2.run_dir / "vms"
    (vms / "p1.pid").write_text("{not json")
    (vms / "p2.exit").write_bytes(b"\x00" * 100)
    daemon2.log.close()
    daemon2.start()
    with daemon2.rpc() as r:
        for n in ("p1", "p2"):
            assert r.result("vm.info", {"name": n})["state"] == "crashed"


def test_fifo_run_directory_records_neither_hang_nor_get_adopted(daemon2):
    kill_vmmd_then_workers(daemon2, ["f1", "f2"])
    vms = daemon2.run_dir / "vms"
    (vms / "f1.pid").unlink()
    os.mkfifo(vms / "f1.pid")
    os.mkfifo(vms / "f2.exit")
    daemon2.log.close()
    daemon2.start(timeout=10)
    with daemon2.rpc() as r:
        for n in ("f1", "f2"):
            info = r.result("vm.info", {"name": n})
            assert (info["state"], info["pid"]) == ("crashed", None), info
        reason = r.result("vm.info", {"name": "f2"})["reason"]
        assert reason == f"{vms / 'f2.exit'}: not a regular file but a FIFO"
        assert r.result("vm.start", {"name": "f1"})["state"] == "running"
        r.result("vm.stop", {"name": "f1"})
    assert not (vms / "f2.exit").exists()


def test_transient_vm_does_not_outlive_a_dead_vmmd(daemon2):
    with daemon2.rpc() as r:
        create_vm(r, "t", kernel="counter.elf", transient=True)
        pid = r.result("vm.start", {"name": "t"})["pid"]
        daemon2.kill()
    wait_for(lambda: not pid_alive(pid), what="the transient VM to power off")


def test_a_second_vmmd_cannot_take_an_attached_worker(daemon2):
    with daemon2.rpc() as r:
        create_vm(r, "mine", kernel="counter.elf")
        r.result("vm.start", {"name": "mine"})
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(daemon2.run_dir / "vms" / "mine.sock"))
    reply = json.loads(s.makefile().readline())
    s.close()
    assert reply["error"]["message"] == "this worker is attached to another vmmd"
    with daemon2.rpc() as r:
        assert r.result("vm.info", {"name": "mine"})["state"] == "running"


def test_worker_takes_each_new_vmmd_of_quick_restarts(daemon2):
    """A worker may see its next vmmd connect before it has read the end of
    file of the previous link; it must take the newcomer, not refuse it as
    another vmmd's (which used to fail about one restart in ten)."""
    with daemon2.rpc() as r:
        create_vm(r, "hup", kernel="echo.elf")
        pid = r.result("vm.start", {"name": "hup"})["pid"]
    for _ in range(10):
        assert daemon2.stop(stop_vms=False) == 0
        daemon2.log.close()
        daemon2.start()
        with daemon2.rpc() as r:
            info = r.result("vm.info", {"name": "hup"})
            assert (info["state"], info["pid"]) == ("running", pid)
            r.result("vm.pause", {"name": "hup"})
            r.result("vm.resume", {"name": "hup"})
    with daemon2.rpc() as r:
        r.result("vm.stop", {"name": "hup"})
    assert "attached to another vmmd" not in daemon2.read_log()


class FakeWorkerSocket:
    """Listens where a worker's socket was, so a restarted vmmd connects here
    instead: answers the first request (worker.attach) with `reply` once
    release() is called."""

    def __init__(self, path, reply):
        os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(4)
        self.reply = reply
        self.released = threading.Event()
        self.request = None
        self.conn = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(30)
        self.conn, _ = self.listener.accept()
        self.request = json.loads(self.conn.makefile().readline())
        self.released.wait(30)
        self.conn.sendall(json.dumps(dict(self.reply, jsonrpc="2.0",
                                          id=self.request["id"])).encode() + b"\n")

    def release(self):
        self.released.set()
        self.thread.join(10)

    def close(self):
        self.released.set()
        if self.conn:
            self.conn.close()
        self.listener.close()


def strace_wrapper(out):
    """Runs vmmd under strace, recording the signals it sends (no -f: the
    daemon is one thread, and its workers are not traced)."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    return ["strace", "-qq", "-o", str(out), "-e", "trace=kill,pidfd_open,pidfd_send_signal",
            "--"]


def traced_vmmd_pid(d):
    with d.rpc() as r:
        return r.result("daemon.version")["pid"]


def test_adopted_worker_is_signalled_only_through_its_pidfd(daemon2):
    with daemon2.rpc() as r:
        for n in ("lost", "kept"):
            create_vm(r, n, kernel="counter.elf")
        pids = {n: r.result("vm.start", {"name": n})["pid"] for n in ("lost", "kept")}
    daemon2.kill()
    fake = FakeWorkerSocket(daemon2.run_dir / "vms" / "lost.sock",
                            {"error": {"code": -32003, "message": "not this VM's worker"}})
    trace = daemon2.dir / "signals.trace"
    daemon2.wrapper = strace_wrapper(trace)
    daemon2.log.close()
    vmmd = None
    try:
        daemon2.start(wait_ready=False)
        vmmd = traced_vmmd_pid(daemon2)
        fake.release()
        assert fake.request["method"] == "worker.attach"
        daemon2.wait_ready()
        with daemon2.rpc() as r:
            info = wait_state(r, "lost", "crashed")
            assert info["reason"] == (f"worker {pids['lost']} could not be reattached: "
                                      "not this VM's worker")
            wait_for(lambda: not pid_alive(pids["lost"]), what="the unusable worker to be killed")
            info = r.result("vm.info", {"name": "kept"})
            assert (info["state"], info["pid"]) == ("running", pids["kept"])
        # SIGTERM to vmmd itself, not to strace, then wait for both.
        os.kill(vmmd, signal.SIGTERM)
        assert daemon2.proc.wait(20) == 0
    finally:
        fake.close()
        if vmmd and pid_alive(vmmd):
            os.kill(vmmd, signal.SIGKILL)
    calls = trace.read_text()
    # Each worker's pidfd is opened first, and the process it holds checked
    # alive after /proc was read.
    opened = re.findall(r"^pidfd_open\((\d+), 0\)\s+= (\d+)\n(.*)$", calls, re.M)
    assert {int(pid) for pid, _, _ in opened} == set(pids.values()), calls
    for _, fd, after in opened:
        assert after.startswith(f"pidfd_send_signal({fd}, 0, NULL, 0)"), calls
    assert re.search(r"^pidfd_send_signal\(\d+, SIGKILL, NULL, 0\)\s+= 0$", calls, re.M), calls
    assert not re.search(r"^kill\(", calls, re.M), calls
    # The other worker was left running, and is now stopped as usual.
    assert pid_alive(pids["kept"])
    daemon2.wrapper = []
    daemon2.log.close()
    daemon2.start()
    with daemon2.rpc() as r:
        assert r.result("vm.stop", {"name": "kept"})["state"] == "stopped"


# Every state change found while reattaching goes through vm_set_state():
# logged, saved, and sent to subscribers. Most happen before vmmd serves,
# so no subscriber can see them; they are checked in the log and in the
# saved record, which a direct write to the state would leave stale.

def record_path(d, name):
    return d.state_dir / "vms" / f"{name}.json"


def stored_runtime(d, name):
    return json.loads(record_path(d, name).read_text())["runtime"]


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def start_two(d, names=("gone", "alive")):
    with d.rpc() as r:
        for n in names:
            create_vm(r, n, kernel="counter.elf")
        return {n: r.result("vm.start", {"name": n})["pid"] for n in names}


def kill_worker(pid):
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what=f"worker {pid} to die")


def restart_after_kill(d):
    d.log.close()
    d.start()


def assert_ended_while_away(d, name, state, why):
    """The running VM `name` was found ended by the new vmmd: state, reason,
    log line and stored record all say so."""
    with d.rpc() as r:
        info = r.result("vm.info", {"name": name})
        assert (info["state"], info["reason"], info["pid"]) == (state, why, None)
    assert f"VM '{name}': running -> {state}: {why}" in d.read_log()
    runtime = stored_runtime(d, name)
    assert (runtime["state"], runtime["reason"]) == (state, why)


def assert_untouched(d, name, pid):
    with d.rpc() as r:
        info = r.result("vm.info", {"name": name})
        assert (info["state"], info["pid"]) == ("running", pid), d.read_log()
        assert r.result("vm.stop", {"name": name})["state"] == "stopped"


@pytest.mark.parametrize("where", ["pid record", "state record"])
def test_host_reboot_stops_the_vm(daemon2, where):
    pids = start_two(daemon2)
    daemon2.kill()
    kill_worker(pids["gone"])
    vms = daemon2.run_dir / "vms"
    if where == "pid record":
        # A run directory that survives reboots still holds the old record.
        edit_json(vms / "gone.pid", lambda rec: rec.update(boot_id="an-earlier-boot"))
    else:
        # /run is a tmpfs: the reboot wiped the worker's records.
        for suffix in ("pid", "sock"):
            (vms / f"gone.{suffix}").unlink()
        edit_json(record_path(daemon2, "gone"),
                  lambda rec: rec["runtime"].update(boot_id="an-earlier-boot"))
    restart_after_kill(daemon2)
    assert_ended_while_away(daemon2, "gone", "stopped",
                            "the host rebooted while the VM was running")
    assert not (vms / "gone.pid").exists() and not (vms / "gone.sock").exists()
    assert_untouched(daemon2, "alive", pids["alive"])


def test_worker_gone_without_a_record_crashes_the_vm(daemon2):
    pids = start_two(daemon2)
    daemon2.kill()
    kill_worker(pids["gone"])
    for suffix in ("pid", "sock"):
        (daemon2.run_dir / "vms" / f"gone.{suffix}").unlink()
    restart_after_kill(daemon2)
    assert_ended_while_away(daemon2, "gone", "crashed", "its worker is gone and left no record")
    assert_untouched(daemon2, "alive", pids["alive"])


@pytest.mark.parametrize("stored", ["paused", "running"])
def test_vm_paused_when_vmmd_died_comes_back_paused_and_resumable(daemon2, stored):
    pids = start_two(daemon2, ("p", "alive"))
    with daemon2.rpc() as r:
        r.result("vm.pause", {"name": "p"})
    daemon2.kill()
    if stored == "running":
        # vmmd died after the worker paused but before the state was saved.
        edit_json(record_path(daemon2, "p"), lambda rec: rec["runtime"].update(state="running"))
    paused_log = console_log(daemon2, "p")
    restart_after_kill(daemon2)
    with daemon2.rpc() as r:
        info = wait_state(r, "p", "paused")
        assert info["pid"] == pids["p"]
        assert stored_runtime(daemon2, "p")["state"] == "paused"
        if stored == "running":
            assert (f"VM 'p': running -> paused: reattached to worker {pids['p']}"
                    in daemon2.read_log())
        time.sleep(0.2)
        assert console_log(daemon2, "p") == paused_log, "the guest ran while paused"
        assert r.result("vm.resume", {"name": "p"})["state"] == "running"
        wait_for(lambda: len(ticks(console_log(daemon2, "p"))) >= len(ticks(paused_log)) + 3,
                 what="the resumed guest to count on")
        assert_consecutive(ticks(console_log(daemon2, "p")))
        assert stored_runtime(daemon2, "p")["state"] == "running"
        r.result("vm.stop", {"name": "p"})
    assert_untouched(daemon2, "alive", pids["alive"])


def test_start_that_vmmd_did_not_live_to_record(daemon2):
    pids = start_two(daemon2, ("late", "alive"))
    daemon2.kill()
    # As if vmmd died between starting the worker and saving "running".
    edit_json(record_path(daemon2, "late"), lambda rec: rec["runtime"].update(state="defined"))
    restart_after_kill(daemon2)
    with daemon2.rpc() as r:
        info = wait_state(r, "late", "running")
        assert info["pid"] == pids["late"]
    log = daemon2.read_log()
    assert f"VM 'late': defined -> starting: worker {pids['late']} found in the run directory" in log
    assert f"VM 'late': starting -> running: reattached to worker {pids['late']}" in log
    assert stored_runtime(daemon2, "late")["state"] == "running"
    assert_untouched(daemon2, "late", pids["late"])
    assert_untouched(daemon2, "alive", pids["alive"])


def test_worker_that_fails_to_reattach_crashes_its_vm_and_tells_subscribers(daemon2):
    pids = start_two(daemon2, ("lost", "kept"))
    daemon2.kill()
    # The socket in the run directory is not the worker's: it answers
    # worker.attach for some other VM.
    fake = FakeWorkerSocket(daemon2.run_dir / "vms" / "lost.sock",
                            {"result": {"name": "other", "pid": 1, "state": "running"}})
    try:
        daemon2.log.close()
        daemon2.start(wait_ready=False)
        with daemon2.rpc() as events:
            events.result("events.subscribe")
            assert not daemon2.is_ready(), "READY before every worker answered its reattach"
            fake.release()
            daemon2.wait_ready()
            why = f"worker {pids['lost']} could not be reattached: it answered for another VM"
            note = events.wait_notification("vm.state-changed", lambda p: p["name"] == "lost")
            assert (note["old"], note["new"], note["reason"]) == ("running", "crashed", why)
            info = events.result("vm.info", {"name": "lost"})
            assert (info["state"], info["reason"], info["pid"]) == ("crashed", why, None)
        wait_for(lambda: not pid_alive(pids["lost"]), what="the unusable worker to be killed")
        assert stored_runtime(daemon2, "lost")["state"] == "crashed"
    finally:
        fake.close()
    assert_untouched(daemon2, "kept", pids["kept"])


def continue_if_alive(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def restart_with_stalled_worker(d, name, stall_s):
    """Starts a VM, stops vmmd, and restarts it while the VM's worker is
    stopped for stall_s seconds; returns (worker pid, seconds to READY)."""
    with d.rpc() as r:
        create_vm(r, name, kernel="echo.elf")
        pid = r.result("vm.start", {"name": name})["pid"]
    assert d.stop(stop_vms=False) == 0
    d.log.close()
    os.kill(pid, signal.SIGSTOP)
    resume = threading.Timer(stall_s, continue_if_alive, (pid,))
    resume.start()
    began = time.monotonic()
    try:
        d.start()
        took = time.monotonic() - began
    finally:
        resume.join()
    return pid, took


def test_ready_waits_until_every_worker_is_reattached():
    d = Daemon()
    try:
        d.start()
        pid, took = restart_with_stalled_worker(d, "late", 1.0)
        assert took >= 0.9, f"READY {took:.2f} s after start, before the worker answered"
        with d.rpc() as r:
            info = r.result("vm.info", {"name": "late"})
            assert (info["state"], info["pid"]) == ("running", pid)
            r.result("vm.stop", {"name": "late"})
    finally:
        d.stop()
        d.cleanup()


def test_ready_comes_after_the_call_timeout_when_a_worker_never_answers():
    d = Daemon(extra_args=["--limit", "worker-call-timeout=0.5"])
    try:
        d.start()
        pid, took = restart_with_stalled_worker(d, "mute", 3.0)
        assert 0.4 <= took < 2.5, f"READY after {took:.2f} s"
        with d.rpc() as r:
            info = r.result("vm.info", {"name": "mute"})
            assert info["state"] == "crashed" and "could not be reattached" in info["reason"]
        wait_for(lambda: not pid_alive(pid), what="the unreachable worker to be killed")
    finally:
        d.stop()
        d.cleanup()
