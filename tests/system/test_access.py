# Access control: peer credentials on every connection; root, vmmd's own
# user and members of the group get full access on the main socket; a
# read-only socket serves only the query methods to anyone; denied calls get
# a clear error and are logged with the peer's uid and pid.
import grp
import json
import os
import re
import socket
import stat
import subprocess
import sys

import pytest

from conftest import (ROOT, Daemon, create_vm, needs_kvm, serve_to_other_users, wait_for,
                      wait_state)

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to act as other users")

# A client run as another user: sends each request line, prints each reply.
CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
out = []
for i, (method, params) in enumerate(json.loads(sys.argv[2])):
    f.write(json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": i}).encode() + b"\n")
    f.flush()
    out.append(json.loads(f.readline()))
print(json.dumps({"pid": os.getpid(), "replies": out}))
""".replace("import json,", "import json, os,")


def call_as_with_pid(sock, calls, uid=NOBODY, gid=NOBODY, extra_groups=()):
    """The replies of a client run as uid, and that client's pid."""
    r = subprocess.run([sys.executable, "-c", CLIENT, str(sock), json.dumps(calls)],
                       user=uid, group=gid, extra_groups=list(extra_groups),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    return out["replies"], out["pid"]


def call_as(sock, calls, **kw):
    return call_as_with_pid(sock, calls, **kw)[0]


def method_table():
    """Every method name in vmmd's method table (vmmd/methods.c)."""
    text = (ROOT / "vmmd" / "methods.c").read_text()
    table = text[text.index("const struct api_method vmmd_methods[] = {"):]
    table = table[:table.index("\n};")]
    return re.findall(r'\.name = "([a-z.]+)"', table)


@pytest.fixture
def group():
    # An existing group that nobody is not in by default.
    g = grp.getgrnam("users")
    return g


@pytest.fixture
def served(group):
    d = Daemon(extra_args=["--group", group.gr_name,
                           "--ro-socket", "/tmp/placeholder"])
    d.extra_args[-1] = str(d.dir / "ro" / "vmmd-ro.sock")
    yield from serve_to_other_users(d)


def test_socket_modes_and_owner(served, group):
    st = os.stat(served.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == group.gr_gid
    ro = os.stat(served.dir / "ro" / "vmmd-ro.sock")
    assert stat.S_IMODE(ro.st_mode) == 0o666


def test_group_member_gets_full_access(served, group):
    replies = call_as(served.socket, [["vm.list", {}],
                                      ["vm.create", {"name": "mine", "memory": 32,
                                                     "kernel": "/nonexistent"}]],
                      extra_groups=[group.gr_gid])
    assert replies[0]["result"] == {"vms": []}
    # Past the access check: refused for the kernel, not for permission.
    assert replies[1]["error"]["code"] == -32602


def test_others_cannot_even_connect_to_the_main_socket(served):
    with pytest.raises(AssertionError, match="Permission denied"):
        call_as(served.socket, [["vm.list", {}]])


def test_unauthorised_peer_is_refused_and_logged(served, group):
    # A socket left world-writable by mistake: the credential check still holds.
    os.chmod(served.socket, 0o666)
    replies = call_as(served.socket, [["vm.list", {}], ["vm.start", {"name": "x"}]])
    for r in replies:
        assert r["error"]["code"] == -32006
        assert r["error"]["message"] == \
            f"permission denied: uid {NOBODY} is not root and not in group '{group.gr_name}'"
    log = served.read_log()
    assert f"denied vm.list to uid {NOBODY} pid " in log
    assert f"denied vm.start to uid {NOBODY} pid " in log


def test_read_only_socket_serves_queries_to_anyone(served):
    with served.rpc() as r:
        create_vm(r, "shown")
    ro = served.dir / "ro" / "vmmd-ro.sock"
    replies = call_as(ro, [["vm.list", {}], ["vm.info", {"name": "shown"}],
                           ["daemon.version", {}], ["vm.delete", {"name": "shown"}],
                           ["vm.console.attach", {"name": "shown"}]])
    assert [v["name"] for v in replies[0]["result"]["vms"]] == ["shown"]
    assert replies[1]["result"]["state"] == "defined"
    assert "version" in replies[2]["result"]
    for r, method in ((replies[3], "vm.delete"), (replies[4], "vm.console.attach")):
        assert r["error"]["code"] == -32006
        assert r["error"]["message"] == (f"permission denied: {method} needs full access and "
                                         "this connection is read-only (read-only socket)")
    assert f"denied vm.delete to uid {NOBODY}" in served.read_log()
    with served.rpc() as r:
        assert r.result("vm.info", {"name": "shown"})["state"] == "defined"


def test_root_on_the_read_only_socket_is_read_only_too(served):
    from conftest import Rpc
    with Rpc(served.dir / "ro" / "vmmd-ro.sock") as r:
        err = r.error("vm.create", {"name": "x", "memory": 32, "kernel": "/k"})
        assert err["code"] == -32006


# What the read-only socket serves: what vmmd knows about its VMs. Nothing
# that changes anything, and nothing that shows what runs inside a guest
# (console, registers, memory, page tables, CPUID): guest state holds the
# guest's secrets, and this socket is open to every local user.
READ_ONLY_METHODS = {"daemon.version", "vm.list", "vm.info", "events.subscribe"}


# Valid parameters of every method for a running VM named "guest", so a
# refusal can only come from the access check. A method added to the table
# must be added here too (the next test fails until it is).
PARAMS = {
    "daemon.version": {}, "vm.list": {}, "events.subscribe": {},
    "vm.info": {"name": "guest"},
    "vm.create": {"name": "intruder", "memory": 32, "kernel": "/k.elf"},
    "vm.start": {"name": "guest"}, "vm.stop": {"name": "guest"},
    "vm.delete": {"name": "guest"}, "vm.update": {"name": "guest", "memory": 64},
    "vm.pause": {"name": "guest"}, "vm.resume": {"name": "guest"},
    "vm.reset": {"name": "guest"},
    "vm.console.attach": {"name": "guest", "history": True},
    "vm.console.detach": {"name": "guest"},
    "vm.console.write": {"name": "guest", "data": "aGkK"},
    "vm.memory.read": {"name": "guest", "addr": 0x100000, "len": 16},
    "vm.translate": {"name": "guest", "gva": "0x100000"},
    "vcpu.registers": {"name": "guest", "vcpu": 0},
    "vcpu.role": {"name": "guest", "vcpu": 0},
    "vcpu.cpuid": {"name": "guest", "vcpu": 0},
    "vcpu.state.save": {"name": "guest", "vcpu": 0},
    "vcpu.state.load": {"name": "guest", "vcpu": 0, "state": "AAAA"},
}


def test_this_test_knows_every_method():
    methods = method_table()
    assert len(methods) == len(set(methods))
    assert set(methods) == set(PARAMS)
    assert READ_ONLY_METHODS < set(methods)


@needs_kvm
def test_every_method_on_the_read_only_socket(served):
    with served.rpc() as r:
        create_vm(r, "guest", kernel="counter.elf")
        pid = r.result("vm.start", {"name": "guest"})["pid"]
    ro = served.dir / "ro" / "vmmd-ro.sock"
    methods = method_table()
    # events.subscribe last: after it, notifications may come between replies.
    order = sorted(methods, key=lambda m: m == "events.subscribe")
    replies, client_pid = call_as_with_pid(ro, [[m, PARAMS[m]] for m in order])
    log = served.read_log()
    for method, reply in zip(order, replies):
        if method in READ_ONLY_METHODS:
            assert "result" in reply, (method, reply)
            continue
        assert reply.get("error", {}).get("code") == -32006, (method, reply)
        why = (f"permission denied: {method} needs full access and this connection is "
               "read-only (read-only socket)")
        assert reply["error"]["message"] == why
        assert f"denied {method} to uid {NOBODY} pid {client_pid}: {why}" in log, method
    assert [v["name"] for v in replies[order.index("vm.list")]["result"]["vms"]] == ["guest"]
    # Nothing was changed: the guest still runs in the same worker, untouched.
    with served.rpc() as r:
        info = r.result("vm.info", {"name": "guest"})
        assert (info["state"], info["pid"], info["memory"]) == ("running", pid, 32)
        assert [v["name"] for v in r.result("vm.list")["vms"]] == ["guest"]
        r.result("vm.stop", {"name": "guest"})


# Opens N connections to a socket, each checked with vm.list unless vmmd
# refuses it first; prints what each got, then holds them until stdin closes.
HOLDER = r"""
import json, select, socket, sys
held, out = [], []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    f = s.makefile("rwb")
    if not select.select([s], [], [], 0.3)[0]:
        f.write(b'{"jsonrpc":"2.0","method":"vm.list","id":1}\n')
        f.flush()
    line = f.readline()
    out.append(json.loads(line) if line else None)
    held.append((s, f))
print(json.dumps({"pid": __import__("os").getpid(), "replies": out}), flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def ro_limited():
    d = Daemon(extra_args=["--ro-socket", "/tmp/placeholder", "--limit", "max-ro-connections=3",
                           "--limit", "max-connections=2"])
    d.extra_args[1] = str(d.dir / "ro" / "vmmd-ro.sock")
    yield from serve_to_other_users(d)


def test_read_only_users_cannot_crowd_out_administrators(ro_limited):
    d = ro_limited
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d.dir / "ro" / "vmmd-ro.sock"),
                               "4"], user=NOBODY, group=NOBODY, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        out = json.loads(holder.stdout.readline())
        replies = out["replies"]
        assert [r["result"] for r in replies[:3]] == [{"vms": []}] * 3
        assert replies[3]["error"] == {"code": -32005, "message": "too many connections on the "
                                       "read-only socket (limit 3)"}
        assert (f"refused a connection from uid {NOBODY} pid {out['pid']}: too many "
                "connections on the read-only socket (limit 3)") in d.read_log()
        # With the read-only socket full, administrators still get all of
        # max-connections on the main socket, and work normally.
        with d.rpc() as a, d.rpc() as b:
            create_vm(a, "admin-vm")
            assert [v["name"] for v in b.result("vm.list")["vms"]] == ["admin-vm"]
            a.result("vm.delete", {"name": "admin-vm"})
            third = socket.socket(socket.AF_UNIX)
            third.connect(str(d.socket))
            reply = json.loads(third.makefile().readline())
            assert reply["error"] == {"code": -32005, "message": "too many connections (limit 2)"}
            third.close()
    finally:
        holder.stdin.close()
        holder.wait(10)
    # The read-only socket serves again once its connections are gone.
    wait_for(lambda: call_as(d.dir / "ro" / "vmmd-ro.sock", [["vm.list", {}]])[0].get("result"),
             what="a free read-only slot")


# Subscribes on a socket, says so, then prints the first vm.state-changed to
# crashed and vm.info of that VM.
WATCHER = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def call(method, params, i):
    f.write(json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": i}).encode() + b"\n")
    f.flush()
    while True:
        msg = json.loads(f.readline())
        if msg.get("id") == i:
            return msg
call("events.subscribe", {}, 1)
print("subscribed", flush=True)
while True:
    msg = json.loads(f.readline())
    if msg.get("method") == "vm.state-changed" and msg["params"]["new"] == "crashed":
        break
print(json.dumps({"event": msg["params"], "info": call("vm.info", {"name": sys.argv[2]}, 2)}))
"""


@needs_kvm
def test_crash_registers_are_kept_from_the_read_only_socket(served):
    # A vCPU that stops on an error reports its registers in the reason:
    # guest contents, like vcpu.registers, so read-only peers get the reason
    # without them, in vm.info and in events.
    ro = served.dir / "ro" / "vmmd-ro.sock"
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(ro), "tf"], user=NOBODY,
                               group=NOBODY, stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout.readline() == "subscribed\n"
        with served.rpc() as r:
            r.result("events.subscribe")
            create_vm(r, "tf", kernel="triple-fault.elf")
            r.result("vm.start", {"name": "tf"})
            full = r.wait_notification("vm.state-changed", lambda p: p["new"] == "crashed")
            info = wait_state(r, "tf", "crashed")
        seen = json.loads(watcher.stdout.readline())
    finally:
        watcher.kill()
        watcher.wait()
    public = "vcpu 0: guest triple fault (KVM_EXIT_SHUTDOWN)"
    assert full["reason"].startswith(public + "; rip=0x") and " rax=0x" in full["reason"]
    assert info["reason"] == full["reason"]
    assert seen["event"]["reason"] == public
    assert seen["event"]["new"] == "crashed" and seen["event"]["name"] == "tf"
    assert seen["info"]["result"]["reason"] == public
    assert seen["info"]["result"]["state"] == "crashed"
