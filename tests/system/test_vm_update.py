# vm.update where it does not apply: a VM that does not exist, a transient
# VM, and each state in which a VM has a worker (paused, starting, stopping).
# Each refusal is a clear error naming the VM and its state, and the
# definition, in vmmd and on disk, is what it was.
import json
import os
import signal

import pytest

from conftest import create_vm, needs_kvm, pid_alive, wait_state

IDLE = "vm.update needs defined, stopped, crashed or broken"


def assert_unchanged(d, r, name, memory=32):
    assert r.result("vm.info", {"name": name})["memory"] == memory
    stored = json.loads((d.state_dir / "vms" / f"{name}.json").read_text())
    assert stored["definition"]["memory"] == memory


def test_update_of_a_vm_that_does_not_exist(daemon, rpc):
    create_vm(rpc, "real")
    err = rpc.error("vm.update", {"name": "nope", "memory": 64})
    assert err == {"code": -32001, "message": "VM 'nope' not found"}
    assert [v["name"] for v in rpc.result("vm.list")["vms"]] == ["real"]
    assert not (daemon.state_dir / "vms" / "nope.json").exists()


def test_update_of_a_transient_vm(rpc):
    create_vm(rpc, "t", transient=True)
    err = rpc.error("vm.update", {"name": "t", "memory": 64})
    assert err == {"code": -32003,
                   "message": "VM 't' is transient; vm.update needs a persistent VM"}
    assert rpc.result("vm.info", {"name": "t"})["memory"] == 32


@needs_kvm
def test_update_of_a_paused_vm(daemon, rpc):
    create_vm(rpc, "p", kernel="echo.elf")
    rpc.result("vm.start", {"name": "p"})
    assert rpc.result("vm.pause", {"name": "p"})["state"] == "paused"
    err = rpc.error("vm.update", {"name": "p", "memory": 64})
    assert err == {"code": -32003, "message": f"VM 'p' is paused; {IDLE}"}
    assert_unchanged(daemon, rpc, "p")
    rpc.result("vm.stop", {"name": "p"})
    assert rpc.result("vm.update", {"name": "p", "memory": 64})["memory"] == 64


@needs_kvm
def test_update_of_a_starting_vm(daemon, rpc):
    # The worker blocks opening its console log, a FIFO without a reader,
    # so the VM stays starting until the test opens the other end.
    create_vm(rpc, "s", kernel="echo.elf")
    fifo = daemon.state_dir / "console" / "s.log"
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)
    with daemon.rpc() as starter:
        rid = starter.request("vm.start", {"name": "s"})
        wait_state(rpc, "s", "starting")
        err = rpc.error("vm.update", {"name": "s", "memory": 64})
        assert err == {"code": -32003, "message": f"VM 's' is starting; {IDLE}"}
        assert_unchanged(daemon, rpc, "s")
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert starter.response(rid)["result"]["state"] == "running"
            rpc.result("vm.stop", {"name": "s"})
        finally:
            os.close(reader)
    assert rpc.result("vm.update", {"name": "s", "memory": 64})["memory"] == 64


@needs_kvm
def test_update_of_a_stopping_vm(daemon, rpc):
    # A stopped (SIGSTOP) worker cannot carry out vm.stop: the VM stays
    # stopping until it continues.
    create_vm(rpc, "x", kernel="echo.elf")
    pid = rpc.result("vm.start", {"name": "x"})["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        with daemon.rpc() as stopper:
            rid = stopper.request("vm.stop", {"name": "x"})
            wait_state(rpc, "x", "stopping")
            err = rpc.error("vm.update", {"name": "x", "memory": 64})
            assert err == {"code": -32003, "message": f"VM 'x' is stopping; {IDLE}"}
            assert_unchanged(daemon, rpc, "x")
            os.kill(pid, signal.SIGCONT)
            assert stopper.response(rid)["result"]["state"] == "stopped"
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
    assert rpc.result("vm.update", {"name": "x", "memory": 64})["memory"] == 64
