# Isolation of VM workers: one process per VM, and the death of one never
# takes down vmmd or another VM.
import base64
import os
import signal

from conftest import create_vm, needs_kvm, pid_alive, wait_for, wait_state

pytestmark = needs_kvm


def test_each_vm_runs_in_its_own_worker_process(daemon, rpc):
    for n in ("a", "b"):
        create_vm(rpc, n, kernel="echo.elf")
        rpc.result("vm.start", {"name": n})
    pids = {n: rpc.result("vm.info", {"name": n})["pid"] for n in ("a", "b")}
    assert pids["a"] != pids["b"]
    assert sorted(daemon.worker_pids()) == sorted(pids.values())
    for pid in pids.values():
        # Own session, so signals to vmmd's terminal never reach guests.
        assert os.getsid(pid) == pid
        threads = os.listdir(f"/proc/{pid}/task")
        names = {open(f"/proc/{pid}/task/{t}/comm").read().strip() for t in threads}
        assert "vcpu/0" in names
    for n in ("a", "b"):
        rpc.result("vm.stop", {"name": n})


def test_vcpu_threads_are_named(rpc):
    create_vm(rpc, "smp", kernel="echo.elf", vcpus=3)
    pid = rpc.result("vm.start", {"name": "smp"})["pid"]
    names = {open(f"/proc/{pid}/task/{t}/comm").read().strip()
             for t in os.listdir(f"/proc/{pid}/task")}
    assert {"vcpu/0", "vcpu/1", "vcpu/2"} <= names
    rpc.result("vm.stop", {"name": "smp"})


def test_kill_9_of_a_worker_crashes_only_its_vm(daemon, rpc):
    create_vm(rpc, "victim", kernel="echo.elf")
    create_vm(rpc, "bystander", kernel="echo.elf")
    victim = rpc.result("vm.start", {"name": "victim"})["pid"]
    rpc.result("vm.start", {"name": "bystander"})
    with daemon.rpc() as events:
        events.result("events.subscribe")
        os.kill(victim, signal.SIGKILL)
        ev = events.wait_notification("vm.state-changed", lambda p: p["name"] == "victim")
    assert ev["old"] == "running" and ev["new"] == "crashed"
    assert ev["reason"] == "worker killed by signal 9 (Killed)"
    info = rpc.result("vm.info", {"name": "victim"})
    assert info["state"] == "crashed" and info["pid"] is None
    # The daemon answers and the neighbour still runs and talks.
    assert rpc.result("daemon.version")["pid"] == daemon.proc.pid
    assert rpc.result("vm.info", {"name": "bystander"})["state"] == "running"
    with daemon.rpc() as con:
        con.result("vm.console.attach", {"name": "bystander", "history": False})
        con.result("vm.console.write", {"name": "bystander",
                                        "data": base64.b64encode(b"still alive\n").decode()})
        out = b""
        while b"still alive" not in out:
            out += base64.b64decode(con.wait_notification("vm.console.output")["data"])
    # A crashed VM can be started again.
    assert rpc.result("vm.start", {"name": "victim"})["state"] == "running"
    for n in ("victim", "bystander"):
        rpc.result("vm.stop", {"name": n})


def test_worker_killed_by_other_signals(rpc):
    create_vm(rpc, "seg", kernel="echo.elf")
    pid = rpc.result("vm.start", {"name": "seg"})["pid"]
    os.kill(pid, signal.SIGSEGV)
    info = wait_state(rpc, "seg", "crashed")
    assert info["reason"].startswith("worker killed by signal 11 (Segmentation fault)")


def test_sigterm_to_a_worker_powers_its_vm_off(rpc):
    create_vm(rpc, "t", kernel="echo.elf")
    pid = rpc.result("vm.start", {"name": "t"})["pid"]
    os.kill(pid, signal.SIGTERM)
    info = wait_state(rpc, "t", ("stopped", "crashed"))
    assert info["state"] == "stopped"
    assert info["reason"] == "worker received SIGTERM"
    wait_for(lambda: not pid_alive(pid), what="worker exit")


def test_transient_vm_goes_away_with_its_client(daemon, rpc):
    with daemon.rpc() as owner:
        create_vm(owner, "tmp1", kernel="echo.elf", transient=True)
        pid = owner.result("vm.start", {"name": "tmp1"})["pid"]
        assert rpc.result("vm.info", {"name": "tmp1"})["transient"] is True
    wait_for(lambda: not any(v["name"] == "tmp1" for v in rpc.result("vm.list")["vms"]),
             what="transient VM removal")
    wait_for(lambda: not pid_alive(pid), what="worker exit")


def test_daemon_shutdown_stops_transient_vms_and_leaves_persistent_ones(make_daemon):
    d = make_daemon()
    with d.rpc() as r:
        create_vm(r, "keep", kernel="echo.elf")
        keep = r.result("vm.start", {"name": "keep"})["pid"]
        create_vm(r, "tmp", kernel="echo.elf", transient=True)
        tmp = r.result("vm.start", {"name": "tmp"})["pid"]
        assert d.stop(stop_vms=False) == 0
    assert not pid_alive(tmp), "a transient VM outlived its vmmd"
    assert pid_alive(keep), "a persistent VM was stopped with vmmd"
    os.kill(keep, signal.SIGKILL)
