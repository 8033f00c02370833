# Every test guest on real /dev/kvm through a real vmmd: exit codes, the
# multiboot information the loader builds, flat binaries, a triple fault,
# console input and output, and the console log file.
import base64
import json
import os
import pty
import re
import select
import subprocess
import time

import pytest

from conftest import VMCTL, create_vm, guest, needs_kvm, wait_state

pytestmark = needs_kvm


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_hello_exit_code_through_vmctl_run(daemon, code):
    r = daemon.vmctl("run", guest("hello.elf"), "--cmdline", f"exit={code}")
    assert r.returncode == code, r.stderr
    assert "Hello from the vmmd test guest (boot: multiboot)" in r.stdout
    assert f"cmdline=exit={code}" in r.stdout


@pytest.mark.parametrize("code", [256, 4660, 0x80000000])
def test_exit_values_beyond_a_status_are_not_success(daemon, code):
    # hello writes values above 255 as 32 bits; vmmd keeps them whole, and
    # vmctl run, which cannot return them, says so and exits with 124.
    r = daemon.vmctl("run", guest("hello.elf"), "--cmdline", f"exit={code}")
    assert r.returncode == 124, (r.returncode, r.stderr)
    assert r.stderr == (f"vmctl: the guest wrote {code} ({hex(code)}) to the debug-exit port, "
                        "which does not fit in an exit status (0-255); exiting with 124\n")
    assert f"exit={code}" in r.stdout
    r = daemon.vmctl("run", guest("hello.elf"), "--cmdline", f"exit={code}", json_out=True)
    assert r.returncode == 124
    final = json.loads(r.stdout[r.stdout.index("{"):])
    assert final["exit_status"] == code
    assert final["reason"] == f"guest wrote {code} to the debug-exit port 0xf4"


def test_hello_through_the_api(rpc):
    create_vm(rpc, "h", cmdline="exit=9")
    rpc.result("vm.start", {"name": "h"})
    info = wait_state(rpc, "h", ("stopped", "crashed"))
    assert info["state"] == "stopped"
    assert info["exit_status"] == 9
    assert info["reason"] == "guest wrote 9 to the debug-exit port 0xf4"
    log = open(info["console_log"]).read()
    assert "Hello from the vmmd test guest" in log


def parse_bootinfo(text):
    fields = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.strip().split("=", 1)
            fields[k] = v
    return fields


@pytest.mark.parametrize("memory", [32, 5000])
def test_multiboot_information(daemon, memory):
    r = daemon.vmctl("run", guest("bootinfo.elf"), "--memory", memory, "--cmdline",
                     "console=ttyS0 answer=42")
    assert r.returncode == 0, r.stderr
    f = parse_bootinfo(r.stdout)
    assert f["protocol"] == "multiboot"
    assert f["eax"] == "0x2badb002"
    flags = int(f["flags"], 16)
    # Multiboot 0.6.96 §3.3: bit 0 mem_*, bit 2 cmdline, bit 6 mmap, bit 9 boot_loader_name.
    for bit in (0, 2, 6, 9):
        assert flags & (1 << bit), f"flag bit {bit} missing"
    assert f["mem_lower"] == "639"
    low_end = min(memory, 3072) * 1024
    assert int(f["mem_upper"]) == low_end - 1024
    assert f["cmdline"] == "console=ttyS0 answer=42"
    assert f["boot_loader_name"] == "vmmd"
    regions = []
    for i in range(int(f["mmap_count"])):
        regions.append((int(f[f"mmap[{i}].base"], 16), int(f[f"mmap[{i}].length"], 16),
                        int(f[f"mmap[{i}].type"])))
    ram = sum(length for base, length, kind in regions if kind == 1)
    assert ram == memory * 1024 * 1024 - (0xA0000 - 0x9FC00) - (0x100000 - 0xA0000)
    assert (0xF0000, 0x10000, 2) in regions
    if memory > 3072:
        assert (0x100000000, (memory - 3072) << 20, 1) in regions
        assert not any(b < 0x100000000 and b + l > 0xC0000000 for b, l, _ in regions)


def test_flat_binary(daemon):
    r = daemon.vmctl("run", guest("hello-flat.bin"), "--boot", "flat")
    assert r.returncode == 0, r.stderr
    assert "Hello from the vmmd test guest (boot: flat)" in r.stdout


def test_triple_fault_crashes_with_registers(daemon, rpc):
    r = daemon.vmctl("run", guest("triple-fault.elf"))
    assert r.returncode == 125
    assert "VM crashed: vcpu 0: guest triple fault (KVM_EXIT_SHUTDOWN)" in r.stderr
    assert re.search(r"rip=0x[0-9a-f]+ rsp=0x[0-9a-f]+", r.stderr)
    create_vm(rpc, "tf", kernel="triple-fault.elf")
    rpc.result("vm.start", {"name": "tf"})
    info = wait_state(rpc, "tf", ("stopped", "crashed"))
    assert info["state"] == "crashed"
    assert "KVM_EXIT_SHUTDOWN" in info["reason"] and "cr0=0x" in info["reason"]
    assert info["exit_status"] is None
    assert rpc.result("daemon.version")["pid"] == daemon.proc.pid


def test_console_round_trip_with_vmctl_console(daemon, rpc):
    create_vm(rpc, "echo1", kernel="echo.elf")
    rpc.result("vm.start", {"name": "echo1"})
    r = daemon.vmctl("console", "echo1", input="hello there\nquit\n", timeout=30)
    assert r.returncode == 0, r.stderr
    assert "echo: ready" in r.stdout
    assert "hello there" in r.stdout
    assert "echo: bye" in r.stdout
    info = wait_state(rpc, "echo1", ("stopped", "crashed"))
    assert info["state"] == "stopped" and info["exit_status"] == 0


def test_console_over_raw_json_rpc(daemon, rpc):
    create_vm(rpc, "echo2", kernel="echo.elf")
    rpc.result("vm.start", {"name": "echo2"})
    with daemon.rpc() as con:
        # The history holds what the guest printed before we attached.
        attached = wait_state_history(con, "echo2", b"echo: ready")
        assert attached["state"] == "running"
        data = base64.b64encode(b"ping 123\n").decode()
        assert con.result("vm.console.write", {"name": "echo2", "data": data}) == {"accepted": 9}
        out = b""
        while b"ping 123" not in out:
            note = con.wait_notification("vm.console.output")
            assert note["name"] == "echo2"
            out += base64.b64decode(note["data"])
        con.result("vm.console.write", {"name": "echo2",
                                        "data": base64.b64encode(b"quit\n").decode()})
        end = con.wait_notification("vm.state-changed",
                                    lambda p: p["new"] in ("stopped", "crashed"))
        assert end["new"] == "stopped"


def wait_state_history(con, name, marker):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = con.result("vm.console.attach", {"name": name})
        if marker in base64.b64decode(r["history"]):
            return r
        con.result("vm.console.detach", {"name": name})
        time.sleep(0.05)
    raise TimeoutError("guest output never appeared in the console history")


def test_pasted_input_larger_than_the_uart_fifo_arrives_whole(daemon, rpc):
    create_vm(rpc, "echo3", kernel="echo.elf")
    rpc.result("vm.start", {"name": "echo3"})
    line = "".join(chr(ord("a") + i % 26) for i in range(3000))
    r = daemon.vmctl("console", "echo3", input=line + "\nquit\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert line in r.stdout.replace("\r", "")


def test_interactive_console_detaches_on_ctrl_bracket(daemon, rpc):
    create_vm(rpc, "tty1", kernel="echo.elf")
    rpc.result("vm.start", {"name": "tty1"})
    master, slave = pty.openpty()
    p = subprocess.Popen([str(VMCTL), "--socket", str(daemon.socket), "console", "tty1"],
                         stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""

    def read_until(marker, timeout=15):
        nonlocal out
        deadline = time.monotonic() + timeout
        while marker not in out:
            r, _, _ = select.select([master], [], [], max(0, deadline - time.monotonic()))
            if not r:
                raise TimeoutError(f"{marker!r} not seen; got {out!r}")
            out += os.read(master, 4096)

    try:
        read_until(b"Ctrl-] detaches")
        read_until(b"echo: ready")   # the history shown on attach
        os.write(master, b"typed\r")  # raw mode: Enter sends CR
        read_until(b"typed")
        os.write(master, b"\x1d")
        read_until(b"Detached from tty1")
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    # Detaching leaves the VM running.
    assert rpc.result("vm.info", {"name": "tty1"})["state"] == "running"
    rpc.result("vm.stop", {"name": "tty1"})


def test_demo_guest(daemon):
    r = daemon.vmctl("run", guest("demo.elf"), "--memory", 128, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "vmmd demo: long mode, computing in ring 3" in r.stdout
    assert "primes below 100000000: 5761455" in r.stdout
    assert "demo: ok" in r.stdout


def test_many_short_guests_all_settle_with_their_status(daemon):
    # A worker reports its guest's end and exits at once; vmmd must take the
    # report even when it notices the exit first (the link is drained then).
    for i in range(40):
        r = daemon.vmctl("run", guest("hello.elf"), "--cmdline", f"exit={i}")
        assert r.returncode == i, (i, r.stderr)
