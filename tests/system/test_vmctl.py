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


def test_usage_errors():
    assert vmctl().returncode == 2
    r = vmctl("fly")
    assert r.returncode == 2 and "unknown command 'fly'" in r.stderr
    r = vmctl("--bogus", "list")
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr
    r = vmctl("start")
    assert r.returncode == 2 and "start needs NAME" in r.stderr
    r = vmctl("create", "x", "--memory", "lots", "--kernel", "/x")
    assert r.returncode == 2 and "--memory needs a whole number" in r.stderr
    r = vmctl("create", "x", "--memory", "0", "--kernel", "/x")
    assert r.returncode == 2 and "--memory" in r.stderr
    r = vmctl("create", "x", "--kernel", "/nonexistent")
    assert r.returncode == 2 and "kernel '/nonexistent'" in r.stderr
    r = vmctl("run")
    assert r.returncode == 2 and "run needs exactly one KERNEL" in r.stderr


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
    human = daemon.vmctl("info", "alpha").stdout
    assert "state      : defined" in human and "memory:      32 MiB" in human


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
