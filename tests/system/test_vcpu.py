# vCPU control through the daemon: pause/resume, registers, platform reset,
# and the CPUID policy, each with its wrong-state and bad-input errors.
import base64
import json
import re
import shutil
import struct
import time

import pytest

from conftest import create_vm, guest, needs_kvm, wait_for

pytestmark = needs_kvm


def log_of(rpc, name):
    return open(rpc.result("vm.info", {"name": name})["console_log"]).read()


def ticks(text):
    return [int(n) for n in re.findall(r"^tick=(\d+)\n", text, re.M)]


def test_pause_stops_the_guest_and_resume_continues_exactly(rpc):
    create_vm(rpc, "c", kernel="counter.elf", cmdline="period_ms=10 gap_ms=5000")
    rpc.result("vm.start", {"name": "c"})
    wait_for(lambda: len(ticks(log_of(rpc, "c"))) >= 5, what="ticks")
    info = rpc.result("vm.pause", {"name": "c"})
    assert info["state"] == "paused" and info["reason"] == "paused by vm.pause"
    before = log_of(rpc, "c")
    regs = [rpc.result("vcpu.registers", {"name": "c"}) for _ in range(3)]
    time.sleep(0.4)
    assert log_of(rpc, "c") == before, "the guest printed while paused"
    # A paused VM is consistent and readable: nothing moves between reads.
    assert regs[0] == regs[1] == regs[2]
    assert rpc.result("vm.info", {"name": "c"})["uptime"] > 0
    info = rpc.result("vm.resume", {"name": "c"})
    assert info["state"] == "running" and info["reason"] == "resumed by vm.resume"
    wait_for(lambda: len(ticks(log_of(rpc, "c"))) >= len(ticks(before)) + 5, what="more ticks")
    after = rpc.result("vcpu.registers", {"name": "c"})
    assert after["rip"] != regs[0]["rip"] or after["rax"] != regs[0]["rax"]
    seen = ticks(log_of(rpc, "c"))
    assert seen == list(range(1, len(seen) + 1)), "a tick was lost or repeated across the pause"
    rpc.result("vm.stop", {"name": "c"})


def test_pause_and_resume_wrong_states(rpc):
    create_vm(rpc, "w", kernel="echo.elf")
    err = rpc.error("vm.pause", {"name": "w"})
    assert err["message"] == "VM 'w' is defined; vm.pause needs running"
    rpc.result("vm.start", {"name": "w"})
    err = rpc.error("vm.resume", {"name": "w"})
    assert err["message"] == "VM 'w' is running; vm.resume needs paused"
    rpc.result("vm.pause", {"name": "w"})
    assert rpc.error("vm.pause", {"name": "w"})["code"] == -32003
    # A paused VM can be stopped.
    assert rpc.result("vm.stop", {"name": "w"})["state"] == "stopped"
    for method in ("vm.pause", "vm.resume", "vm.reset", "vcpu.registers"):
        assert rpc.error(method, {"name": "w"})["code"] == -32003


# SDM Vol. 1 §3.4.3: the EFLAGS flags vcpu.registers names, in bit order.
RFLAGS_BITS = [(0, "CF"), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (8, "TF"), (9, "IF"),
               (10, "DF"), (11, "OF"), (14, "NT"), (16, "RF"), (17, "VM"), (18, "AC"),
               (19, "VIF"), (20, "VIP"), (21, "ID")]


def test_registers_json_names_and_decoding(daemon, rpc):
    create_vm(rpc, "pg", kernel="paging.elf")
    rpc.result("vm.start", {"name": "pg"})
    wait_for(lambda: "paging: ready" in log_of(rpc, "pg"), what="paging")
    rpc.result("vm.pause", {"name": "pg"})
    r = rpc.result("vcpu.registers", {"name": "pg"})
    for key in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r15", "rip",
                "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base", "dr6", "dr7"):
        assert re.fullmatch(r"0x[0-9a-f]+", r[key]), key
    assert r["mode"] == "compatibility" and r["cpl"] == 0
    assert r["cr3"] == "0x200000"
    assert set(r["cr0_bits"]) >= {"PE", "PG", "WP"} and "PAE" in r["cr4_bits"]
    assert set(r["efer_bits"]) >= {"LME", "LMA", "NXE"}
    assert r["cs"]["kind"] == "code, execute/read, accessed" and r["cs"]["db"] is True
    assert r["tr"]["kind"].startswith("system: ")
    assert r["apic_base"] == "0xfee00900"  # enabled, BSP
    # RFLAGS decoded: exactly the flags set in the value, IOPL its bits
    # 13:12; the guest halted with interrupts off.
    rflags = int(r["rflags"], 16)
    assert rflags & 2
    assert r["rflags_bits"] == [name for bit, name in RFLAGS_BITS if rflags >> bit & 1]
    assert r["iopl"] == (rflags >> 12) & 3
    assert "IF" not in r["rflags_bits"]
    text = daemon.vmctl("regs", "pg").stdout
    assert "compatibility mode, CPL 0" in text and "[PE ET WP PG]" in text
    j = json.loads(daemon.vmctl("regs", "pg", json_out=True).stdout)
    assert j["rip"] == r["rip"] and j["rflags"] == r["rflags"] and j["cr0"] == r["cr0"]
    err = rpc.error("vcpu.registers", {"name": "pg", "vcpu": 1})
    assert "parameter 'vcpu' must be between 0 and 0" in err["message"]
    rpc.result("vm.stop", {"name": "pg"})


# What tests/guests/cpustate sets (cpustate.h).
CPUSTATE_MSRS = {
    "sysenter_cs": "0x10", "sysenter_esp": "0xfffffe0000001000",
    "sysenter_eip": "0xffffffff81a00200", "star": "0x23001000000000",
    "lstar": "0xffffffff81a00000", "cstar": "0xffffffff81a00100", "sfmask": "0x47700",
    "kernel_gs_base": "0xffff888012345000",
}
# XMMn byte j = 16 * n + j, shown as one little-endian 128-bit number.
CPUSTATE_XMM = {f"xmm{n}": "0x" + "".join(f"{16 * n + j:02x}" for j in reversed(range(16)))
                for n in range(16)}
X87_ZERO = "0x" + "0" * 20
X87_ONE = "0x3fff8000000000000000"
X87_PI = "0x4000c90fdaa22168c235"   # FLDPI, rounded to nearest


def start_cpustate(rpc, name, **kw):
    """cpustate.elf counting in ring 3 (R15), its known registers loaded."""
    create_vm(rpc, name, kernel="cpustate.elf", **kw)
    rpc.result("vm.start", {"name": name})
    wait_for(lambda: rpc.result("vcpu.registers", {"name": name})["cpl"] == 3 and
             int(rpc.result("vcpu.registers", {"name": name})["r15"], 16) > 0,
             what="cpustate counting in ring 3")


def test_registers_show_x87_sse_msrs_and_tsc(daemon, rpc):
    start_cpustate(rpc, "fp")
    rpc.result("vm.pause", {"name": "fp"})
    r = rpc.result("vcpu.registers", {"name": "fp"})
    fpu = r["fpu"]
    assert fpu["fcw"] == "0x27f" and fpu["mxcsr"] == "0xbfc0"
    assert fpu["fsw"] == "0x2800"    # TOP = 5 after three loads
    assert fpu["ftw"] == "0xe0"      # abridged: physical registers 5-7 in use
    assert (fpu["st0"], fpu["st1"], fpu["st2"]) == (X87_ZERO, X87_PI, X87_ONE)
    assert all(fpu[f"st{i}"] == X87_ZERO for i in range(3, 8))  # as RESET left them
    assert {k: fpu[k] for k in CPUSTATE_XMM} == CPUSTATE_XMM
    for key in ("fop", "fip", "fdp"):
        assert re.fullmatch(r"0x[0-9a-f]+", fpu[key]), key
    assert {k: r["msrs"][k] for k in CPUSTATE_MSRS} == CPUSTATE_MSRS
    assert r["msrs"]["pat"] == "0x7040600070406"  # its RESET value
    assert r["xcr0"] == "0x1"
    # Paused, the TSC is the one the vCPU stopped with; it moves on when it runs.
    assert rpc.result("vcpu.registers", {"name": "fp"})["tsc"] == r["tsc"]
    rpc.result("vm.resume", {"name": "fp"})
    time.sleep(0.05)
    rpc.result("vm.pause", {"name": "fp"})
    assert int(rpc.result("vcpu.registers", {"name": "fp"})["tsc"], 16) > int(r["tsc"], 16)

    text = daemon.vmctl("regs", "fp").stdout
    assert "fcw=0x27f fsw=0x2800 ftw=0xe0 " in text and " mxcsr=0xbfc0\n" in text
    assert f"st1={X87_PI} st2={X87_ONE} " in text
    assert f"xmm14={CPUSTATE_XMM['xmm14']} xmm15={CPUSTATE_XMM['xmm15']}\n" in text
    for name, value in CPUSTATE_MSRS.items():
        assert f"{name}={value}" in text, name
    assert re.search(r"^tsc=0x[0-9a-f]+$", text, re.M)
    assert re.search(r"^cs   sel=0x23 .* dpl=3 P S L G  code, execute/read, accessed$", text, re.M)
    assert re.search(r"^fs   sel=0x0 .* - unusable  unusable$", text, re.M)
    assert re.search(r"^tr   .* P  system: TSS \(busy\)$", text, re.M)
    j = json.loads(daemon.vmctl("regs", "fp", json_out=True).stdout)
    assert j["fpu"] == rpc.result("vcpu.registers", {"name": "fp"})["fpu"]
    assert j["msrs"]["lstar"] == "0xffffffff81a00000"
    rpc.result("vm.stop", {"name": "fp"})


# Not anchored at the line's start: a reset can cut the line the guest was
# printing short, and the new boot's line then follows it ("tickboot=1 ...").
BOOT_LINE = r"boot=(\d+) image=(\w+) info=(\w+) mbi=(0x[0-9a-f]+)$"
# struct multiboot_info up to boot_loader_name (tests/guests/lib/guest.h), the
# part bootcount checks, and the byte it writes over everything the loader
# handed over.
MBI_SIZE = 68
SCRIBBLE = 0xA5


def boots(rpc, name):
    return [m[:3] for m in re.findall(BOOT_LINE, log_of(rpc, name), re.M)]


def assert_boot_info_scribbled(rpc, name):
    """bootcount has overwritten the multiboot information it checked: a
    later "info=ok" can only come from the loader writing it again."""
    mbi = int(re.findall(BOOT_LINE, log_of(rpc, name), re.M)[-1][3], 16)
    data = base64.b64decode(rpc.result("vm.memory.read",
                                       {"name": name, "addr": mbi, "len": MBI_SIZE})["data"])
    assert data == bytes([SCRIBBLE]) * MBI_SIZE, data.hex()


def test_reset_reboots_with_a_fresh_image_and_boot_information(daemon, rpc):
    create_vm(rpc, "b", kernel="bootcount.elf", vcpus=2, cmdline="some=words here")
    pid = rpc.result("vm.start", {"name": "b"})["pid"]
    wait_for(lambda: len(boots(rpc, "b")) == 1, what="the first boot")
    assert_boot_info_scribbled(rpc, "b")
    for n in (2, 3):
        info = rpc.result("vm.reset", {"name": "b"})
        assert info["state"] == "running" and info["pid"] == pid
        wait_for(lambda: len(boots(rpc, "b")) == n, what=f"boot {n}")
        assert_boot_info_scribbled(rpc, "b")
    assert boots(rpc, "b") == [("1", "fresh", "ok"), ("2", "fresh", "ok"), ("3", "fresh", "ok")]
    r = daemon.vmctl("reset", "b")
    assert r.returncode == 0 and r.stdout.strip() == "b: reset, running"
    wait_for(lambda: len(boots(rpc, "b")) == 4, what="boot 4")
    assert boots(rpc, "b")[3] == ("4", "fresh", "ok")
    rpc.result("vm.stop", {"name": "b"})


def smp_rounds(rpc, name):
    """The smp guest's reports, one list of AP IDs per boot that completed."""
    rounds, current = [], None
    text = log_of(rpc, name)
    for line in text[:text.rfind("\n") + 1].splitlines():  # whole lines only
        if line.startswith("smp: cpus="):
            current = []
        elif line.startswith("ap=") and current is not None:
            current.append(int(line[3:]))
        elif line.startswith("smp: all ") and current is not None:
            rounds.append(sorted(current))
            current = None
    return rounds


# KVM_MP_STATE_* (KVM api.rst) and the vCPU state format's mp_state
# section (docs/vcpu.md §5).
MP_RUNNABLE, MP_INIT_RECEIVED = 0, 2
SECTION_MP_STATE = 9


def mp_state(rpc, name, vcpu):
    """The MP state a paused vCPU's saved state carries."""
    blob = base64.b64decode(rpc.result("vcpu.state.save", {"name": name, "vcpu": vcpu})["state"])
    at = 32
    while at + 8 <= len(blob) - 8:
        kind, _, length = struct.unpack_from("<HHI", blob, at)
        if kind == SECTION_MP_STATE:
            return struct.unpack_from("<I", blob, at + 8)[0]
        at += 8 + (length + 7) // 8 * 8
    raise AssertionError("no mp_state section")


def test_reset_puts_started_aps_back_to_wait_for_sipi(daemon, rpc):
    # The smp guest starts every AP (INIT-SIPI-SIPI), each reports in and
    # halts in protected mode; the BSP halts too (halt=1).
    create_vm(rpc, "s", kernel="smp.elf", vcpus=4, cmdline="cpus=4 halt=1")
    rpc.result("vm.start", {"name": "s"})
    wait_for(lambda: len(smp_rounds(rpc, "s")) == 1, what="every AP up")
    assert smp_rounds(rpc, "s") == [[1, 2, 3]]
    for vcpu in (1, 2, 3):
        r = rpc.result("vcpu.registers", {"name": "s", "vcpu": vcpu})
        assert r["mode"] == "protected" and "PE" in r["cr0_bits"], r
    signature = next(e for e in rpc.result("vcpu.cpuid", {"name": "s", "vcpu": 1})["entries"]
                     if e["function"] == "0x1")["eax"]

    # Reset while paused: every AP is back at the architectural RESET state
    # (SDM Vol. 3A Table 9-1), in real mode, with paging off.
    rpc.result("vm.pause", {"name": "s"})
    assert rpc.result("vm.reset", {"name": "s"})["state"] == "paused"
    for vcpu in (1, 2, 3):
        r = rpc.result("vcpu.registers", {"name": "s", "vcpu": vcpu})
        assert r["mode"] == "real" and r["cpl"] == 0
        assert (r["rip"], r["rflags"], r["rflags_bits"], r["iopl"]) == ("0xfff0", "0x2", [], 0)
        assert r["rdx"] == signature and r["rax"] == "0x0" and r["rsp"] == "0x0"
        assert (r["cs"]["selector"], r["cs"]["base"], r["cs"]["limit"]) == ("0xf000", "0xffff0000", "0xffff")
        assert (r["cr0"], r["cr3"], r["cr4"], r["efer"]) == ("0x60000010", "0x0", "0x0", "0x0")
        assert r["apic_base"] == "0xfee00800"  # enabled, not the BSP
        assert (r["dr6"], r["dr7"]) == ("0xffff0ff0", "0x400")
        assert rpc.result("vcpu.role", {"name": "s", "vcpu": vcpu})["mode"] == "none"
        assert mp_state(rpc, "s", vcpu) == MP_INIT_RECEIVED
    assert mp_state(rpc, "s", 0) == MP_RUNNABLE
    # Waiting for a SIPI: resumed, no AP runs from its reset vector (there
    # is no firmware there); the BSP boots the guest again, which starts
    # every AP with INIT-SIPI-SIPI, and each reports in once more.
    rpc.result("vm.resume", {"name": "s"})
    wait_for(lambda: len(smp_rounds(rpc, "s")) == 2, what="every AP up after the reset")
    assert smp_rounds(rpc, "s") == [[1, 2, 3], [1, 2, 3]]
    assert rpc.result("vm.info", {"name": "s"})["state"] == "running"
    rpc.result("vm.stop", {"name": "s"})


def test_reset_of_a_paused_vm_stays_paused(rpc):
    create_vm(rpc, "bp", kernel="bootcount.elf")
    rpc.result("vm.start", {"name": "bp"})
    wait_for(lambda: len(boots(rpc, "bp")) == 1, what="the first boot")
    rpc.result("vm.pause", {"name": "bp"})
    assert rpc.result("vm.reset", {"name": "bp"})["state"] == "paused"
    # The reset vCPU sits at the loader's entry point until resumed.
    regs = rpc.result("vcpu.registers", {"name": "bp"})
    assert regs["mode"] == "protected" and regs["cr0"] == "0x11"
    # The loader's entry state: interrupts off, IOPL 0, only the fixed bit 1.
    assert (regs["rflags"], regs["rflags_bits"], regs["iopl"]) == ("0x2", [], 0)
    time.sleep(0.2)
    assert len(boots(rpc, "bp")) == 1
    rpc.result("vm.resume", {"name": "bp"})
    wait_for(lambda: len(boots(rpc, "bp")) == 2, what="the boot after resume")
    rpc.result("vm.stop", {"name": "bp"})


def counting_vm_with_own_kernel(rpc, name, tmp_path):
    """A running counter guest whose kernel file the test may delete or replace."""
    kernel = tmp_path / f"{name}.elf"
    shutil.copy(guest("counter.elf"), kernel)
    rpc.result("vm.create", {"name": name, "memory": 32, "kernel": str(kernel),
                             "cmdline": "period_ms=10 gap_ms=5000"})
    pid = rpc.result("vm.start", {"name": name})["pid"]
    wait_for(lambda: len(ticks(log_of(rpc, name))) >= 3, what=f"{name} ticking")
    return kernel, pid


def assert_still_counting(rpc, name, pid):
    """Running with the same worker, ticking on from where it was: no reboot."""
    info = rpc.result("vm.info", {"name": name})
    assert info["state"] == "running" and info["pid"] == pid
    seen = len(ticks(log_of(rpc, name)))
    wait_for(lambda: len(ticks(log_of(rpc, name))) >= seen + 3, what=f"{name} ticking on")
    text = log_of(rpc, name)
    assert text.count("counter: period_ms=") == 1, "the guest was restarted"
    assert ticks(text) == list(range(1, len(ticks(text)) + 1))


def cut_after_multiboot_header(path):
    good = open(guest("counter.elf"), "rb").read()
    path.write_bytes(good[:good.find((0x1BADB002).to_bytes(4, "little")) + 48])


def replace_with_directory(path):
    path.unlink()
    path.mkdir()


BROKEN_KERNELS = {
    "deleted": (lambda p: p.unlink(), "No such file or directory"),
    "garbage": (lambda p: p.write_bytes(b"just some text\n" * 100), "no multiboot header"),
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "truncated": (cut_after_multiboot_header, "extend beyond the end of the file"),
    "directory": (replace_with_directory, "is a directory"),
}


@pytest.mark.parametrize("what", BROKEN_KERNELS)
def test_reset_with_a_broken_kernel_file_changes_nothing(rpc, tmp_path, what):
    kernel, pid = counting_vm_with_own_kernel(rpc, "k", tmp_path)
    other_pid = counting_vm_with_own_kernel(rpc, "other", tmp_path)[1]
    break_it, fragment = BROKEN_KERNELS[what]
    break_it(kernel)
    err = rpc.error("vm.reset", {"name": "k"})
    assert err["code"] == -32010, err
    assert err["message"].startswith(f"VM not reset, nothing changed: kernel '{kernel}': "), err
    assert fragment in err["message"], err
    assert_still_counting(rpc, "k", pid)
    assert_still_counting(rpc, "other", other_pid)
    # Paused, it stays paused and resumes where it was.
    rpc.result("vm.pause", {"name": "k"})
    assert rpc.error("vm.reset", {"name": "k"})["code"] == -32010
    assert rpc.result("vm.info", {"name": "k"})["state"] == "paused"
    rpc.result("vm.resume", {"name": "k"})
    assert_still_counting(rpc, "k", pid)
    # With the file back, reset works again.
    if kernel.is_dir():
        kernel.rmdir()
    shutil.copy(guest("counter.elf"), kernel)
    assert rpc.result("vm.reset", {"name": "k"})["state"] == "running"
    wait_for(lambda: log_of(rpc, "k").count("counter: period_ms=") == 2, what="the reboot")
    for name in ("k", "other"):
        rpc.result("vm.stop", {"name": name})


def test_reset_boots_a_rebuilt_kernel(rpc, tmp_path):
    # vm.reset reads the kernel file again, as a reboot would: a kernel
    # rebuilt in place is the one that boots.
    kernel, pid = counting_vm_with_own_kernel(rpc, "rb", tmp_path)
    shutil.copy(guest("bootcount.elf"), kernel)
    info = rpc.result("vm.reset", {"name": "rb"})
    assert info["state"] == "running" and info["pid"] == pid
    wait_for(lambda: len(boots(rpc, "rb")) == 1, what="the new kernel")
    assert boots(rpc, "rb") == [("1", "fresh", "ok")]
    rpc.result("vm.stop", {"name": "rb"})


def test_start_with_the_kernel_file_gone(rpc, tmp_path):
    kernel = tmp_path / "gone.elf"
    shutil.copy(guest("hello.elf"), kernel)
    rpc.result("vm.create", {"name": "g", "memory": 32, "kernel": str(kernel)})
    kernel.unlink()
    err = rpc.error("vm.start", {"name": "g"})
    assert err["code"] == -32010 and f"kernel '{kernel}': No such file" in err["message"], err
    assert rpc.result("vm.info", {"name": "g"})["state"] == "defined"


def test_power_on_state_is_the_state_after_reset(rpc):
    # The AP of a VM whose guest never starts it keeps its power-on state:
    # what KVM_CREATE_VCPU left must be what vm.reset gives.
    create_vm(rpc, "po", kernel="echo.elf", vcpus=2)
    rpc.result("vm.start", {"name": "po"})
    rpc.result("vm.pause", {"name": "po"})
    first = rpc.result("vcpu.registers", {"name": "po", "vcpu": 1})
    assert rpc.result("vm.reset", {"name": "po"})["state"] == "paused"
    after_reset = rpc.result("vcpu.registers", {"name": "po", "vcpu": 1})
    # Every register but the TSC, which counts the time since RESET wrote it
    # (and keeps counting from boot on hosts that ignore the write).
    assert int(first.pop("tsc"), 16) != int(after_reset.pop("tsc"), 16)
    assert first == after_reset
    # And it is the architectural RESET state (SDM Vol. 3A Table 9-1).
    leaf1 = next(e for e in rpc.result("vcpu.cpuid", {"name": "po", "vcpu": 1})["entries"]
                 if e["function"] == "0x1")
    assert first["rdx"] == leaf1["eax"]
    assert first["rip"] == "0xfff0" and first["cs"]["selector"] == "0xf000"
    assert first["cr0"] == "0x60000010" and first["rflags"] == "0x2"
    assert first["apic_base"] == "0xfee00800"  # enabled, not the BSP
    rpc.result("vm.stop", {"name": "po"})


def test_cpu_policy_reaches_kvm(rpc):
    create_vm(rpc, "cpu1", kernel="echo.elf", vcpus=2,
              cpu={"features": {"x2apic": False, "cx16": False}, "max_phys_bits": 40})
    info = rpc.result("vm.info", {"name": "cpu1"})
    assert info["cpu"] == {"features": {"x2apic": False, "cx16": False}, "max_phys_bits": 40}
    rpc.result("vm.start", {"name": "cpu1"})
    for vcpu in (0, 1):
        c = rpc.result("vcpu.cpuid", {"name": "cpu1", "vcpu": vcpu})
        assert c["features"]["x2apic"] is False and c["features"]["cx16"] is False
        assert c["max_phys_bits"] == 40
        leaf1 = next(e for e in c["entries"] if e["function"] == "0x1")
        assert int(leaf1["ecx"], 16) & (1 << 21) == 0  # CPUID.1:ECX[21] x2APIC
        assert int(leaf1["ecx"], 16) & (1 << 13) == 0  # CPUID.1:ECX[13] CMPXCHG16B
        assert (int(leaf1["ebx"], 16) >> 24) == vcpu   # APIC ID per vCPU
    plain = rpc.result("vm.info", {"name": "cpu1"})
    rpc.result("vm.stop", {"name": "cpu1"})
    assert plain["cpu"]["features"]["x2apic"] is False


def test_cpu_policy_change_of_a_running_vm_is_refused(rpc):
    # cx16: a feature this host's KVM reports faithfully (docs/host-notes.md:
    # KVM_GET_CPUID2 here shows some host features, avx among them, as set
    # whatever was asked).
    create_vm(rpc, "cpu2", kernel="echo.elf")
    rpc.result("vm.start", {"name": "cpu2"})
    assert rpc.result("vcpu.cpuid", {"name": "cpu2"})["features"]["cx16"] is True
    err = rpc.error("vm.update", {"name": "cpu2", "cpu": {"features": {"cx16": False}}})
    assert err["code"] == -32003
    assert "the CPU model is fixed once a VM runs" in err["message"]
    rpc.result("vm.stop", {"name": "cpu2"})
    info = rpc.result("vm.update", {"name": "cpu2", "cpu": {"features": {"cx16": False}}})
    assert info["cpu"]["features"] == {"cx16": False}
    rpc.result("vm.start", {"name": "cpu2"})
    assert rpc.result("vcpu.cpuid", {"name": "cpu2"})["features"]["cx16"] is False
    rpc.result("vm.stop", {"name": "cpu2"})


BAD_CPU = [
    ({"features": {"warp-drive": False}}, "parameter 'cpu.features': CPU feature 'warp-drive' is unknown; known features: "),
    ({"features": {"x2apic": "no"}}, "parameter 'cpu.features.x2apic' must be a boolean"),
    ({"features": ["x2apic"]}, "parameter 'cpu.features' must be an object"),
    ({"max_phys_bits": 20}, "parameter 'cpu.max_phys_bits' must be 0 (the host's) or an integer between 32 and 52"),
    ({"max_phys_bits": "40"}, "parameter 'cpu.max_phys_bits'"),
    ({"colour": 1}, "parameter 'cpu': unknown member 'colour' (known: features, max_phys_bits)"),
    ("x2apic", "parameter 'cpu' must be an object"),
]


@pytest.mark.parametrize("cpu,fragment", BAD_CPU)
def test_bad_cpu_policies(rpc, cpu, fragment):
    err = rpc.error("vm.create", {"name": "x", "memory": 32, "kernel": "/k", "cpu": cpu})
    assert err["code"] == -32602 and fragment in err["message"], err
    assert rpc.result("vm.list")["vms"] == []


def test_unknown_feature_lists_the_known_ones(rpc):
    from conftest import guest
    err = rpc.error("vm.create", {"name": "x", "memory": 32, "kernel": guest("echo.elf"),
                                  "cpu": {"features": {"x2apc": False}}})
    assert "x2apic" in err["message"] and "xsave" in err["message"]


def test_paused_vm_survives_a_vmmd_restart_paused(make_daemon):
    d = make_daemon()
    with d.rpc() as r:
        create_vm(r, "zz", kernel="echo.elf")
        pid = r.result("vm.start", {"name": "zz"})["pid"]
        r.result("vm.pause", {"name": "zz"})
    assert d.stop(stop_vms=False) == 0
    d.log.close()
    d.start()
    with d.rpc() as r:
        info = r.result("vm.info", {"name": "zz"})
        assert info["state"] == "paused" and info["pid"] == pid
        r.result("vm.resume", {"name": "zz"})
        r.result("vm.stop", {"name": "zz"})


def test_vmctl_pause_and_resume(daemon, rpc):
    create_vm(rpc, "v", kernel="echo.elf")
    pid = rpc.result("vm.start", {"name": "v"})["pid"]
    r = daemon.vmctl("pause", "v")
    assert (r.returncode, r.stdout, r.stderr) == (0, "v: paused (paused by vm.pause)\n", "")
    assert rpc.result("vm.info", {"name": "v"})["state"] == "paused"
    r = daemon.vmctl("pause", "v")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "vmctl: VM 'v' is paused; vm.pause needs running\n"
    r = daemon.vmctl("resume", "v", json_out=True)
    assert r.returncode == 0
    info = json.loads(r.stdout)
    assert (info["name"], info["state"], info["reason"]) == ("v", "running", "resumed by vm.resume")
    r = daemon.vmctl("resume", "v")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "vmctl: VM 'v' is running; vm.resume needs paused\n"
    for args, message in ((("pause", "nope"), "vmctl: VM 'nope' not found\n"),
                          (("resume", "nope"), "vmctl: VM 'nope' not found\n")):
        r = daemon.vmctl(*args)
        assert (r.returncode, r.stderr) == (1, message)
    for cmd in ("pause", "resume"):
        r = daemon.vmctl(cmd)
        assert r.returncode == 2 and r.stderr.startswith(f"vmctl: {cmd}: missing NAME\nUsage: ")
    # None of it disturbed the VM: same worker, running, echoing.
    info = rpc.result("vm.info", {"name": "v"})
    assert (info["state"], info["pid"]) == ("running", pid)
    rpc.result("vm.stop", {"name": "v"})


def test_vmctl_regs_vcpu_option(daemon, rpc):
    create_vm(rpc, "r", kernel="smp.elf", vcpus=2, cmdline="cpus=2 halt=1")
    rpc.result("vm.start", {"name": "r"})
    wait_for(lambda: len(smp_rounds(rpc, "r")) == 1, what="both CPUs up")
    rpc.result("vm.pause", {"name": "r"})
    before = [rpc.result("vcpu.registers", {"name": "r", "vcpu": i}) for i in (0, 1)]
    r = daemon.vmctl("regs", "r", "--vcpu", "1")
    assert r.returncode == 0 and r.stdout.startswith("vcpu 1: protected mode, CPL 0\n")
    assert f"rip={before[1]['rip']} " in r.stdout
    j = json.loads(daemon.vmctl("regs", "r", "--vcpu", "1", json_out=True).stdout)
    assert j == before[1]
    assert json.loads(daemon.vmctl("regs", "r", json_out=True).stdout) == before[0]
    bad = [
        ("2", 1, "vmctl: parameter 'vcpu' must be between 0 and 1 (VM 'r' has 2 vCPUs), got 2\n"),
        ("4096", 2, "vmctl: --vcpu needs a vCPU number, got '4096'\n"),
        ("-1", 2, "vmctl: --vcpu needs a vCPU number, got '-1'\n"),
        ("x", 2, "vmctl: --vcpu needs a vCPU number, got 'x'\n"),
        ("1.5", 2, "vmctl: --vcpu needs a vCPU number, got '1.5'\n"),
        ("", 2, "vmctl: --vcpu needs a vCPU number, got ''\n"),
    ]
    for value, code, message in bad:
        r = daemon.vmctl("regs", "r", "--vcpu", value)
        assert (r.returncode, r.stdout) == (code, ""), value
        if code == 2:
            assert r.stderr.startswith(message + "Usage: vmctl [--socket PATH] [--json] regs NAME [--vcpu N]\n")
        else:
            assert r.stderr == message
    # The VM is as it was: paused, every vCPU's registers unchanged.
    assert rpc.result("vm.info", {"name": "r"})["state"] == "paused"
    assert [rpc.result("vcpu.registers", {"name": "r", "vcpu": i}) for i in (0, 1)] == before
    rpc.result("vm.stop", {"name": "r"})


NAME_ERRORS = [
    ({}, -32602, "missing required parameter 'name'"),
    ({"name": 5}, -32602, "parameter 'name' must be a string, got integer"),
    ({"name": None}, -32602, "parameter 'name' must be a string, got null"),
    ({"name": ["b"]}, -32602, "parameter 'name' must be a string, got array"),
    ({"name": "nope"}, -32001, "VM 'nope' not found"),
    ({"name": "b", "colour": 1}, -32602, "unknown parameter 'colour'"),
]
VCPU_ERRORS = [
    ({"name": "b", "vcpu": "1"}, -32602, "parameter 'vcpu' must be an integer, got string"),
    ({"name": "b", "vcpu": -1}, -32602,
     "parameter 'vcpu' must be between 0 and 1 (VM 'b' has 2 vCPUs), got -1"),
    ({"name": "b", "vcpu": 1.5}, -32602, "parameter 'vcpu' must be an integer, got number"),
    ({"name": "b", "vcpu": True}, -32602, "parameter 'vcpu' must be an integer, got boolean"),
    ({"name": "b", "vcpu": 2}, -32602,
     "parameter 'vcpu' must be between 0 and 1 (VM 'b' has 2 vCPUs), got 2"),
]
BAD_INPUT = ([(m, p, c, msg) for m in ("vm.pause", "vm.resume", "vm.reset", "vcpu.registers",
                                        "vcpu.cpuid") for p, c, msg in NAME_ERRORS] +
             [(m, p, c, msg) for m in ("vcpu.registers", "vcpu.cpuid") for p, c, msg in VCPU_ERRORS] +
             [(m, {"name": "b", "vcpu": 1}, -32602, "unknown parameter 'vcpu'")
              for m in ("vm.pause", "vm.resume", "vm.reset")])


def test_bad_input_to_the_vcpu_methods(rpc):
    create_vm(rpc, "b", kernel="bootcount.elf", vcpus=2)
    pid = rpc.result("vm.start", {"name": "b"})["pid"]
    wait_for(lambda: len(boots(rpc, "b")) == 1, what="the first boot")
    for method, params, code, message in BAD_INPUT:
        assert rpc.error(method, params) == {"code": code, "message": message}, (method, params)
    # Refused before anything was done: still running its first boot, in
    # the same worker, never paused or reset.
    info = rpc.result("vm.info", {"name": "b"})
    assert (info["state"], info["pid"], info["reason"]) == ("running", pid, "started")
    assert len(boots(rpc, "b")) == 1
    rpc.result("vm.stop", {"name": "b"})


def test_cpu_policy_change_of_a_paused_vm_is_refused(rpc):
    policy = {"features": {"x2apic": False}}
    create_vm(rpc, "cp", kernel="echo.elf", cpu=policy)
    rpc.result("vm.start", {"name": "cp"})
    rpc.result("vm.pause", {"name": "cp"})
    err = rpc.error("vm.update", {"name": "cp", "cpu": {"features": {"cx16": False}}})
    assert err["code"] == -32003
    assert err["message"].startswith("VM 'cp' is paused and the CPU model is fixed once a VM runs")
    info = rpc.result("vm.info", {"name": "cp"})
    assert info["state"] == "paused" and info["cpu"] == dict(policy, max_phys_bits=0)
    assert rpc.result("vcpu.cpuid", {"name": "cp"})["features"]["cx16"] is True
    rpc.result("vm.stop", {"name": "cp"})


def test_cpu_policy_survives_a_vmmd_restart(make_daemon):
    d = make_daemon()
    policy = {"features": {"x2apic": False, "cx16": False}, "max_phys_bits": 40}
    with d.rpc() as r:
        create_vm(r, "keep", kernel="echo.elf", cpu=policy)
    stored = json.loads((d.state_dir / "vms" / "keep.json").read_text())
    assert stored["definition"]["cpu"] == policy
    assert d.stop() == 0
    d.log.close()
    d.start()
    with d.rpc() as r:
        assert r.result("vm.info", {"name": "keep"})["cpu"] == policy
        r.result("vm.start", {"name": "keep"})
        c = r.result("vcpu.cpuid", {"name": "keep"})
        assert c["features"]["x2apic"] is False and c["features"]["cx16"] is False
        assert c["max_phys_bits"] == 40
        r.result("vm.stop", {"name": "keep"})


CORRUPT_CPU = [
    ({"features": {"warp-drive": False}}, "parameter 'cpu.features': CPU feature 'warp-drive' is unknown"),
    ({"features": {"x2apic": "no"}}, "parameter 'cpu.features.x2apic' must be a boolean"),
    ({"max_phys_bits": 99}, "parameter 'cpu.max_phys_bits' must be 0 (the host's) or an integer between 32 and 52"),
    ("x2apic", "parameter 'cpu' must be an object"),
]


@pytest.mark.parametrize("cpu,fragment", CORRUPT_CPU)
def test_corrupt_stored_cpu_policy_makes_the_vm_broken(make_daemon, cpu, fragment):
    d = make_daemon()
    with d.rpc() as r:
        create_vm(r, "bad", kernel="echo.elf", cpu={"features": {"x2apic": False}})
        create_vm(r, "good", kernel="echo.elf")
    assert d.stop() == 0
    path = d.state_dir / "vms" / "bad.json"
    stored = json.loads(path.read_text())
    stored["definition"]["cpu"] = cpu
    path.write_text(json.dumps(stored))
    d.log.close()
    d.start()
    with d.rpc() as r:
        info = r.result("vm.info", {"name": "bad"})
        assert info["state"] == "broken"
        assert fragment in info["reason"] and str(path) in info["reason"], info["reason"]
        err = r.error("vm.start", {"name": "bad"})
        assert err["code"] == -32003 and "VM 'bad' is broken" in err["message"]
        assert r.result("vm.info", {"name": "good"})["state"] == "defined"
        # A whole definition with a valid policy repairs it.
        info = r.result("vm.update", {"name": "bad", "memory": 32, "kernel": guest("echo.elf"),
                                      "cpu": {"features": {"x2apic": False}}})
        assert info["state"] == "defined" and info["cpu"]["features"] == {"x2apic": False}
