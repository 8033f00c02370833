# Persistent VM definitions: one file per VM in STATE/vms, written
# atomically, loaded at start; corrupt files make only their VM "broken".
import json
import os
import stat
import subprocess

import pytest

from conftest import Daemon, create_vm, guest, needs_kvm, wait_state


@pytest.fixture
def persistent():
    d = Daemon().start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


def restart(d):
    assert d.stop() == 0
    d.log.close()
    return d.start()


def names(rpc):
    return [v["name"] for v in rpc.result("vm.list")["vms"]]


def record(d, name):
    return d.state_dir / "vms" / f"{name}.json"


def test_definitions_survive_a_restart(persistent):
    with persistent.rpc() as r:
        create_vm(r, "web1", memory=48, vcpus=2, cmdline="exit=3")
        create_vm(r, "tmp", transient=True)
    path = record(persistent, "web1")
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["format"] == 1
    assert saved["definition"]["memory"] == 48
    assert not record(persistent, "tmp").exists(), "transient VMs must not be stored"
    restart(persistent)
    with persistent.rpc() as r:
        assert names(r) == ["web1"]
        info = r.result("vm.info", {"name": "web1"})
        assert (info["memory"], info["vcpus"], info["cmdline"]) == (48, 2, "exit=3")
        assert info["state"] == "defined"
    assert not [p for p in (persistent.state_dir / "vms").iterdir() if ".tmp." in p.name]


@needs_kvm
def test_last_state_and_exit_status_survive_a_restart(persistent):
    with persistent.rpc() as r:
        create_vm(r, "h", cmdline="exit=7")
        r.result("vm.start", {"name": "h"})
        wait_state(r, "h", "stopped")
    restart(persistent)
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "h"})
        assert info["state"] == "stopped"
        assert info["exit_status"] == 7
        assert "debug-exit" in info["reason"]


def test_delete_removes_the_record(persistent):
    with persistent.rpc() as r:
        create_vm(r, "gone")
        r.result("vm.delete", {"name": "gone"})
    assert not record(persistent, "gone").exists()
    restart(persistent)
    with persistent.rpc() as r:
        assert names(r) == []


GOOD = {"name": "X", "memory": 32, "vcpus": 1, "kernel": "/k.elf", "cmdline": "", "boot": "multiboot"}

CORRUPT = [
    ("empty", b"", "parse error"),
    ("garbage", b"\x00\xff\xfe not json", "parse error"),
    ("truncated", json.dumps({"format": 1, "definition": GOOD}).encode()[:30], "parse error"),
    ("wrong-format", json.dumps({"format": 99, "definition": GOOD}).encode(), "format 1"),
    ("no-definition", json.dumps({"format": 1}).encode(), "'definition' is missing"),
    ("bad-type", json.dumps({"format": 1, "definition": dict(GOOD, memory="lots")}).encode(),
     "parameter 'memory' must be an integer"),
    ("unknown-field", json.dumps({"format": 1, "definition": dict(GOOD, colour="red")}).encode(),
     "unknown parameter 'colour'"),
    ("too-small", json.dumps({"format": 1, "definition": dict(GOOD, memory=1)}).encode(),
     "parameter 'memory' must be between 2 and"),
    ("other-name", json.dumps({"format": 1, "definition": dict(GOOD, name="someone")}).encode(),
     "defines VM 'someone'"),
    ("huge", b" " * (70 * 1024), "more than the limit"),
    ("not-an-object", b"[1, 2]", "the file is a JSON array, not an object"),
    ("no-format", json.dumps({"definition": GOOD}).encode(), "member 'format' is missing"),
    ("format-string", json.dumps({"format": "1", "definition": GOOD}).encode(),
     "member 'format' must be an integer, got string"),
    ("format-number", json.dumps({"format": 1.0, "definition": GOOD}).encode(),
     "member 'format' must be an integer, got number"),
    ("definition-string", json.dumps({"format": 1, "definition": "hello"}).encode(),
     "member 'definition' must be an object, got string"),
    ("runtime-string", json.dumps({"format": 1, "definition": GOOD, "runtime": "running"}).encode(),
     "member 'runtime' must be an object, got string"),
    ("runtime-array", json.dumps({"format": 1, "definition": GOOD, "runtime": []}).encode(),
     "member 'runtime' must be an object, got array"),
    ("runtime-state", json.dumps({"format": 1, "definition": GOOD,
                                  "runtime": {"state": "broken"}}).encode(),
     "member 'runtime': parameter 'state' must be one of: defined, running, paused, stopped, "
     "crashed; got \"broken\""),
    ("runtime-no-state", json.dumps({"format": 1, "definition": GOOD, "runtime": {}}).encode(),
     "member 'runtime': missing required parameter 'state'"),
    ("runtime-exit-string", json.dumps({"format": 1, "definition": GOOD, "runtime": {
        "state": "stopped", "exit_status": "7"}}).encode(),
     "member 'runtime': parameter 'exit_status' must be an integer, got string"),
    ("runtime-unknown", json.dumps({"format": 1, "definition": GOOD, "runtime": {
        "state": "stopped", "mood": "calm"}}).encode(),
     "member 'runtime': unknown parameter 'mood'"),
]


@pytest.mark.parametrize("label,content,fragment", CORRUPT)
def test_corrupt_record_makes_only_its_vm_broken(persistent, label, content, fragment):
    with persistent.rpc() as r:
        create_vm(r, "healthy")
    assert persistent.stop() == 0
    data = content.replace(b'"X"', f'"{label}"'.encode())
    record(persistent, label).write_bytes(data)
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        assert names(r) == sorted(["healthy", label])
        info = r.result("vm.info", {"name": label})
        assert info["state"] == "broken"
        assert fragment in info["reason"], info["reason"]
        assert str(record(persistent, label)) in info["reason"] or "cannot read" in info["reason"]
        assert r.result("vm.info", {"name": "healthy"})["state"] == "defined"
        err = r.error("vm.start", {"name": label})
        assert err["code"] == -32003 and f"VM '{label}' is broken" in err["message"]
        r.result("vm.delete", {"name": label})
    assert not record(persistent, label).exists()


def test_record_without_runtime_loads_as_defined(persistent):
    assert persistent.stop() == 0
    record(persistent, "bare").write_text(json.dumps({"format": 1, "definition": dict(
        GOOD, name="bare"), "runtime": None}))
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "bare"})
        assert (info["state"], info["memory"], info["reason"]) == ("defined", 32, None)


def test_record_that_is_a_directory_is_broken(persistent):
    assert persistent.stop() == 0
    (persistent.state_dir / "vms" / "dir.json").mkdir()
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "dir"})
        assert info["state"] == "broken" and "not a regular file" in info["reason"]


def test_record_that_is_a_fifo_is_broken_without_hanging_vmmd(persistent):
    # Opening a FIFO for reading waits for a writer: vmmd must not.
    with persistent.rpc() as r:
        create_vm(r, "healthy")
    assert persistent.stop() == 0
    os.mkfifo(record(persistent, "pipe"))
    persistent.log.close()
    persistent.start(timeout=10)
    with persistent.rpc() as r:
        assert names(r) == ["healthy", "pipe"]
        info = r.result("vm.info", {"name": "pipe"})
        assert info["state"] == "broken"
        assert info["reason"] == (f"cannot read its definition: {record(persistent, 'pipe')}: "
                                  "not a regular file but a FIFO")
        assert r.result("vm.info", {"name": "healthy"})["state"] == "defined"


def test_record_behind_a_symlink_still_loads(persistent):
    with persistent.rpc() as r:
        create_vm(r, "linked", memory=40)
    assert persistent.stop() == 0
    real = persistent.dir / "linked-record.json"
    record(persistent, "linked").rename(real)
    record(persistent, "linked").symlink_to(real)
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "linked"})
        assert (info["state"], info["memory"]) == ("defined", 40)


def test_files_that_cannot_name_a_vm_are_ignored(persistent):
    assert persistent.stop() == 0
    vms = persistent.state_dir / "vms"
    (vms / "bad name.json").write_text("{}")
    (vms / "readme.txt").write_text("hello")
    (vms / "x.json.tmp.123").write_text("half-written")
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        assert names(r) == []
    assert "'bad name' is not a valid VM name" in persistent.read_log()
    assert not (vms / "x.json.tmp.123").exists(), "stale temporary file left behind"


def test_update_changes_only_given_fields_and_persists(persistent):
    with persistent.rpc() as r:
        create_vm(r, "u", memory=32, cmdline="exit=1")
        info = r.result("vm.update", {"name": "u", "memory": 64})
        assert info["memory"] == 64 and info["cmdline"] == "exit=1"
        assert info["kernel"] == guest("hello.elf")
    restart(persistent)
    with persistent.rpc() as r:
        assert r.result("vm.info", {"name": "u"})["memory"] == 64


@pytest.mark.parametrize("change,fragment", [
    ({"memory": 0}, "parameter 'memory'"),
    ({"memory": "64"}, "parameter 'memory' must be an integer"),
    ({"vcpus": 100000}, "parameter 'vcpus' must be between"),
    ({"kernel": "/nonexistent.elf"}, "parameter 'kernel'"),
    ({"boot": "bios"}, "unknown boot protocol 'bios'"),
    ({"transient": True}, "unknown parameter 'transient'"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
])
def test_update_validates_like_create(persistent, change, fragment):
    with persistent.rpc() as r:
        create_vm(r, "v", memory=32)
        err = r.error("vm.update", {"name": "v", **change})
        assert err["code"] == -32602 and fragment in err["message"], err
        assert r.result("vm.info", {"name": "v"})["memory"] == 32
    assert json.loads(record(persistent, "v").read_text())["definition"]["memory"] == 32


@needs_kvm
def test_update_refused_while_running(persistent):
    with persistent.rpc() as r:
        create_vm(r, "busy", kernel="echo.elf")
        r.result("vm.start", {"name": "busy"})
        err = r.error("vm.update", {"name": "busy", "memory": 64})
        assert err["code"] == -32003
        assert "vm.update needs defined, stopped, crashed or broken" in err["message"]
        r.result("vm.stop", {"name": "busy"})


def test_update_repairs_a_broken_vm(persistent):
    assert persistent.stop() == 0
    record(persistent, "fixme").write_text("{not json")
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        assert r.result("vm.info", {"name": "fixme"})["state"] == "broken"
        err = r.error("vm.update", {"name": "fixme", "memory": 32})
        assert "missing required parameter 'kernel'" in err["message"]
        info = r.result("vm.update", {"name": "fixme", "memory": 32, "kernel": guest("hello.elf")})
        assert info["state"] == "defined"
    assert json.loads(record(persistent, "fixme").read_text())["definition"]["memory"] == 32


# When a definition cannot be saved or removed, the method says so and
# nothing changes: not in memory, not on disk, not after a restart. A
# directory where the store puts its temporary file (NAME.json.tmp.PID)
# makes the save fail even for root; an immutable file makes removal fail.

def block_save(d, name):
    blocker = d.state_dir / "vms" / f"{name}.json.tmp.{d.proc.pid}"
    blocker.mkdir()
    return blocker


def test_create_that_cannot_be_saved_creates_nothing(persistent):
    blocker = block_save(persistent, "nosave")
    with persistent.rpc() as r:
        err = r.error("vm.create", {"name": "nosave", "memory": 32, "kernel": guest("hello.elf")})
        assert err["code"] == -32007
        assert err["message"].startswith("VM 'nosave' not created: its definition could not be saved: ")
        assert "Is a directory" in err["message"]
        assert names(r) == []
    blocker.rmdir()
    restart(persistent)
    with persistent.rpc() as r:
        assert names(r) == []
    assert not record(persistent, "nosave").exists()


def test_update_that_cannot_be_saved_changes_nothing(persistent):
    with persistent.rpc() as r:
        create_vm(r, "keep", memory=32, cmdline="exit=1")
    before = record(persistent, "keep").read_bytes()
    blocker = block_save(persistent, "keep")
    with persistent.rpc() as r:
        err = r.error("vm.update", {"name": "keep", "memory": 64, "cmdline": "exit=2"})
        assert err["code"] == -32007
        assert err["message"].startswith("VM 'keep' not updated: its definition could not be saved: ")
        info = r.result("vm.info", {"name": "keep"})
        assert (info["state"], info["memory"], info["cmdline"]) == ("defined", 32, "exit=1")
    assert record(persistent, "keep").read_bytes() == before
    blocker.rmdir()
    restart(persistent)
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "keep"})
        assert (info["state"], info["memory"], info["cmdline"]) == ("defined", 32, "exit=1")


def test_repair_of_a_broken_vm_that_cannot_be_saved_changes_nothing(persistent):
    assert persistent.stop() == 0
    record(persistent, "wreck").write_text("{not json")
    persistent.log.close()
    persistent.start()
    with persistent.rpc() as r:
        reason = r.result("vm.info", {"name": "wreck"})["reason"]
    blocker = block_save(persistent, "wreck")
    with persistent.rpc() as r:
        err = r.error("vm.update", {"name": "wreck", "memory": 32, "kernel": guest("hello.elf")})
        assert err["code"] == -32007
        assert err["message"].startswith("VM 'wreck' not updated: its definition could not be saved: ")
        info = r.result("vm.info", {"name": "wreck"})
        assert (info["state"], info["reason"]) == ("broken", reason)
    assert record(persistent, "wreck").read_text() == "{not json"
    blocker.rmdir()
    restart(persistent)
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "wreck"})
        assert (info["state"], info["reason"]) == ("broken", reason)
        # Once the file can be written, the same call repairs it.
        assert r.result("vm.update", {"name": "wreck", "memory": 32,
                                      "kernel": guest("hello.elf")})["state"] == "defined"
    assert json.loads(record(persistent, "wreck").read_text())["runtime"]["state"] == "defined"


@pytest.fixture
def immutable():
    """chattr +i on a file for the test's duration (the host's filesystem must allow it)."""
    made = []

    def set_immutable(path):
        r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {r.stderr.strip()}")
        made.append(path)

    yield set_immutable
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_delete_that_cannot_remove_the_file_deletes_nothing(persistent, immutable):
    with persistent.rpc() as r:
        create_vm(r, "stuck", memory=48)
    before = record(persistent, "stuck").read_bytes()
    immutable(record(persistent, "stuck"))
    with persistent.rpc() as r:
        err = r.error("vm.delete", {"name": "stuck"})
        assert err["code"] == -32007
        assert err["message"] == (
            "VM 'stuck' not deleted: its definition file could not be removed: removing "
            f"{record(persistent, 'stuck')}: Operation not permitted")
        assert r.result("vm.info", {"name": "stuck"})["memory"] == 48
    restart(persistent)
    assert record(persistent, "stuck").read_bytes() == before
    with persistent.rpc() as r:
        info = r.result("vm.info", {"name": "stuck"})
        assert (info["state"], info["memory"]) == ("defined", 48)
