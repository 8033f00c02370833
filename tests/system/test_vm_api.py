# The vm.* methods over raw JSON-RPC: lifecycle, state machine, and bad input
# of every kind. Every rejected request must name the offending field and
# leave the registry exactly as it was.
import fcntl
import os
import pwd
import stat

import pytest

from conftest import Daemon, create_vm, guest, needs_kvm, pid_alive, wait_for, wait_state


def names(rpc):
    return [vm["name"] for vm in rpc.result("vm.list")["vms"]]


def test_create_info_list_delete(rpc):
    info = create_vm(rpc, "web1", memory=48, vcpus=2, cmdline="exit=0")
    assert info["name"] == "web1"
    assert info["state"] == "defined"
    assert info["memory"] == 48
    assert info["vcpus"] == 2
    assert info["kernel"] == guest("hello.elf")
    assert info["cmdline"] == "exit=0"
    assert info["boot"] == "multiboot"
    assert info["pid"] is None and info["uptime"] is None and info["exit_status"] is None
    assert info["console_log"].endswith("/console/web1.log")
    create_vm(rpc, "alpha")
    assert names(rpc) == ["alpha", "web1"]
    listed = rpc.result("vm.list")["vms"][1]
    assert set(listed) == {"name", "state", "memory", "vcpus", "pid", "uptime"}
    assert rpc.result("vm.delete", {"name": "web1"}) == {"name": "web1"}
    assert names(rpc) == ["alpha"]


def list_entry(rpc, name):
    return next(v for v in rpc.result("vm.list")["vms"] if v["name"] == name)


@needs_kvm
def test_list_follows_every_change_of_state_and_definition(rpc):
    """vm.list keeps each entry's unchanging part as text: every state change
    and update must show in it, as vm.info shows it."""
    create_vm(rpc, "seen", kernel="echo.elf")
    create_vm(rpc, "other", kernel="echo.elf")
    fields = ("name", "state", "memory", "vcpus", "pid")

    def agrees():
        info = rpc.result("vm.info", {"name": "seen"})
        entry = list_entry(rpc, "seen")
        assert {k: entry[k] for k in fields} == {k: info[k] for k in fields}
        assert (entry["uptime"] is None) == (info["uptime"] is None)
        return entry

    assert agrees()["state"] == "defined"
    rpc.result("vm.update", {"name": "seen", "memory": 48, "vcpus": 2})
    assert (agrees()["memory"], agrees()["vcpus"]) == (48, 2)
    rpc.result("vm.start", {"name": "seen"})
    assert agrees()["state"] == "running"
    rpc.result("vm.pause", {"name": "seen"})
    assert agrees()["state"] == "paused"
    rpc.result("vm.stop", {"name": "seen"})
    entry = agrees()
    assert (entry["state"], entry["pid"], entry["uptime"]) == ("stopped", None, None)
    assert list_entry(rpc, "other")["state"] == "defined"
    rpc.result("vm.delete", {"name": "seen"})
    assert names(rpc) == ["other"]


@needs_kvm
def test_start_stop_restart_delete(rpc):
    create_vm(rpc, "loop", kernel="echo.elf")
    started = rpc.result("vm.start", {"name": "loop"})
    assert started["state"] == "running"
    pid = started["pid"]
    assert pid_alive(pid)
    info = rpc.result("vm.info", {"name": "loop"})
    assert info["uptime"] >= 0
    stopped = rpc.result("vm.stop", {"name": "loop"})
    assert stopped["state"] == "stopped"
    assert stopped["reason"] == "powered off by vm.stop"
    assert stopped["pid"] is None
    wait_for(lambda: not pid_alive(pid), what="worker exit")
    again = rpc.result("vm.start", {"name": "loop"})
    assert again["state"] == "running" and again["pid"] != pid
    rpc.result("vm.stop", {"name": "loop"})
    rpc.result("vm.delete", {"name": "loop"})
    assert names(rpc) == []


@needs_kvm
def test_wrong_state_errors(rpc):
    create_vm(rpc, "w", kernel="echo.elf")
    err = rpc.error("vm.stop", {"name": "w"})
    assert err["code"] == -32003
    assert err["message"] == "VM 'w' is defined; vm.stop needs starting, running, paused or stopping"
    err = rpc.error("vm.console.write", {"name": "w", "data": "YQ=="})
    assert err["code"] == -32003 and "vm.console.write needs running or paused" in err["message"]
    rpc.result("vm.start", {"name": "w"})
    err = rpc.error("vm.start", {"name": "w"})
    assert err["message"] == "VM 'w' is running; vm.start needs defined, stopped or crashed"
    err = rpc.error("vm.delete", {"name": "w"})
    assert err["code"] == -32003 and "vm.delete needs" in err["message"]
    assert rpc.result("vm.info", {"name": "w"})["state"] == "running"
    rpc.result("vm.stop", {"name": "w"})


@pytest.mark.parametrize("method", ["vm.start", "vm.stop", "vm.delete", "vm.info",
                                    "vm.console.attach", "vm.console.detach"])
def test_unknown_vm(rpc, method):
    err = rpc.error(method, {"name": "ghost"})
    assert err["code"] == -32001
    assert err["message"] == "VM 'ghost' not found"


def test_duplicate_name(rpc):
    create_vm(rpc, "dup", memory=32)
    err = rpc.error("vm.create", {"name": "dup", "memory": 64, "kernel": guest("hello.elf")})
    assert err["code"] == -32002
    assert "'dup' is already taken" in err["message"]
    assert rpc.result("vm.info", {"name": "dup"})["memory"] == 32


def kernel_file(tmp_path, name, data, mode=0o644):
    p = tmp_path / name
    p.write_bytes(data)
    p.chmod(mode)
    return str(p)


BAD_CREATE = [
    # (params overriding a valid request, error fragment naming the field)
    ({"bogus": 1}, "unknown parameter 'bogus'"),
    ({"name": 5}, "parameter 'name' must be a string, got integer"),
    ({"name": ""}, "parameter 'name' must not be empty"),
    ({"name": "x" * 65}, "parameter 'name' is too long"),
    ({"name": "a/b"}, "parameter 'name' may contain only"),
    ({"name": "a b"}, "parameter 'name' may contain only"),
    ({"name": ".hidden"}, "parameter 'name' must not start with '.'"),
    ({"name": "-x"}, "parameter 'name' must not start with '-'"),
    ({"name": "caf\u00e9"}, "parameter 'name' may contain only"),
    ({"memory": "64"}, "parameter 'memory' must be an integer, got string"),
    ({"memory": 64.5}, "parameter 'memory' must be an integer, got number"),
    ({"memory": None}, "missing required parameter 'memory'"),
    ({"vcpus": True}, "parameter 'vcpus' must be an integer, got boolean"),
    ({"kernel": None}, "missing required parameter 'kernel'"),
    ({"kernel": 7}, "parameter 'kernel' must be a string"),
    ({"kernel": "hello.elf"}, "parameter 'kernel' must be an absolute path"),
    ({"kernel": "/nonexistent/k.elf"}, "parameter 'kernel'"),
    ({"kernel": "/"}, "parameter 'kernel'"),
    ({"kernel": "/dev/null"}, "parameter 'kernel'"),
    ({"cmdline": "x" * 5000}, "parameter 'cmdline' is too long"),
    ({"cmdline": ["a"]}, "parameter 'cmdline' must be a string, got array"),
    ({"boot": "bios"}, "parameter 'boot': unknown boot protocol 'bios' (supported: multiboot, flat)"),
    ({"boot": 3}, "parameter 'boot' must be a string, got integer"),
    ({"transient": "yes"}, "parameter 'transient' must be a boolean"),
]


@pytest.mark.parametrize("override,fragment", BAD_CREATE)
def test_create_rejects_bad_params(rpc, override, fragment):
    create_vm(rpc, "keep")
    params = {"name": "new1", "memory": 32, "kernel": guest("hello.elf")}
    for k, v in override.items():
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    err = rpc.error("vm.create", params)
    assert err["code"] == -32602, err
    assert fragment in err["message"], err
    assert names(rpc) == ["keep"], "a rejected create changed the registry"


# vmmd/vmdef.c VM_VCPUS_LIMIT, vmmd's own ceiling below KVM's.
# vmmd/vmdef.h VM_VCPUS_MAX, vmmd's limit where KVM cannot be asked.
VMMD_VCPUS_MAX = 4096
KVM_CHECK_EXTENSION = 0xAE03
KVM_CAP_MAX_VCPUS = 66
KVM_CAP_MAX_VCPU_ID = 128


def vcpus_limit():
    """The vCPU limit vmmd applies on this host and the source its messages name."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return VMMD_VCPUS_MAX, "vmmd's limit; KVM's is unknown without /dev/kvm"
    try:
        n = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS)
        max_id = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID)
    finally:
        os.close(fd)
    return min(n, max_id) if max_id > 0 else n, "KVM_CAP_MAX_VCPUS on this host"


RANGE_CASES = [
    # (parameter, value given, how it reads in the message)
    ("memory", 0, "0"),
    ("memory", 1, "1"),
    ("memory", -4, "-4"),
    ("memory", "host + 1", None),
    ("memory", 1 << 40, str(1 << 40)),
    ("memory", 10 ** 30, "18446744073709551615 or more"),
    ("memory", -10 ** 30, "-9223372036854775808 or less"),
    ("vcpus", 0, "0"),
    ("vcpus", -3, "-3"),
    ("vcpus", "limit + 1", None),
    ("vcpus", 100000, "100000"),
    ("vcpus", 1 << 63, str(1 << 63)),
]


@pytest.mark.parametrize("param,value,shown", RANGE_CASES)
def test_range_errors_state_the_real_range_and_the_value(rpc, param, value, shown):
    host = rpc.result("daemon.version")
    limit, source = vcpus_limit()
    assert host["max_vcpus"] == limit
    if value == "host + 1":
        value = host["max_memory"] + 1
    elif value == "limit + 1":
        value = limit + 1
    shown = shown or str(value)
    params = {"name": "big", "memory": 32, "kernel": guest("hello.elf"), param: value}
    err = rpc.error("vm.create", params)
    if param == "memory":
        expected = (f"parameter 'memory' must be between 2 and {host['max_memory']} MiB "
                    f"(the host's RAM), got {shown}")
    else:
        expected = f"parameter 'vcpus' must be between 1 and {limit} ({source}), got {shown}"
    assert err == {"code": -32602, "message": expected}
    assert names(rpc) == []


def test_null_for_a_required_parameter_is_a_wrong_type(rpc):
    err = rpc.error("vm.create", {"name": None, "memory": 32, "kernel": guest("hello.elf")})
    assert err == {"code": -32602, "message": "parameter 'name' must be a string, got null"}
    err = rpc.error("vm.create", {"name": "n", "memory": None, "kernel": guest("hello.elf")})
    assert err == {"code": -32602, "message": "parameter 'memory' must be an integer, got null"}
    # An optional parameter given as null takes its default.
    assert create_vm(rpc, "n", vcpus=None, cmdline=None)["vcpus"] == 1


def test_malformed_kernels_are_rejected_before_any_vm_exists(rpc, tmp_path):
    with open(guest("hello.elf"), "rb") as f:
        good = f.read()
    header = good.find((0x1BADB002).to_bytes(4, "little"))
    assert header > 0
    cases = {
        "empty.elf": (b"", "is empty"),
        "text.elf": (b"just some text\n" * 10, "no multiboot header"),
        "cut-before-header.elf": (good[:200], "no multiboot header"),
        # The header survives but the loadable segments are cut off.
        "cut-after-header.elf": (good[:header + 48], "kernel '"),
        "noheader.elf": (b"\x7fELF" + b"\0" * 9000, "no multiboot header"),
    }
    for name, (data, fragment) in cases.items():
        path = kernel_file(tmp_path, name, data)
        err = rpc.error("vm.create", {"name": "k", "memory": 32, "kernel": path})
        assert err["code"] == -32602, name
        assert err["message"].startswith("parameter 'kernel': "), err
        assert path in err["message"] or name in err["message"], err
        assert fragment in err["message"], (name, err)
    assert names(rpc) == []


def test_directory_as_kernel(rpc, tmp_path):
    err = rpc.error("vm.create", {"name": "k", "memory": 32, "kernel": str(tmp_path)})
    assert err == {"code": -32602, "message":
                   f"parameter 'kernel': kernel '{tmp_path}': is a directory, not a kernel image"}


@pytest.fixture
def daemon_as_nobody():
    """A vmmd running as nobody, for files it may not read (root reads anything)."""
    if os.geteuid() != 0:
        pytest.skip("starting vmmd as another user needs root")
    nobody = pwd.getpwnam("nobody")
    d = Daemon(wrapper=["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                        "--clear-groups"])
    os.chown(d.dir, nobody.pw_uid, nobody.pw_gid)
    d.start()
    yield d
    try:
        assert d.stop() == 0, d.read_log()
    finally:
        d.cleanup()


def test_unreadable_kernel(daemon_as_nobody):
    d = daemon_as_nobody
    path = str(d.dir / "secret.elf")
    with open(guest("hello.elf"), "rb") as f:
        kernel_file(d.dir, "secret.elf", f.read(), mode=0o600)
    assert os.stat(path).st_uid == 0
    with d.rpc() as r:
        err = r.error("vm.create", {"name": "k", "memory": 32, "kernel": path})
        assert err == {"code": -32602,
                       "message": f"parameter 'kernel': kernel '{path}': Permission denied"}
        assert names(r) == []
        # Readable, the same file is a good kernel.
        os.chmod(path, 0o644)
        assert r.result("vm.create", {"name": "k", "memory": 32, "kernel": path})["name"] == "k"


def padded_flat_kernel(tmp_path, size):
    """hello-flat.bin, zero-padded to size bytes: it runs, and needs 1 MiB + size of RAM."""
    with open(guest("hello-flat.bin"), "rb") as f:
        code = f.read()
    return kernel_file(tmp_path, f"flat-{size}.bin", code + bytes(size - len(code)))


@needs_kvm
def test_kernel_too_large_for_memory(rpc, tmp_path):
    big = padded_flat_kernel(tmp_path, 3 << 20)  # [1 MiB, 4 MiB)
    err = rpc.error("vm.create", {"name": "big", "memory": 2, "kernel": big, "boot": "flat"})
    assert err == {"code": -32602, "message":
                   f"parameter 'kernel': kernel '{big}': flat image: segment [0x100000, 0x400000) lies "
                   "beyond guest RAM (2 MiB)"}
    assert names(rpc) == []
    # With room for it, the same file boots and runs.
    rpc.result("vm.create", {"name": "big", "memory": 8, "kernel": big, "boot": "flat"})
    rpc.result("vm.start", {"name": "big"})
    info = wait_state(rpc, "big", ("stopped", "crashed"))
    assert info["state"] == "stopped" and info["exit_status"] == 0, info
    # vm.update to less RAM than the kernel needs is refused the same way.
    err = rpc.error("vm.update", {"name": "big", "memory": 3})
    assert "lies beyond guest RAM (3 MiB)" in err["message"]
    assert rpc.result("vm.info", {"name": "big"})["memory"] == 8


@needs_kvm
def test_kernel_grown_since_create_fails_to_start(rpc, tmp_path):
    path = padded_flat_kernel(tmp_path, 4096)
    rpc.result("vm.create", {"name": "g", "memory": 2, "kernel": path, "boot": "flat"})
    with open(path, "r+b") as f:
        f.truncate(3 << 20)
    err = rpc.error("vm.start", {"name": "g"})
    assert err == {"code": -32010, "message": f"kernel '{path}': flat image: segment "
                   "[0x100000, 0x400000) lies beyond guest RAM (2 MiB)"}
    info = rpc.result("vm.info", {"name": "g"})
    assert info["state"] == "defined" and info["pid"] is None


def test_params_must_be_an_object(rpc):
    err = rpc.error("vm.info", ["web1"])
    assert err["code"] == -32602
    assert "named parameters" in err["message"]


def test_missing_name(rpc):
    for method in ("vm.start", "vm.stop", "vm.info", "vm.delete"):
        err = rpc.error(method, {})
        assert err == {"code": -32602, "message": "missing required parameter 'name'"}


@needs_kvm
def test_console_write_validation(rpc):
    create_vm(rpc, "c", kernel="echo.elf")
    rpc.result("vm.start", {"name": "c"})
    err = rpc.error("vm.console.write", {"name": "c", "data": "not base64!"})
    assert err["code"] == -32602 and "'data' must be base64" in err["message"]
    err = rpc.error("vm.console.write", {"name": "c", "data": "A" * (200 * 1024)})
    assert err["code"] == -32602 and "'data' is too long" in err["message"]
    err = rpc.error("vm.console.write", {"name": "c"})
    assert "missing required parameter 'data'" in err["message"]
    assert rpc.result("vm.info", {"name": "c"})["state"] == "running"
    rpc.result("vm.stop", {"name": "c"})


@needs_kvm
def test_state_changed_events(daemon, rpc):
    with daemon.rpc() as ev:
        ev.result("events.subscribe")
        create_vm(rpc, "e", cmdline="exit=7")
        rpc.result("vm.start", {"name": "e"})
        seen = []
        while not seen or seen[-1]["new"] not in ("stopped", "crashed"):
            seen.append(ev.wait_notification("vm.state-changed", lambda p: p["name"] == "e"))
        transitions = [(p["old"], p["new"]) for p in seen]
        assert transitions[0] == ("defined", "starting")
        assert ("starting", "running") in transitions
        assert transitions[-1][1] == "stopped"
        assert seen[-1]["exit_status"] == 7
        assert "debug-exit" in seen[-1]["reason"]
        assert seen[-1]["time"].endswith("Z")
