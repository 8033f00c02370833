# vcpu.state.save and vcpu.state.load through the daemon, and vmctl state:
# a paused vCPU's complete state round-trips byte for byte (but for the
# TSC on hosts that ignore TSC writes), the guest goes back to the saved
# point and continues from there, and every bad input is refused with an
# error naming the field, the VM still paused and unchanged, other VMs
# unaffected.
import base64
import json
import os
import re
import struct
import time

import pytest

from conftest import Daemon, Rpc, create_vm, needs_kvm, running, wait_for

pytestmark = needs_kvm

# docs/vcpu.md §5.
HEADER = struct.Struct("<8sHHIIIQ")   # magic, version, header size, flags, vcpu, sections, length
SECTION = struct.Struct("<HHI")       # type, flags, payload length
REGS, SREGS2, MSRS = 1, 2, 6
MSR_IA32_TSC = 0x10
RFLAGS_OFFSET = 17 * 8                # struct kvm_regs: 16 GPRs, rip, rflags
CR4_OFFSET = 8 * 24 + 2 * 16 + 3 * 8  # struct kvm_sregs2: 8 segments, gdt, idt, cr0 cr2 cr3
CR4_PAE = 1 << 5
STATE_MAX = 512 * 1024                # VM_VCPU_STATE_MAX
STATE_BASE64_MAX = (STATE_MAX + 2) // 3 * 4


def crc32c_table():
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ (0x82F63B78 if n & 1 else 0)
        table.append(n)
    return table


CRC32C_TABLE = crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as the format's trailer holds it."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sections(blob):
    """{type: (offset of the payload, length)} of a serialized state."""
    magic, version, hsize, flags, vcpu, count, total = HEADER.unpack_from(blob)
    assert magic == b"VMMDVCPU" and total == len(blob)
    found, at = {}, hsize
    for _ in range(count):
        kind, _, length = SECTION.unpack_from(blob, at)
        found[kind] = (at + SECTION.size, length)
        at += SECTION.size + (length + 7) // 8 * 8
    return found


def tsc_offset(blob):
    """Where IA32_TSC's value is in the msrs section."""
    at, length = sections(blob)[MSRS]
    count = struct.unpack_from("<I", blob, at)[0]
    for i in range(count):
        index = struct.unpack_from("<I", blob, at + 8 + 16 * i)[0]
        if index == MSR_IA32_TSC:
            return at + 8 + 16 * i + 8
    raise AssertionError("IA32_TSC is not in the saved MSRs")


def with_checksum(blob):
    """blob with its trailer's CRC recomputed (for deliberately changed states)."""
    body = blob[:-8]
    return body + struct.pack("<II", crc32c(body), 0)


def b64(blob):
    return base64.b64encode(blob).decode()


def regs(rpc, name, vcpu=0):
    return rpc.result("vcpu.registers", {"name": name, "vcpu": vcpu})


def r15(rpc, name):
    return int(regs(rpc, name)["r15"], 16)


def log_of(rpc, name):
    return open(rpc.result("vm.info", {"name": name})["console_log"]).read()


def ticks(rpc, name):
    return [int(n) for n in re.findall(r"^tick=(\d+)$", log_of(rpc, name), re.M)]


def start_cpustate(rpc, name, vcpus=1):
    """cpustate.elf counting in R15 in ring 3 (tests/guests/cpustate)."""
    create_vm(rpc, name, kernel="cpustate.elf", vcpus=vcpus)
    rpc.result("vm.start", {"name": name})
    wait_for(lambda: regs(rpc, name)["cpl"] == 3 and r15(rpc, name) > 0,
             what=f"{name} counting in ring 3")


def start_bystander(rpc):
    """Another VM, whose guest must not notice anything."""
    create_vm(rpc, "bystander", kernel="counter.elf", cmdline="period_ms=10 gap_ms=5000")
    rpc.result("vm.start", {"name": "bystander"})
    wait_for(lambda: len(ticks(rpc, "bystander")) >= 3, what="the bystander ticking")


def assert_bystander_unaffected(rpc):
    assert rpc.result("vm.info", {"name": "bystander"})["state"] == "running"
    seen = len(ticks(rpc, "bystander"))
    wait_for(lambda: len(ticks(rpc, "bystander")) >= seen + 2, what="the bystander ticking on")
    t = ticks(rpc, "bystander")
    assert t == list(range(1, len(t) + 1)) and "GAP" not in log_of(rpc, "bystander")


def test_round_trip_goes_back_to_the_saved_point(rpc):
    start_bystander(rpc)
    start_cpustate(rpc, "rt")
    rpc.result("vm.pause", {"name": "rt"})
    saved = rpc.result("vcpu.state.save", {"name": "rt", "vcpu": 0})
    blob = base64.b64decode(saved["state"], validate=True)
    assert saved["vcpu"] == 0 and saved["format_version"] == 1 and saved["size"] == len(blob)
    assert blob[:8] == b"VMMDVCPU" and set(sections(blob)) >= {REGS, SREGS2, MSRS}
    at_save = regs(rpc, "rt")
    # Saving a paused vCPU twice gives the same bytes (its TSC is frozen).
    assert rpc.result("vcpu.state.save", {"name": "rt"})["state"] == saved["state"]

    # The guest runs on, far beyond the saved point.
    rpc.result("vm.resume", {"name": "rt"})
    wait_for(lambda: r15(rpc, "rt") >= int(at_save["r15"], 16) + (1 << 30), timeout=60,
             what="the counter to move on")
    rpc.result("vm.pause", {"name": "rt"})
    later = r15(rpc, "rt")

    loaded = rpc.result("vcpu.state.load", {"name": "rt", "vcpu": 0, "state": saved["state"]})
    assert loaded == {"vcpu": 0, "size": len(blob), "format_version": 1}
    assert rpc.result("vm.info", {"name": "rt"})["state"] == "paused"
    # Every register is back, the counter included; x87, SSE and MSRs too.
    # The TSC is the exception where the host ignores TSC writes (below).
    now = regs(rpc, "rt")
    assert int(now.pop("tsc"), 16) >= int(at_save.pop("tsc"), 16)
    assert now == at_save

    # A second save is the first one byte for byte, but for IA32_TSC (and
    # so the checksum) on hosts without TSC offsetting: there KVM ignores
    # the TSC a load writes and the vCPU keeps the host's count
    # (docs/host-notes.md). Elsewhere the load sets it and nothing differs.
    again = base64.b64decode(rpc.result("vcpu.state.save", {"name": "rt"})["state"])
    assert len(again) == len(blob)
    at = tsc_offset(blob)
    assert tsc_offset(again) == at
    tsc_saved, tsc_again = (struct.unpack_from("<Q", b, at)[0] for b in (blob, again))
    assert tsc_again >= tsc_saved
    assert again[:at] == blob[:at] and again[at + 8:-8] == blob[at + 8:-8]
    if tsc_again == tsc_saved:
        assert again == blob

    # It continues from the loaded point: after a short run the counter is
    # past the saved value and far below where it had got to.
    rpc.result("vm.resume", {"name": "rt"})
    time.sleep(0.02)
    rpc.result("vm.pause", {"name": "rt"})
    after = r15(rpc, "rt")
    assert int(at_save["r15"], 16) < after < later, (at_save["r15"], after, later)
    assert log_of(rpc, "rt").count("cpustate: msrs set") == 1, "the guest restarted"
    assert_bystander_unaffected(rpc)
    for name in ("rt", "bystander"):
        rpc.result("vm.stop", {"name": name})


def refused_problems(err):
    m = re.fullmatch(r"parameter 'state' is refused for vcpu (\d+): (\d+) problems?: (.*)",
                     err["message"])
    assert m, err
    return int(m.group(1)), int(m.group(2)), re.split(r"; \d+\) ", m.group(3)[3:])


@pytest.fixture
def paused_pair(rpc):
    """A paused two-vCPU cpustate VM with saved states of both vCPUs, and a
    running bystander."""
    start_bystander(rpc)
    start_cpustate(rpc, "st", vcpus=2)
    rpc.result("vm.pause", {"name": "st"})
    states = [rpc.result("vcpu.state.save", {"name": "st", "vcpu": v})["state"] for v in (0, 1)]
    yield states
    for vm in rpc.result("vm.list")["vms"]:
        if vm["state"] in ("running", "paused"):
            rpc.result("vm.stop", {"name": vm["name"]})


def bad_inputs(good0, good1):
    """(params, code, message or fragment) for vcpu.state.load on VM 'st'."""
    blob = base64.b64decode(good0)
    wrong_version = bytearray(blob)
    struct.pack_into("<H", wrong_version, 8, 2)
    bad_crc = bytearray(blob)
    bad_crc[sections(blob)[REGS][0]] ^= 0xFF
    at, _ = sections(blob)[REGS]
    inconsistent = bytearray(blob)
    rflags = struct.unpack_from("<Q", blob, at + RFLAGS_OFFSET)[0]
    struct.pack_into("<Q", inconsistent, at + RFLAGS_OFFSET, rflags | 1 << 3)  # reserved
    sat, _ = sections(blob)[SREGS2]
    cr4 = struct.unpack_from("<Q", blob, sat + CR4_OFFSET)[0]
    struct.pack_into("<Q", inconsistent, sat + CR4_OFFSET, cr4 & ~CR4_PAE)    # long mode needs PAE
    state = lambda b: {"name": "st", "state": b64(bytes(b))}
    return [
        (state(b"") | {"state": "not base64!"}, -32602,
         "parameter 'state' must be base64 (RFC 4648) of a vCPU state as vcpu.state.save gives it"),
        (state(b"hello"), -32602,
         "parameter 'state': vCPU state: truncated: 5 bytes, the header and trailer alone take 40"),
        (state(blob[:-100]), -32602,
         f"parameter 'state': vCPU state: truncated: the header says {len(blob)} bytes, got {len(blob) - 100}"),
        (state(blob + b"\0" * 8), -32602, "parameter 'state': vCPU state: trailing bytes: the header says"),
        (state(bad_crc), -32602, "parameter 'state': vCPU state: checksum mismatch (stored CRC-32C 0x"),
        (state(b"VMMDVCPX" + blob[8:]), -32602,
         "parameter 'state': vCPU state: not a vmmd vCPU state (magic is not \"VMMDVCPU\")"),
        (state(wrong_version), -32602,
         "parameter 'state': vCPU state: format version 2 is not supported (this vmmd reads version 1)"),
        (state(with_checksum(inconsistent)), -32602, "parameter 'state' is refused for vcpu 0: "),
        ({"name": "st", "vcpu": 0, "state": good1}, -32602,
         "parameter 'state' is refused for vcpu 0: 3 problems: 1) the state is of vcpu 1, not vcpu 0; "
         "2) the saved CPU model differs from vcpu 0's"),
        ({"name": "st", "state": "A" * (STATE_BASE64_MAX + 4)}, -32602,
         f"parameter 'state' is too long ({STATE_BASE64_MAX + 4} bytes, limit {STATE_BASE64_MAX})"),
        ({"name": "st", "state": 12}, -32602, "parameter 'state' must be a string, got integer"),
        ({"name": "st", "state": None}, -32602, "parameter 'state' must be a string, got null"),
        ({"name": "st", "state": [good0]}, -32602, "parameter 'state' must be a string, got array"),
        ({"name": "st"}, -32602, "missing required parameter 'state'"),
        ({"name": 5, "state": good0}, -32602, "parameter 'name' must be a string, got integer"),
        ({"name": "st", "vcpu": "0", "state": good0}, -32602, "parameter 'vcpu' must be an integer, got string"),
        ({"name": "st", "vcpu": 0.5, "state": good0}, -32602, "parameter 'vcpu' must be an integer, got number"),
        ({"name": "st", "vcpu": 2, "state": good0}, -32602,
         "parameter 'vcpu' must be between 0 and 1 (VM 'st' has 2 vCPUs), got 2"),
        ({"name": "st", "vcpu": -1, "state": good0}, -32602,
         "parameter 'vcpu' must be between 0 and 1 (VM 'st' has 2 vCPUs), got -1"),
        ({"name": "st", "state": good0, "file": "/etc/passwd"}, -32602, "unknown parameter 'file'"),
        ({"name": "nosuch", "state": good0}, -32001, "VM 'nosuch' not found"),
    ]


def test_bad_loads_are_refused_and_change_nothing(rpc, paused_pair):
    good0, good1 = paused_pair
    before = [regs(rpc, "st", v) for v in (0, 1)]
    for params, code, expected in bad_inputs(good0, good1):
        err = rpc.error("vcpu.state.load", params)
        assert err["code"] == code, (params.get("state", "")[:40], err)
        assert err["message"].startswith(expected), (expected, err)
        assert rpc.result("vm.info", {"name": "st"})["state"] == "paused"
        assert [regs(rpc, "st", v) for v in (0, 1)] == before, err
    assert_bystander_unaffected(rpc)
    # Still resumable, counting on from where it was paused.
    count = int(before[0]["r15"], 16)
    rpc.result("vm.resume", {"name": "st"})
    wait_for(lambda: r15(rpc, "st") > count, what="counting on")
    rpc.result("vm.pause", {"name": "st"})
    assert r15(rpc, "st") > count


def test_inconsistent_state_lists_every_problem(rpc, paused_pair):
    good0 = paused_pair[0]
    inconsistent = [p for p in bad_inputs(good0, paused_pair[1])
                    if p[2] == "parameter 'state' is refused for vcpu 0: "][0][0]
    vcpu, count, problems = refused_problems(rpc.error("vcpu.state.load", inconsistent))
    assert vcpu == 0 and count == len(problems) >= 2, problems
    assert any("RFLAGS" in p for p in problems), problems
    assert any("PAE" in p for p in problems), problems


def test_message_over_1_mib_keeps_the_connection(rpc, paused_pair):
    rpc.send({"jsonrpc": "2.0", "method": "vcpu.state.load", "id": 99,
              "params": {"name": "st", "state": "A" * (1 << 20)}})
    reply = json.loads(rpc.recv_line())
    assert reply["error"]["code"] == -32600
    assert rpc.result("vm.info", {"name": "st"})["state"] == "paused"


def test_save_and_load_need_a_paused_vm(rpc):
    create_vm(rpc, "ws", kernel="cpustate.elf")
    good = None
    for method in ("vcpu.state.save", "vcpu.state.load"):
        err = rpc.error(method, {"name": "ws", "state": "AAAA"} if method.endswith("load")
                        else {"name": "ws"})
        assert err == {"code": -32003, "message": f"VM 'ws' is defined; {method} needs paused"}
    rpc.result("vm.start", {"name": "ws"})
    rpc.result("vm.pause", {"name": "ws"})
    good = rpc.result("vcpu.state.save", {"name": "ws"})["state"]
    rpc.result("vm.resume", {"name": "ws"})
    for method, params in (("vcpu.state.save", {"name": "ws"}),
                           ("vcpu.state.load", {"name": "ws", "state": good})):
        err = rpc.error(method, params)
        assert err == {"code": -32003, "message": f"VM 'ws' is running; {method} needs paused"}
    assert rpc.result("vm.info", {"name": "ws"})["state"] == "running"
    rpc.result("vm.stop", {"name": "ws"})
    err = rpc.error("vcpu.state.load", {"name": "ws", "state": good})
    assert err == {"code": -32003, "message": "VM 'ws' is stopped; vcpu.state.load needs paused"}
    err = rpc.error("vcpu.state.save", {"name": "ws", "vcpu": 3})
    assert err["code"] == -32003


def test_bad_save_requests(rpc, paused_pair):
    for params, fragment in (
            ({"name": "st", "vcpu": 2}, "parameter 'vcpu' must be between 0 and 1 (VM 'st' has 2 vCPUs), got 2"),
            ({"name": "st", "vcpu": "1"}, "parameter 'vcpu' must be an integer, got string"),
            ({"name": ["st"]}, "parameter 'name' must be a string, got array"),
            ({}, "missing required parameter 'name'"),
            ({"name": "st", "file": "/tmp/x"}, "unknown parameter 'file'")):
        err = rpc.error("vcpu.state.save", params)
        assert err["code"] == -32602 and err["message"].startswith(fragment), err
    assert rpc.result("vm.info", {"name": "st"})["state"] == "paused"


@pytest.fixture
def with_read_only_socket():
    d = Daemon(extra_args=["--ro-socket", "placeholder"])
    d.extra_args[-1] = str(d.dir / "ro.sock")
    yield from running(d)


def test_read_only_socket_cannot_save_or_load(with_read_only_socket):
    d = with_read_only_socket
    with d.rpc() as r, Rpc(d.dir / "ro.sock") as readonly:
        start_cpustate(r, "ro")
        r.result("vm.pause", {"name": "ro"})
        good = r.result("vcpu.state.save", {"name": "ro"})["state"]
        for method, params in (("vcpu.state.save", {"name": "ro"}),
                               ("vcpu.state.load", {"name": "ro", "state": good})):
            err = readonly.error(method, params)
            assert err["code"] == -32006 and method in err["message"], err
        assert readonly.result("vm.info", {"name": "ro"})["state"] == "paused"
        r.result("vm.stop", {"name": "ro"})


# ------------------------------------------------------------------ vmctl


def test_vmctl_state_save_and_load(daemon, rpc, tmp_path):
    start_cpustate(rpc, "vs", vcpus=2)
    rpc.result("vm.pause", {"name": "vs"})
    at_save = regs(rpc, "vs")
    path = tmp_path / "vs.vcpu0"
    r = daemon.vmctl("state", "save", "vs", path)
    assert r.returncode == 0, r.stderr
    data = path.read_bytes()
    assert r.stdout == f"vs: vcpu 0 state saved to {path} ({len(data)} bytes, format version 1)\n"
    assert data == base64.b64decode(rpc.result("vcpu.state.save", {"name": "vs"})["state"])
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["vs.vcpu0"], "a temporary file was left behind"
    # Overwritten in place, atomically; --json describes what was done.
    r = daemon.vmctl("state", "save", "vs", path, "--vcpu", "1", json_out=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"name": "vs", "vcpu": 1, "file": str(path),
                                    "size": len(path.read_bytes()), "format_version": 1}
    daemon.vmctl("state", "save", "vs", path)

    rpc.result("vm.resume", {"name": "vs"})
    wait_for(lambda: r15(rpc, "vs") > int(at_save["r15"], 16) + (1 << 28), what="counting on")
    rpc.result("vm.pause", {"name": "vs"})
    r = daemon.vmctl("state", "load", "vs", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"vs: vcpu 0 state loaded from {path} ({len(data)} bytes, format version 1)\n"
    now = regs(rpc, "vs")
    now.pop("tsc"), at_save.pop("tsc")
    assert now == at_save
    r = daemon.vmctl("state", "load", "vs", path, json_out=True)
    assert json.loads(r.stdout)["size"] == len(data)
    rpc.result("vm.stop", {"name": "vs"})


def test_vmctl_state_errors(daemon, rpc, tmp_path):
    start_cpustate(rpc, "ve", vcpus=2)
    good = tmp_path / "good"
    daemon.vmctl("state", "save", "ve", good)  # refused: running
    assert not good.exists()
    rpc.result("vm.pause", {"name": "ve"})
    assert daemon.vmctl("state", "save", "ve", good).returncode == 0
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a state")
    huge = tmp_path / "huge"
    huge.write_bytes(b"\0" * ((1 << 20) + 1))
    cases = [
        (("state", "load", "ve", tmp_path / "missing"), 1,
         f"vmctl: {tmp_path / 'missing'}: No such file or directory"),
        (("state", "load", "ve", tmp_path), 1, f"vmctl: {tmp_path}: not a regular file"),
        (("state", "load", "ve", huge), 1, f"vmctl: {huge}: 1048577 bytes, more than the limit of 1048576"),
        (("state", "load", "ve", garbage), 1,
         "vmctl: parameter 'state': vCPU state: truncated: 11 bytes, the header and trailer alone take 40"),
        (("state", "load", "ve", good, "--vcpu", "1"), 1,
         "vmctl: parameter 'state' is refused for vcpu 1: "),
        (("state", "load", "ve", good, "--vcpu", "2"), 1,
         "vmctl: parameter 'vcpu' must be between 0 and 1 (VM 've' has 2 vCPUs), got 2"),
        (("state", "save", "ve", tmp_path / "no" / "dir"), 1, f"vmctl: creating {tmp_path / 'no' / 'dir'}"),
        (("state", "save", "nosuch", good), 1, "vmctl: VM 'nosuch' not found"),
        (("state", "save", "ve"), 2, "vmctl: state: missing FILE"),
        (("state", "copy", "ve", good), 2,
         "vmctl: state: unknown subcommand 'copy' (there are: save, load)"),
        (("state", "save", "ve", good, "--vcpu", "x"), 2, "vmctl: --vcpu needs a vCPU number, got 'x'"),
        (("state", "save", "ve", good, "--file", "y"), 2, "vmctl: state: unknown option '--file'"),
    ]
    before = regs(rpc, "ve")
    for args, status, message in cases:
        r = daemon.vmctl(*args)
        assert r.returncode == status, (args, r.stderr)
        assert r.stderr.startswith(message), (args, r.stderr)
        if status == 2:
            assert "Usage: vmctl" in r.stderr and "state save|load NAME FILE [--vcpu N]" in r.stderr
    assert regs(rpc, "ve") == before
    assert rpc.result("vm.info", {"name": "ve"})["state"] == "paused"
    r = daemon.vmctl("state", "load", "ve", garbage, json_out=True)
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == -32602
    help_ = daemon.vmctl("state", "--help")
    assert help_.returncode == 0 and "--vcpu N" in help_.stdout and "0600" in help_.stdout
    rpc.result("vm.resume", {"name": "ve"})
    r = daemon.vmctl("state", "load", "ve", good)
    assert r.returncode == 1 and "VM 've' is running; vcpu.state.load needs paused" in r.stderr
    rpc.result("vm.stop", {"name": "ve"})
