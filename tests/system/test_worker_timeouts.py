# The worker-* limits: a worker that does not answer in time. Each test makes
# a worker unresponsive for real (SIGSTOP, or a console log that is a FIFO
# nobody reads, on which the worker's open() blocks while it starts the VM),
# hits the limit, and checks the documented outcome while vmmd and a second
# VM carry on.
import base64
import os
import signal
import time

import pytest

from conftest import Daemon, create_vm, needs_kvm, pid_alive, wait_for

pytestmark = needs_kvm

START, STOP, CALL = 0.3, 0.3, 0.3


def limits(start=START, stop=STOP, call=CALL):
    return ["--limit", f"worker-start-timeout={start}", "--limit", f"worker-stop-timeout={stop}",
            "--limit", f"worker-call-timeout={call}"]


@pytest.fixture
def daemon_with():
    made = []

    def factory(args):
        d = Daemon(extra_args=args).start()
        d.sigstopped = []
        made.append(d)
        return d

    yield factory
    for d in made:
        for pid in d.sigstopped:
            if pid_alive(pid):
                os.kill(pid, signal.SIGCONT)
        try:
            assert d.stop() == 0, d.read_log()
        finally:
            d.cleanup()


@pytest.fixture
def d(daemon_with):
    return daemon_with(limits())


def start_bystander(r):
    create_vm(r, "bystander", kernel="echo.elf")
    return r.result("vm.start", {"name": "bystander"})["pid"]


def echoes(d, name, text):
    """The VM's guest answers console input: it runs, and vmmd relays."""
    with d.rpc() as con:
        con.result("vm.console.attach", {"name": name, "history": False})
        con.result("vm.console.write", {"name": name,
                                        "data": base64.b64encode(text + b"\n").decode()})
        out = b""
        while text not in out:
            out += base64.b64decode(con.wait_notification("vm.console.output")["data"])
    return True


def sigstop(d, pid):
    os.kill(pid, signal.SIGSTOP)
    d.sigstopped.append(pid)
    wait_for(lambda: open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T",
             what=f"worker {pid} to stop")


def test_start_timeout_kills_the_worker_and_vm_start_fails(daemon_with):
    # The default stop timeout (5 s): the worker is killed at the start
    # deadline, not after a further stop timeout.
    d = daemon_with(limits(stop=5))
    with d.rpc() as r:
        start_bystander(r)
        create_vm(r, "stuck", kernel="echo.elf")
        (d.state_dir / "console").mkdir(exist_ok=True)
        os.mkfifo(d.state_dir / "console" / "stuck.log")
        with d.rpc() as events:
            events.result("events.subscribe")
            t0 = time.monotonic()
            rid = r.request("vm.start", {"name": "stuck"})
            ev = events.wait_notification("vm.state-changed", lambda p: p["name"] == "stuck")
            assert (ev["old"], ev["new"]) == ("defined", "starting")
            # While the worker hangs, vmmd serves other requests.
            info = events.result("vm.info", {"name": "stuck"})
            assert info["state"] == "starting"
            stuck = info["pid"]
            reply = r.response(rid)
            took = time.monotonic() - t0
            ev = events.wait_notification("vm.state-changed", lambda p: p["name"] == "stuck")
        assert reply["error"] == {"code": -32008, "message":
                                  f"VM 'stuck' failed to start: worker {stuck} did not start "
                                  f"it within {START:g} s (worker-start-timeout)"}
        assert START <= took < 3, took
        assert (ev["old"], ev["new"], ev["reason"]) == \
            ("starting", "defined", reply["error"]["message"])
        info = r.result("vm.info", {"name": "stuck"})
        assert info["state"] == "defined" and info["pid"] is None
        assert info["reason"] == reply["error"]["message"]
        assert not pid_alive(stuck), "the stuck worker is still alive"
        assert r.result("vm.info", {"name": "bystander"})["state"] == "running"
        assert echoes(d, "bystander", b"still here")
        # With a console log it can open, the VM starts.
        os.unlink(d.state_dir / "console" / "stuck.log")
        assert r.result("vm.start", {"name": "stuck"})["state"] == "running"


def test_call_timeout_fails_the_call_and_others_carry_on(d):
    with d.rpc() as r, d.rpc() as other:
        start_bystander(r)
        create_vm(r, "frozen", kernel="echo.elf")
        pid = r.result("vm.start", {"name": "frozen"})["pid"]
        sigstop(d, pid)
        t0 = time.monotonic()
        rid = r.request("vcpu.registers", {"name": "frozen"})
        # Meanwhile, vmmd and the other VM answer at once.
        states = {v["name"]: v["state"] for v in other.result("vm.list")["vms"]}
        assert states == {"bystander": "running", "frozen": "running"}
        assert other.result("vcpu.registers", {"name": "bystander"})["rip"].startswith("0x")
        reply = r.response(rid)
        assert time.monotonic() - t0 >= CALL
        assert reply["error"] == {"code": -32008, "message":
                                  f"VM 'frozen': worker {pid} did not answer vcpu.registers "
                                  f"within {CALL:g} s (worker-call-timeout)"}
        assert r.result("vm.info", {"name": "frozen"})["state"] == "running"
        # A console viewer still subscribes; the history could not be had in time.
        t0 = time.monotonic()
        assert r.result("vm.console.attach", {"name": "frozen"})["history"] == ""
        assert time.monotonic() - t0 >= CALL
        # Time for any timer the timed-out calls left behind to fire.
        time.sleep(2 * CALL)
        assert other.result("daemon.version")["pid"] == d.proc.pid
        assert echoes(d, "bystander", b"unaffected")
        os.kill(pid, signal.SIGCONT)
        # Once it answers again, so do calls to it.
        assert r.result("vcpu.registers", {"name": "frozen"})["rip"].startswith("0x")
        assert echoes(d, "frozen", b"thawed")


def test_pause_answered_after_the_call_timeout_still_changes_the_state(d):
    with d.rpc() as r:
        create_vm(r, "late", kernel="echo.elf")
        pid = r.result("vm.start", {"name": "late"})["pid"]
        sigstop(d, pid)
        err = r.error("vm.pause", {"name": "late"})
        assert err["code"] == -32008 and "did not answer vm.pause" in err["message"]
        assert r.result("vm.info", {"name": "late"})["state"] == "running"
        with d.rpc() as events:
            events.result("events.subscribe")
            os.kill(pid, signal.SIGCONT)
            # The worker carries the pause out late; vmmd's state follows it.
            ev = events.wait_notification("vm.state-changed", lambda p: p["name"] == "late")
        assert (ev["old"], ev["new"]) == ("running", "paused")
        assert f"worker {pid} answered vm.pause after the worker-call-timeout" in d.read_log()
        assert r.result("vm.info", {"name": "late"})["state"] == "paused"
        assert r.result("vm.resume", {"name": "late"})["state"] == "running"
        assert echoes(d, "late", b"resumed")


def test_stop_timeout_kills_a_worker_that_cannot_power_off(d):
    with d.rpc() as r, d.rpc() as other:
        bystander = start_bystander(r)
        create_vm(r, "hung", kernel="echo.elf")
        pid = r.result("vm.start", {"name": "hung"})["pid"]
        sigstop(d, pid)
        t0 = time.monotonic()
        rid = r.request("vm.stop", {"name": "hung"})
        wait_for(lambda: other.result("vm.info", {"name": "hung"})["state"] == "stopping",
                 what="the VM to be stopping")
        info = r.response(rid)["result"]
        assert time.monotonic() - t0 >= STOP
        assert info["state"] == "stopped"
        assert info["reason"] == "powered off by vm.stop"
        assert info["pid"] is None
        wait_for(lambda: not pid_alive(pid), what="the worker to be gone")
        assert f"worker {pid} did not exit within {STOP:g} s (worker-stop-timeout); killing it" \
            in d.read_log()
        assert r.result("vm.info", {"name": "bystander"})["pid"] == bystander
        assert echoes(d, "bystander", b"carry on")
        assert r.result("vm.start", {"name": "hung"})["state"] == "running"
