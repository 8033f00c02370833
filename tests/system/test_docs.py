# What the documentation shows must be what vmmd and vmctl do: the README's
# tour runs as written, and the example error messages are the real ones.
import json
import os
import re
import shutil
import signal
import subprocess

import pytest

from conftest import BUILD, ROOT, create_vm, guest, needs_kvm


def sh_blocks(text):
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def tour_blocks():
    readme = (ROOT / "README.md").read_text()
    tour = readme[readme.index("## A short tour"):readme.index("## Where things are")]
    return sh_blocks(tour)


def command_of(line):
    """The command of a README line, without its trailing comment."""
    return re.sub(r"\s+#\s.*$", "", line).replace("build/", f"{BUILD}/")


# Around each tour line: vmmd in the background must be serving before the
# next line (a person typing is slower than a script); the interactive
# console gets one line of input and is detached once the guest echoed it;
# a line that fails ends the run, except one that shows its status itself.
WAIT_FOR_SOCKET = ('i=0; while [ ! -S /run/vmmd/vmmd.sock ]; do i=$((i+1)); '
                   '[ $i -lt 200 ] || exit 90; sleep 0.05; done')
CONSOLE = ('printf "hello tour\\n" | {cmd} >console.out 2>&1 & c=$!; i=0; '
           'until grep -q "hello tour" console.out; do i=$((i+1)); [ $i -lt 200 ] || exit 91; '
           'sleep 0.05; done; kill $c; wait $c || true; cat console.out')
CHECKED = '{cmd} || {{ echo "tour line failed: {cmd}" >&2; exit 92; }}'


def tour_script():
    lines = ["mount -t tmpfs readme-run /run || exit 93",
             "mount -t tmpfs readme-lib /var/lib || exit 93",
             'trap \'[ -n "$vmmd" ] && kill "$vmmd" 2>/dev/null\' EXIT']
    for block in tour_blocks():
        for line in block.strip().splitlines():
            cmd = command_of(line)
            if cmd.endswith("&"):
                lines += [f"{cmd} vmmd=$!", WAIT_FOR_SOCKET]
            elif " console " in cmd:
                lines.append(CONSOLE.format(cmd=cmd))
            elif "echo $?" in cmd:
                lines.append(cmd)
            else:
                lines.append(CHECKED.format(cmd=cmd))
    lines.append('kill -TERM "$vmmd" && wait "$vmmd" && vmmd=')
    return "\n".join(lines)


@needs_kvm
def test_readme_tour_runs_as_written(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("socat"):
        pytest.skip("the tour runs as root, here in a mount namespace (unshare) with its own "
                    "/run and /var/lib, and uses socat")
    script = tour_script()
    assert f"{BUILD}/vmmd &" in script and "vmctl create web1" in script
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, f"{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    out = stdout.splitlines()
    assert any(re.match(r"web1\s+running\s+64 MiB\s+1\s+\d+", line) for line in out), out
    assert "echo: ready" in stdout and "hello tour" in stdout
    assert any(line.startswith("web1: stopped") for line in out), out
    assert "42" in out  # `vmctl run ... --cmdline exit=42; echo $?`
    listed = json.loads(next(line for line in out if line.startswith('{"jsonrpc"')))
    assert [vm["name"] for vm in listed["result"]["vms"]] == ["web1"]


def doc(name):
    return (ROOT / "docs" / name).read_text()


def test_wrong_state_example_is_the_real_message(rpc):
    create_vm(rpc, "web1")
    real = rpc.error("vm.stop", {"name": "web1"})
    assert real["code"] == -32003
    assert f"`{real['message']}`" in doc("api.md")
    assert " ".join(f"`{real['message']}`".split()) in " ".join(doc("architecture.md").split())


def test_memory_example_is_the_real_message(rpc):
    host = rpc.result("daemon.version")["max_memory"]
    real = rpc.error("vm.create", {"name": "web1", "memory": 99999999,
                                   "kernel": guest("hello.elf")})
    example = re.search(r'"message":"(parameter \'memory\'[^"]*)"', doc("api.md"))[1]
    assert re.sub(r"and \d+ MiB", f"and {host} MiB", example) == real["message"]


def test_params_examples_are_the_real_messages(rpc):
    api = doc("api.md")
    rpc.send_raw(b'{"jsonrpc":"2.0","method":"vm.list","params":"x","id":1}\n')
    err = rpc.recv()["error"]
    assert err == {"code": -32600,
                   "message": "invalid request: 'params' must be an object or an array"}
    assert "`params` neither an object nor an array" in api
    err = rpc.error("vm.list", [1])
    assert err["code"] == -32602
    assert f"`{err['message']}`" in api
