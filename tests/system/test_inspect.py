# Guest inspection on a live VM: vcpu.role, vm.translate, vm.memory.read,
# and their vmctl commands, against the paging test guest whose page tables
# are known (tests/guests/paging.c), and their bad-input errors.
import base64
import json
import struct

import pytest

from conftest import create_vm, needs_kvm, wait_for

pytestmark = needs_kvm

PML4, PDPT, PD_WINDOW, PT = 0x200000, 0x201000, 0x205000, 0x203000


@pytest.fixture
def paging(daemon, rpc):
    create_vm(rpc, "pg", kernel="paging.elf", vcpus=2)
    rpc.result("vm.start", {"name": "pg"})
    log = rpc.result("vm.info", {"name": "pg"})["console_log"]
    wait_for(lambda: "paging: ready" in open(log).read(), what="the guest's page tables")
    yield rpc
    rpc.call("vm.stop", {"name": "pg"})


def phys_u64(rpc, addr):
    r = rpc.result("vm.memory.read", {"name": "pg", "addr": addr, "len": 8})
    return struct.unpack("<Q", base64.b64decode(r["data"]))[0]


def test_role_of_a_4_level_guest(paging):
    r = paging.result("vcpu.role", {"name": "pg"})
    assert r["mode"] == "4-level"
    assert r["cr3"] == "0x200000"
    role = r["role"]
    assert role["level"] == 4 and role["efer_lma"] and role["efer_nx"] and role["cr0_wp"]
    assert not role["direct"]
    assert "mode=4-level" in r["text"]


def test_role_of_a_vcpu_without_paging(paging):
    # vCPU 1 never left its INIT state: paging off.
    r = paging.result("vcpu.role", {"name": "pg", "vcpu": 1})
    assert r["mode"] == "none" and r["role"]["direct"]


CASES = [
    # gva, access, user, gpa or None, error_code or None, leaf entry value
    (0x40000123, "read", True, "0x800123", None, 0x800027),
    (0x40000123, "write", True, "0x800123", None, 0x800027),
    (0x40001004, "read", True, "0x801004", None, 0x801005),
    (0x40001000, "write", True, None, 0x7, 0x801005),        # P W U: read-only page
    (0x40001000, "write", False, None, 0x3, 0x801005),       # P W: CR0.WP=1
    (0x40002000, "read", False, None, 0x0, 0x0),             # not present
    (0x40002000, "write", True, None, 0x6, 0x0),             # W U, P clear
    (0x40003000, "read", True, None, 0x5, 0x802003),         # P U: supervisor page
    (0x40003000, "write", False, "0x802000", None, 0x802003),
    (0x40004000, "fetch", True, None, 0x15, 0x8000000000803007),  # P U I: XD
    (0x40004000, "read", True, "0x803000", None, 0x8000000000803007),
]


@pytest.mark.parametrize("gva,access,user,gpa,code,leaf", CASES)
def test_translate(paging, gva, access, user, gpa, code, leaf):
    r = paging.result("vm.translate", {"name": "pg", "gva": hex(gva), "access": access,
                                       "user": user})
    assert r["mode"] == "4-level"
    assert r["gpa"] == gpa
    assert r["error_code"] == code
    if code is None:
        assert r["fault"] is None and r["page_size"] == 4096
    else:
        assert r["fault"]["type"] == "#PF" and r["fault"]["vector"] == 14
        assert r["fault"]["error_code"] == code and r["fault"]["address"] == hex(gva)
    entries = r["walk"]["entries"]
    assert [e["name"] for e in entries] == ["PML4E", "PDPTE", "PDE", "PTE"]
    assert [int(e["gpa"], 16) for e in entries] == [
        PML4, PDPT + 8, PD_WINDOW, PT + 8 * ((gva >> 12) & 511)]
    assert int(entries[-1]["value"], 16) == leaf


def test_translate_a_2_mib_identity_page(paging):
    r = paging.result("vm.translate", {"name": "pg", "gva": 0x123456})
    assert r["gpa"] == "0x123456" and r["page_size"] == 2 << 20
    assert len(r["walk"]["entries"]) == 3


def test_translate_with_paging_off(paging):
    # vCPU 1 never left its INIT state: the linear address is the physical
    # one, there is no page and nothing is walked.
    r = paging.result("vm.translate", {"name": "pg", "vcpu": 1, "gva": "0x800123",
                                       "access": "write", "user": True})
    assert r["mode"] == "none" and r["vcpu"] == 1
    assert r["gpa"] == "0x800123" and r["page_size"] is None
    assert r["fault"] is None and r["error_code"] is None
    assert r["walk"]["entries"] == []
    assert "result gpa=0x800123 page=identity rights=all" in r["text"]
    # A virtual read there is a physical one.
    r = paging.result("vm.memory.read", {"name": "pg", "vcpu": 1, "addr": "0x800100",
                                         "len": 256, "virtual": True})
    assert base64.b64decode(r["data"]) == bytes(range(256))


def test_translate_non_canonical_and_unmapped_halves(paging):
    r = paging.result("vm.translate", {"name": "pg", "gva": "0x8000000000000000"})
    assert r["fault"]["type"] == "#GP" and r["error_code"] == 0
    r = paging.result("vm.translate", {"name": "pg", "gva": "0x7fff00000000"})
    assert r["fault"]["type"] == "#PF" and r["fault"]["level"] == 4
    # The largest address, given as a string (as a JSON integer it is refused).
    r = paging.result("vm.translate", {"name": "pg", "gva": "0xffffffffffffffff"})
    assert r["gva"] == "0xffffffffffffffff"
    assert r["fault"]["type"] == "#PF" and r["fault"]["level"] == 4


def test_inspection_never_sets_accessed_bits(paging):
    before = phys_u64(paging, PT + 8)  # PTE of 0x40001000, never touched by the guest
    assert before & 0x20 == 0
    paging.result("vm.translate", {"name": "pg", "gva": 0x40001000, "user": True})
    paging.result("vm.memory.read", {"name": "pg", "addr": 0x40001000, "len": 16,
                                     "virtual": True})
    assert phys_u64(paging, PT + 8) == before


def test_memory_read_up_to_the_limit(paging):
    # The memory-read limit itself is allowed: 65536 bytes in one call.
    limit = paging.result("daemon.version")["max_memory_read"]
    r = paging.result("vm.memory.read", {"name": "pg", "addr": "0x800000", "len": limit})
    data = base64.b64decode(r["data"])
    assert len(data) == limit == r["len"] and data[0x100:0x200] == bytes(range(256))


def test_memory_reads(paging):
    r = paging.result("vm.memory.read", {"name": "pg", "addr": 0x40000000, "len": 18,
                                         "virtual": True})
    assert base64.b64decode(r["data"]) == b"vmmd paging marker"
    assert r["addr"] == "0x40000000" and r["virtual"] is True
    r = paging.result("vm.memory.read", {"name": "pg", "addr": "0x800100", "len": 256})
    assert base64.b64decode(r["data"]) == bytes(range(256))
    # Across a page boundary, each page through its own entry.
    r = paging.result("vm.memory.read", {"name": "pg", "addr": 0x40000ff8, "len": 16,
                                         "virtual": True})
    assert base64.b64decode(r["data"])[8:] == b"read-onl"


BAD = [
    ({"gva": "0xzz"}, "vm.translate", -32602, "parameter 'gva' must be an unsigned integer"),
    ({"gva": "0x10000000000000000"}, "vm.translate", -32602, "parameter 'gva' does not fit in 64 bits"),
    ({"gva": 1 << 64}, "vm.translate", -32602, "parameter 'gva' does not fit in 64 bits, or is 2^64-1, which a JSON integer cannot tell apart: give 64-bit values as a string like \"0xffffffffffffffff\""),
    ({"gva": 1 << 70}, "vm.translate", -32602, "parameter 'gva' does not fit in 64 bits"),
    ({"gva": -1}, "vm.translate", -32602, "parameter 'gva' must not be negative"),
    ({"gva": "-1"}, "vm.translate", -32602, "parameter 'gva' must be an unsigned integer or a string like \"0x1000\", got \"-1\""),
    ({"gva": 4096.0}, "vm.translate", -32602, "parameter 'gva' must be an unsigned integer or a hex string, got number"),
    ({"gva": True}, "vm.translate", -32602, "parameter 'gva' must be an unsigned integer or a hex string, got boolean"),
    ({"addr": 1 << 64, "len": 1}, "vm.memory.read", -32602, "parameter 'addr' does not fit in 64 bits"),
    ({"gva": 1, "access": "execute"}, "vm.translate", -32602, "parameter 'access' must be one of: read, write, fetch"),
    ({"gva": 1, "vcpu": 2}, "vm.translate", -32602, "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got 2"),
    ({"gva": 1, "vcpu": -1}, "vm.translate", -32602, "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got -1"),
    ({"gva": 1, "vcpu": 1 << 70}, "vm.translate", -32602, "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got 18446744073709551615 or more"),
    ({}, "vm.translate", -32602, "missing required parameter 'gva'"),
    ({"addr": 0, "len": 0}, "vm.memory.read", -32602, "parameter 'len' must be between 1 and 65536 bytes (the memory-read limit), got 0"),
    ({"addr": 0, "len": 65537}, "vm.memory.read", -32602, "parameter 'len' must be between 1 and 65536 bytes (the memory-read limit), got 65537"),
    ({"addr": 0, "len": 70000}, "vm.memory.read", -32602, "parameter 'len' must be between 1 and 65536 bytes (the memory-read limit), got 70000"),
    ({"addr": 0, "len": "4"}, "vm.memory.read", -32602, "parameter 'len' must be an integer"),
    ({"addr": "0xC0000000", "len": 16}, "vm.memory.read", -32602, "guest physical range [0xc0000000, 0xc0000010) is not all RAM"),
    ({"addr": 0x1ffffff8, "len": 16}, "vm.memory.read", -32602, "is not all RAM"),
    ({"addr": "0xffffffffffffffff", "len": 16}, "vm.memory.read", -32602, "wraps around"),
    ({"addr": 0x40002000, "len": 4, "virtual": True}, "vm.memory.read", -32009, "guest virtual address 0x40002000 is not mapped (#PF, error code 0x0 at level 1)"),
    ({"addr": 0x40001ffc, "len": 8, "virtual": True}, "vm.memory.read", -32009, "0x40002000 is not mapped"),
    ({"vcpu": 5}, "vcpu.role", -32602, "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got 5"),
    ({"addr": 0, "len": 4, "virtual": True, "vcpu": 2}, "vm.memory.read", -32602, "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got 2"),
    ({"addr": 0, "len": 4, "vcpu": -1}, "vm.memory.read", -32602, "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got -1"),
    # Wrong types, each named.
    ({"gva": 1, "user": "yes"}, "vm.translate", -32602, "parameter 'user' must be a boolean, got string"),
    ({"gva": 1, "user": 1}, "vm.translate", -32602, "parameter 'user' must be a boolean, got integer"),
    ({"gva": 1, "vcpu": "0"}, "vm.translate", -32602, "parameter 'vcpu' must be an integer, got string"),
    ({"gva": 1, "vcpu": 0.5}, "vm.translate", -32602, "parameter 'vcpu' must be an integer, got number"),
    ({"gva": 1, "access": 1}, "vm.translate", -32602, "parameter 'access' must be a string, got integer"),
    ({"addr": 0, "len": 4, "virtual": 1}, "vm.memory.read", -32602, "parameter 'virtual' must be a boolean, got integer"),
    ({"addr": 0, "len": 4, "virtual": "true"}, "vm.memory.read", -32602, "parameter 'virtual' must be a boolean, got string"),
    ({"addr": 0, "len": 4, "vcpu": True}, "vm.memory.read", -32602, "parameter 'vcpu' must be an integer, got boolean"),
    ({"addr": [0], "len": 4}, "vm.memory.read", -32602, "parameter 'addr' must be an unsigned integer or a hex string, got array"),
    ({"addr": 0, "len": 4.0}, "vm.memory.read", -32602, "parameter 'len' must be an integer, got number"),
    ({"vcpu": "1"}, "vcpu.role", -32602, "parameter 'vcpu' must be an integer, got string"),
    # Unknown parameters.
    ({"gva": 1, "pid": 1}, "vm.translate", -32602, "unknown parameter 'pid'"),
    ({"addr": 0, "len": 4, "physical": True}, "vm.memory.read", -32602, "unknown parameter 'physical'"),
    ({"gva": 1}, "vcpu.role", -32602, "unknown parameter 'gva'"),
    ({"addr": 0}, "vm.memory.read", -32602, "missing required parameter 'len'"),
    ({"len": 4}, "vm.memory.read", -32602, "missing required parameter 'addr'"),
    # vCPU 1 has paging off: linear addresses are 32 bits; the message names
    # the parameter the address came in.
    ({"gva": "0x100000000", "vcpu": 1}, "vm.translate", -32602,
     "parameter 'gva': 0x100000000 is beyond 32 bits, the width of linear addresses outside "
     "IA-32e mode (the vCPU's paging mode is none)"),
    ({"addr": "0x100000000", "len": 16, "virtual": True, "vcpu": 1}, "vm.memory.read", -32602,
     "parameter 'addr': 0x100000000 is beyond 32 bits, the width of linear addresses outside "
     "IA-32e mode (the vCPU's paging mode is none)"),
]


@pytest.mark.parametrize("params,method,code,fragment", BAD)
def test_bad_inspection_requests(paging, params, method, code, fragment):
    worker = paging.result("vm.info", {"name": "pg"})["pid"]
    err = paging.error(method, {"name": "pg", **params})
    assert err["code"] == code and fragment in err["message"], err
    # Nothing lost: the VM runs on in the same worker and still answers.
    info = paging.result("vm.info", {"name": "pg"})
    assert info["state"] == "running" and info["pid"] == worker
    assert paging.result("vm.translate", {"name": "pg", "gva": 0x40000000})["gpa"] == "0x800000"


INSPECTIONS = (("vcpu.role", {}), ("vm.translate", {"gva": 0}),
               ("vm.memory.read", {"addr": 0, "len": 1}))


def test_inspection_needs_a_running_vm(rpc):
    create_vm(rpc, "idle")
    for method, extra in INSPECTIONS:
        err = rpc.error(method, {"name": "idle", **extra})
        assert err["code"] == -32003
        assert err["message"] == f"VM 'idle' is defined; {method} needs running or paused"


def test_inspection_of_a_stopped_vm(paging):
    worker = paging.result("vm.info", {"name": "pg"})["pid"]
    paging.result("vm.stop", {"name": "pg"})
    for method, extra in INSPECTIONS:
        err = paging.error(method, {"name": "pg", **extra})
        assert err["code"] == -32003
        assert err["message"] == f"VM 'pg' is stopped; {method} needs running or paused"
    info = paging.result("vm.info", {"name": "pg"})
    assert info["state"] == "stopped" and info["pid"] is None
    # The VM is unharmed: it starts again (in a new worker) and is inspectable.
    paging.result("vm.start", {"name": "pg"})
    log = paging.result("vm.info", {"name": "pg"})["console_log"]
    wait_for(lambda: open(log).read().count("paging: ready") >= 2, what="the restarted guest")
    assert paging.result("vm.info", {"name": "pg"})["pid"] != worker
    assert paging.result("vcpu.role", {"name": "pg"})["mode"] == "4-level"


def test_inspection_of_a_paused_vm(paging):
    paging.result("vm.pause", {"name": "pg"})
    before = phys_u64(paging, PT + 8)
    assert paging.result("vcpu.role", {"name": "pg"})["mode"] == "4-level"
    r = paging.result("vm.translate", {"name": "pg", "gva": 0x40001004, "user": True})
    assert r["gpa"] == "0x801004"
    r = paging.result("vm.memory.read", {"name": "pg", "addr": 0x40000000, "len": 18,
                                         "virtual": True})
    assert base64.b64decode(r["data"]) == b"vmmd paging marker"
    assert phys_u64(paging, PT + 8) == before
    assert paging.result("vm.info", {"name": "pg"})["state"] == "paused"
    paging.result("vm.resume", {"name": "pg"})
    assert paging.result("vm.info", {"name": "pg"})["state"] == "running"


def test_vmctl_translate_and_mem(paging, daemon):
    r = daemon.vmctl("translate", "pg", "0x40001000", "--write", "--user")
    assert r.returncode == 0, r.stderr
    assert "walk 4-level addr=0x40001000 access=write,user" in r.stdout
    assert "fault #PF stage=1 level=1 error_code=0x7 (P W U)" in r.stdout
    j = json.loads(daemon.vmctl("translate", "pg", "0x40000010", "--user", json_out=True).stdout)
    assert j["gpa"] == "0x800010" and j["error_code"] is None
    j = json.loads(daemon.vmctl("translate", "pg", "0x40003000", "--user", json_out=True).stdout)
    assert j["gpa"] is None and j["error_code"] == 5
    r = daemon.vmctl("mem", "read", "pg", "0x40000000", "32", "--virtual")
    assert r.stdout.splitlines()[0] == ("0000000040000000  76 6d 6d 64 20 70 61 67  "
                                        "69 6e 67 20 6d 61 72 6b  |vmmd paging mark|")
    assert daemon.vmctl("role", "pg").stdout.startswith("mode=4-level")
    for bad, message in (
            (["translate", "pg", "nowhere"], "translate: GVA must be a number like 0x1000 or 4096, got 'nowhere'"),
            (["translate", "pg", "1", "--write", "--fetch"], "translate: --write and --fetch exclude each other"),
            (["mem", "read", "pg", "0", "0"], "mem: LEN must be a positive number of bytes, got '0'"),
            (["mem", "read", "pg", "12z", "4"], "mem: ADDR must be a number like 0x1000 or 4096, got '12z'"),
            (["mem", "write", "pg", "0", "1"], "mem: unknown subcommand 'write' (there is: read)"),
            (["translate", "pg", "1", "--vcpu", "x"], "--vcpu needs a vCPU number, got 'x'")):
        r = daemon.vmctl(*bad)
        assert r.returncode == 2, bad
        assert r.stderr.startswith(f"vmctl: {message}\n"), (bad, r.stderr)
        assert "Usage: vmctl" in r.stderr
    # What vmmd refuses comes back with its message.
    r = daemon.vmctl("mem", "read", "pg", "0", "70000")
    assert r.returncode == 1 and r.stdout == ""
    assert "parameter 'len' must be between 1 and 65536 bytes (the memory-read limit), got 70000" \
        in r.stderr
    r = daemon.vmctl("translate", "pg", "0x100000000", "--vcpu", "1")
    assert r.returncode == 1 and "parameter 'gva': 0x100000000 is beyond 32 bits" in r.stderr
    r = daemon.vmctl("translate", "pg", "1", "--vcpu", "7")
    assert r.returncode == 1
    assert "parameter 'vcpu' must be between 0 and 1 (VM 'pg' has 2 vCPUs), got 7" in r.stderr
    assert paging.result("vm.info", {"name": "pg"})["state"] == "running"
