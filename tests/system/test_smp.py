# SMP through the real daemon: the smp guest starts every AP with
# INIT-SIPI-SIPI through the in-kernel LAPIC, each AP reports its APIC ID
# on COM1, and the BSP exits through the debug-exit port once all arrived.
# `make check` runs a few small VMs; `make check-slow` (VMMD_SLOW=1) goes up
# to the largest VM vmmd creates on this host.
import fcntl
import os

import pytest

from conftest import SLOW, guest, needs_kvm

pytestmark = needs_kvm

# vmmd/vmdef.c VM_VCPUS_LIMIT; KVM may allow fewer (KVM_CAP_MAX_VCPUS).
VMMD_VCPUS_LIMIT = 288
KVM_CHECK_EXTENSION = 0xAE03
KVM_CAP_MAX_VCPUS = 66
# APIC IDs above 254 need x2APIC (the xAPIC ID is 8 bits and 255 is broadcast).
XAPIC_MAX_CPUS = 255


def max_vcpus():
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        kvm_max = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS)
    finally:
        os.close(fd)
    return min(kvm_max, VMMD_VCPUS_LIMIT)


def run_smp(daemon, cpus, x2apic=False, timeout=120):
    args = ["run", guest("smp.elf"), "--vcpus", cpus, "--memory", 32,
            "--cmdline", f"cpus={cpus} x2apic={int(x2apic)}"]
    r = daemon.vmctl(*args, timeout=timeout)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}\n{r.stdout[-2000:]}"
    lines = r.stdout.splitlines()
    assert lines[0] == f"smp: cpus={cpus} x2apic={int(x2apic)}"
    assert lines[1] == "bsp=0"
    ap_ids = [int(line[3:]) for line in lines if line.startswith("ap=")]
    # Every AP exactly once, each with its own APIC ID (vmmd gives vCPU i
    # APIC ID i), and the BSP's summary last.
    assert sorted(ap_ids) == list(range(1, cpus)), f"AP IDs: {sorted(ap_ids)}"
    assert lines[-1] == f"smp: all {cpus} cpus up"
    return ap_ids


@pytest.mark.parametrize("cpus", [1, 2, 4, 8])
def test_every_ap_reports_in(daemon, cpus):
    run_smp(daemon, cpus)


def test_x2apic_ids(daemon):
    run_smp(daemon, 4, x2apic=True)


@pytest.mark.skipif(not SLOW, reason="large SMP VMs run in make check-slow (VMMD_SLOW=1)")
@pytest.mark.parametrize("cpus", [32, 64, 128, XAPIC_MAX_CPUS])
def test_many_aps_xapic(daemon, cpus):
    run_smp(daemon, min(cpus, max_vcpus()))


@pytest.mark.skipif(not SLOW, reason="large SMP VMs run in make check-slow (VMMD_SLOW=1)")
def test_largest_vm_x2apic(daemon):
    n = max_vcpus()
    run_smp(daemon, n, x2apic=True)
    # One more than that is refused before anything starts.
    r = daemon.vmctl("run", guest("smp.elf"), "--vcpus", n + 1, "--cmdline", f"cpus={n + 1}")
    assert r.returncode != 0
    assert "vcpus" in r.stderr
