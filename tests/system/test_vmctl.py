# vmctl: every command's help, usage errors, human and --json output, and
# `vmctl run` with a private vmmd when none is reachable.
import json
import os
import signal
import subprocess

import pytest

from conftest import VMCTL, guest, needs_kvm, wait_for, wait_state

COMMANDS = ["create", "start", "stop", "pause", "resume", "reset", "delete", "list", "info",
            "console", "run", "translate", "mem", "role", "regs", "events", "version", "help"]


def vmctl(*args, env=None, input=None, timeout=60):
    return subprocess.run([str(VMCTL), *map(str, args)], capture_output=True, text=True,
                          env=env, input=input, timeout=timeout)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    r = vmctl(cmd, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(f"Usage: vmctl [--socket PATH] [--json] {cmd}")


def test_global_help_lists_every_command():
    r = vmctl("--help")
    assert r.returncode == 0
    for cmd in COMMANDS:
        assert f"  {cmd} " in r.stdout


USAGE_ERRORS = [
    # (arguments, the first line on stderr); each exits 2 and prints the usage
    ((), "vmctl: missing COMMAND"),
    (("fly",), "vmctl: unknown command 'fly' (see vmctl --help)"),
    (("--bogus", "list"), "vmctl: unknown option '--bogus'"),
    (("--socket",), "vmctl: option '--socket' needs a value (PATH)"),
    (("--socket=", "list"), "vmctl: option '--socket' needs a value (PATH)"),
    (("start",), "vmctl: start: missing NAME"),
    (("start", "a", "b"), "vmctl: start: too many arguments ('b'); it takes NAME"),
    (("stop", "a", "--force"), "vmctl: stop: unknown option '--force'"),
    (("list", "extra"), "vmctl: list: too many arguments ('extra'); it takes none"),
    (("version", "extra"), "vmctl: version: too many arguments ('extra'); it takes none"),
    (("events", "x"), "vmctl: events: too many arguments ('x'); it takes none"),
    (("help", "a", "b"), "vmctl: help: too many arguments ('b'); it takes [COMMAND]"),
    (("help", "fly"), "vmctl: unknown command 'fly' (see vmctl --help)"),
    (("run",), "vmctl: run: missing KERNEL"),
    (("run", "k", "--bogus"), "vmctl: run: unknown option '--bogus'"),
    (("run", "k", "--memory"), "vmctl: run: option '--memory' needs a value"),
    (("run", "k1", "k2"), "vmctl: run: too many arguments ('k2'); it takes KERNEL"),
    (("create", "x", "--memory", "lots", "--kernel", "/x"),
     "vmctl: --memory needs a whole number between 1 and 67108864, got 'lots'"),
    (("create", "x", "--memory", "0", "--kernel", "/x"),
     "vmctl: --memory needs a whole number between 1 and 67108864, got '0'"),
    (("create", "x", "--kernel", "/nonexistent"), "vmctl: create: missing --memory"),
    (("create", "x"), "vmctl: create: missing --memory and --kernel"),
    (("create", "--memory", "2", "--kernel", "/x"), "vmctl: create: missing NAME"),
    (("create", "x", "--name", "y"), "vmctl: create: unknown option '--name'"),
    (("translate", "a"), "vmctl: translate: missing GVA"),
    (("translate", "a", "0xzz"),
     "vmctl: translate: GVA must be a number like 0x1000 or 4096, got '0xzz'"),
    (("translate", "a", "1", "--write", "--fetch"),
     "vmctl: translate: --write and --fetch exclude each other"),
    (("mem", "write", "a", "1", "2"), "vmctl: mem: unknown subcommand 'write' (there is: read)"),
    (("mem", "read", "a", "1", "0"), "vmctl: mem: LEN must be a positive number of bytes, got '0'"),
    (("mem", "read", "a"), "vmctl: mem: missing ADDR LEN"),
    (("role", "a", "--vcpu", "x"), "vmctl: --vcpu needs a vCPU number, got 'x'"),
    (("regs",), "vmctl: regs: missing NAME"),
]


@pytest.mark.parametrize("args,message", USAGE_ERRORS)
def test_usage_errors(tmp_path, args, message):
    # No vmmd at this socket: a usage error is found before any connection.
    r = vmctl("--socket", tmp_path / "none.sock", *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == message
    assert "Usage: vmctl" in r.stderr or "(see vmctl --help)" in r.stderr
    assert r.stdout == ""
    # With --json the same error is also on stdout, as JSON (code 0: vmctl's).
    r = vmctl("--json", "--socket", tmp_path / "none.sock", *args)
    assert r.returncode == 2
    assert json.loads(r.stdout) == {"error": {"code": 0, "message": message[len("vmctl: "):]}}


@pytest.mark.parametrize("json_out", [False, True])
def test_local_errors_exit_1_with_json_form(tmp_path, json_out):
    sock = tmp_path / "none.sock"
    cases = [
        (("run", "/nonexistent"), "kernel '/nonexistent': No such file or directory"),
        (("create", "x", "--memory", "2", "--kernel", "/nonexistent"),
         "kernel '/nonexistent': No such file or directory"),
        (("list",), f"cannot connect to vmmd at {sock}: No such file or directory"),
    ]
    for args, message in cases:
        r = vmctl("--socket", sock, *(["--json"] if json_out else []), *args)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.splitlines()[0] == f"vmctl: {message}"
        if json_out:
            assert json.loads(r.stdout) == {"error": {"code": 0, "message": message}}
        else:
            assert r.stdout == ""


def test_unreachable_daemon_is_a_clear_error(tmp_path):
    r = vmctl("--socket", tmp_path / "none.sock", "list")
    assert r.returncode == 1
    assert f"cannot connect to vmmd at {tmp_path}/none.sock" in r.stderr


def test_list_and_info_human_and_json(daemon):
    k = guest("hello.elf")
    assert daemon.vmctl("create", "alpha", "--memory", 32, "--kernel", k).returncode == 0
    assert daemon.vmctl("create", "a-much-longer-name", "--memory", 64, "--vcpus", 2,
                        "--kernel", k, "--cmdline", "exit=3").returncode == 0
    r = daemon.vmctl("list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "MEMORY", "VCPUS", "PID", "UPTIME"]
    # Columns line up: STATE starts at the same offset on every line.
    col = lines[0].index("STATE")
    assert all(line[col:].startswith(("STATE", "defined")) for line in lines)
    assert lines[1].startswith("a-much-longer-name")
    j = json.loads(daemon.vmctl("list", json_out=True).stdout)
    assert [v["name"] for v in j["vms"]] == ["a-much-longer-name", "alpha"]
    assert j["vms"][0]["state"] == "defined" and j["vms"][0]["pid"] is None
    info = json.loads(daemon.vmctl("info", "a-much-longer-name", json_out=True).stdout)
    assert info["vcpus"] == 2 and info["memory"] == 64 and info["cmdline"] == "exit=3"
    human = daemon.vmctl("info", "alpha").stdout.splitlines()
    # One column of values: every ':' at the same offset.
    assert human[:4] == ["name       : alpha", "state      : defined", "memory     : 32 MiB",
                         "vcpus      : 1"]
    assert len({line.index(":") for line in human}) == 1, human


def test_errors_go_to_stderr_with_json_form(daemon):
    r = daemon.vmctl("info", "ghost")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.strip() == "vmctl: VM 'ghost' not found"
    r = daemon.vmctl("info", "ghost", json_out=True)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": {"code": -32001, "message": "VM 'ghost' not found"}}


@needs_kvm
def test_lifecycle_through_vmctl(daemon):
    k = guest("echo.elf")
    assert daemon.vmctl("create", "e", "--memory", 32, "--kernel", k).returncode == 0
    r = daemon.vmctl("start", "e", json_out=True)
    assert r.returncode == 0
    started = json.loads(r.stdout)
    assert started["state"] == "running" and started["pid"] > 0
    r = daemon.vmctl("stop", "e")
    assert r.returncode == 0 and r.stdout.startswith("e: stopped")
    r = daemon.vmctl("delete", "e")
    assert r.returncode == 0 and r.stdout.strip() == "e: deleted"


@needs_kvm
def test_run_starts_a_private_daemon_when_none_is_reachable(tmp_path):
    env = dict(os.environ, VMMD_SOCKET=str(tmp_path / "nobody-here.sock"),
               XDG_RUNTIME_DIR=str(tmp_path))
    r = vmctl("run", guest("hello.elf"), "--cmdline", "exit=5", env=env)
    assert r.returncode == 5, r.stderr
    assert "Hello from the vmmd test guest" in r.stdout
    # The private daemon cleaned up after itself.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("vmctl-")]


@needs_kvm
def test_run_json_prints_the_final_state(daemon):
    r = daemon.vmctl("run", guest("hello.elf"), "--cmdline", "exit=4", json_out=True)
    assert r.returncode == 4
    final = json.loads(r.stdout[r.stdout.index("{"):])
    assert final["state"] == "stopped" and final["exit_status"] == 4
    # Transient: gone once vmctl disconnected.
    assert json.loads(daemon.vmctl("list", json_out=True).stdout)["vms"] == []


@needs_kvm
def test_run_reports_start_failures(daemon, tmp_path):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + b"\0" * 100)
    r = daemon.vmctl("run", bad)
    assert r.returncode == 1
    assert "parameter 'kernel'" in r.stderr


@needs_kvm
@pytest.mark.parametrize("json_out", [False, True])
def test_events_prints_changes_live(daemon, json_out):
    cmd = [str(VMCTL), "--socket", str(daemon.socket)] + (["--json"] if json_out else []) + ["events"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "subscribed to events" in daemon.read_log(), what="vmctl to subscribe")
        with daemon.rpc() as r:
            r.result("vm.create", {"name": "ev", "memory": 32, "kernel": guest("echo.elf")})
            pid = r.result("vm.start", {"name": "ev"})["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_state(r, "ev", "crashed")
        daemon.stop()
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    lines = out.strip().splitlines()
    if json_out:
        msgs = [json.loads(line) for line in lines]
        methods = [m["method"] for m in msgs]
        assert methods.count("vm.state-changed") >= 3
        assert "vm.worker-crashed" in methods and methods[-1] == "daemon.shutting-down"
        crash = next(m for m in msgs if m["method"] == "vm.worker-crashed")["params"]
        assert crash["name"] == "ev" and crash["pid"] == pid
        assert crash["reason"] == "worker killed by signal 9 (Killed)"
    else:
        assert any(line.endswith("ev: defined -> starting") for line in lines)
        assert any("ev: starting -> running (started)" in line for line in lines)
        assert any(f"ev: worker {pid} crashed: worker killed by signal 9 (Killed)" in line
                   for line in lines)
        assert any("ev: running -> crashed (worker killed by signal 9 (Killed))" in line
                   for line in lines)
        assert lines[-1] == "vmmd is shutting down (SIGTERM)"
