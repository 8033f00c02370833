# The test guests under QEMU with KVM, the reference the vmmd runtime is
# compared with (tests/guests/README.md). Exit statuses are QEMU's
# isa-debug-exit mapping: guest value V -> (V << 1) | 1.
import re
import shutil
import subprocess

import pytest

from conftest import SLOW, guest, needs_kvm

QEMU = shutil.which("qemu-system-x86_64")

pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed"),
    needs_kvm,
]


def qemu(kernel, machine="microvm", append=None, stdin=None, reboot=False,
         timeout=60, smp=1):
    cmd = [QEMU, "-M", machine, "-accel", "kvm", "-cpu", "host", "-smp", str(smp),
           "-kernel", guest(kernel),
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
           "-nographic", "-nodefaults", "-serial", "stdio"]
    if not reboot:
        cmd.append("-no-reboot")
    if append is not None:
        cmd += ["-append", append]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def exit_status(v):
    return (v << 1) | 1


def keyvals(out):
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.parametrize("kernel,protocol", [("hello.elf", "multiboot"),
                                             ("hello-pvh.elf", "pvh")])
def test_hello_exits_with_the_code_from_its_command_line(kernel, protocol):
    r = qemu(kernel, append="exit=42")
    assert r.returncode == exit_status(42), r.stderr
    assert f"Hello from the vmmd test guest (boot: {protocol})" in r.stdout
    assert keyvals(r.stdout)["cmdline"].endswith("exit=42")
    assert "exit=42" in r.stdout.splitlines()


def test_hello_defaults_to_zero():
    r = qemu("hello.elf")
    assert r.returncode == exit_status(0), r.stderr
    assert "exit=0" in r.stdout.splitlines()


def test_flat_image_through_its_multiboot_wrapper():
    r = qemu("hello-flat.mb")
    assert r.returncode == exit_status(0), r.stderr
    assert "(boot: flat)" in r.stdout


def test_bootinfo_reports_multiboot_information():
    r = qemu("bootinfo.elf", append="a=b")
    assert r.returncode == exit_status(0), r.stderr
    kv = keyvals(r.stdout)
    assert kv["protocol"] == "multiboot"
    assert kv["eax"] == "0x2badb002"
    flags = int(kv["flags"], 16)
    assert flags & (1 << 0) and flags & (1 << 6) and flags & (1 << 9)
    assert kv["mem_lower"] == "639"
    assert kv["cmdline"].endswith("a=b")
    assert kv["boot_loader_name"] == "qemu"
    n = int(kv["mmap_count"])
    assert n >= 2
    assert kv["mmap[0].base"] == "0x0" and kv["mmap[0].type"] == "1"
    assert kv["bootinfo"] == "done"


def test_bootinfo_reports_pvh_start_info():
    r = qemu("bootinfo-pvh.elf", append="x=y")
    assert r.returncode == exit_status(0), r.stderr
    kv = keyvals(r.stdout)
    assert kv["protocol"] == "pvh"
    assert kv["pvh.magic"] == "0x336ec578"
    assert kv["cmdline"] == "x=y"
    assert int(kv["memmap_count"]) >= 1


def test_echo_round_trip():
    r = qemu("echo.elf", stdin="abc\nquit\n")
    assert r.returncode == exit_status(0), r.stderr
    assert r.stdout == "echo: ready\nabc\nquit\necho: bye\n"


def test_triple_fault_shuts_the_cpu_down():
    r = qemu("triple-fault.elf")
    # -no-reboot: QEMU ends on the shutdown with 0, not via the exit port.
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("loading an empty IDT") == 1
    assert "still running" not in r.stdout


def test_triple_fault_resets_without_no_reboot():
    with pytest.raises(subprocess.TimeoutExpired) as e:
        qemu("triple-fault.elf", reboot=True, timeout=3)
    out = e.value.stdout or b""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    assert out.count("loading an empty IDT") >= 2


@pytest.mark.parametrize("kernel,protocol", [("demo.elf", "multiboot"),
                                             ("demo-pvh.elf", "pvh")])
def test_demo_computes_in_ring3(kernel, protocol):
    r = qemu(kernel)
    assert r.returncode == exit_status(0), r.stdout + r.stderr
    assert f"booted by {protocol}" in r.stdout
    assert "primes below 100000000: 5761455 in" in r.stdout
    assert re.search(r"tsc: [1-9]\d* Hz from \S+", r.stdout)
    assert "demo: ok" in r.stdout
    # The picture: 28 rows of 72 cells with the set's interior in it.
    rows = [l for l in r.stdout.splitlines() if len(l) == 72]
    assert len(rows) == 28 and any("@" in l for l in rows)


@pytest.mark.parametrize("cpus,x2apic", [(4, 0), (8, 1)])
def test_smp_brings_up_every_ap(cpus, x2apic):
    r = qemu("smp.elf", smp=cpus, append=f"cpus={cpus} x2apic={x2apic}")
    assert r.returncode == exit_status(0), r.stdout + r.stderr
    aps = sorted(int(l[3:]) for l in r.stdout.splitlines() if l.startswith("ap="))
    assert aps == list(range(1, cpus))
    assert f"smp: all {cpus} cpus up" in r.stdout


@pytest.mark.skipif(not SLOW, reason="SeaBIOS boot takes seconds; VMMD_SLOW=1")
def test_hello_on_the_pc_machine():
    r = qemu("hello.elf", machine="pc", append="exit=42")
    assert r.returncode == exit_status(42), r.stderr
    assert "(boot: multiboot)" in r.stdout
