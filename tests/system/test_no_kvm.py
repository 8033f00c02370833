# A host without KVM, for real: vmmd runs in a mount namespace whose /dev
# has no kvm (tests/system/without-kvm.sh). It must start, serve, and define
# VMs up to its own limits; vm.start must fail with -32004 naming /dev/kvm
# and leave the VM, the daemon and every connection as they were.
import json
import os
import shutil

import pytest

from conftest import ROOT, Daemon, guest

WITHOUT_KVM = ROOT / "tests" / "system" / "without-kvm.sh"
NO_KVM_ERROR = "open /dev/kvm: No such file or directory"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="hiding /dev/kvm takes a mount namespace: root and unshare(1)")


@pytest.fixture
def no_kvm():
    d = Daemon(wrapper=[WITHOUT_KVM]).start()
    yield d
    try:
        assert d.stop() == 0, d.read_log()
    finally:
        d.cleanup()


def test_kvm_is_hidden_from_vmmd_only(no_kvm):
    # The daemon's /dev lacks kvm; the host's (where this test runs) does not
    # change.
    root = f"/proc/{no_kvm.proc.pid}/root"
    assert os.path.exists(f"{root}/dev/null")
    assert not os.path.exists(f"{root}/dev/kvm")


def test_vms_are_defined_without_kvm_and_start_says_why_not(no_kvm):
    with no_kvm.rpc() as r, no_kvm.rpc() as other:
        version = r.result("daemon.version")
        assert version["max_vcpus"] == 4096
        info = r.result("vm.create", {"name": "a", "memory": 32, "vcpus": 2,
                                      "kernel": guest("hello.elf")})
        assert info["state"] == "defined" and info["vcpus"] == 2
        err = r.error("vm.create", {"name": "b", "memory": 32, "vcpus": 4097,
                                    "kernel": guest("hello.elf")})
        assert err == {"code": -32602, "message":
                       "parameter 'vcpus' must be between 1 and 4096 "
                       "(vmmd's limit; KVM's is unknown without /dev/kvm), got 4097"}

        err = r.error("vm.start", {"name": "a"})
        assert err == {"code": -32004, "message": NO_KVM_ERROR}
        info = r.result("vm.info", {"name": "a"})
        assert info["state"] == "defined" and info["pid"] is None
        assert info["reason"] == NO_KVM_ERROR

        # Nothing else changed: both connections are served, VMs come and go.
        assert [v["name"] for v in other.result("vm.list")["vms"]] == ["a"]
        r.result("vm.create", {"name": "c", "memory": 2, "kernel": guest("hello.elf")})
        assert other.error("vm.start", {"name": "c"})["code"] == -32004
        assert r.result("vm.delete", {"name": "c"}) == {"name": "c"}
        assert other.result("daemon.version")["pid"] == version["pid"]
    assert no_kvm.proc.poll() is None
    assert not no_kvm.worker_pids()


def test_vmctl_without_kvm(no_kvm):
    r = no_kvm.vmctl("create", "v", "--memory", 32, "--vcpus", 4, "--kernel", guest("hello.elf"))
    assert r.returncode == 0, r.stderr
    r = no_kvm.vmctl("start", "v")
    assert r.returncode == 1
    assert r.stderr == f"vmctl: {NO_KVM_ERROR}\n"
    r = no_kvm.vmctl("start", "v", json_out=True)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": {"code": -32004, "message": NO_KVM_ERROR}}
    r = no_kvm.vmctl("run", guest("hello.elf"))
    assert r.returncode == 1 and NO_KVM_ERROR in r.stderr
    assert no_kvm.vmctl("list").stdout.split("\n")[1].split()[:2] == ["v", "defined"]
