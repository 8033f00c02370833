# Access control: peer credentials on every connection; root, vmmd's own
# user and members of the group get full access on the main socket; a
# read-only socket serves only the query methods to anyone; denied calls get
# a clear error and are logged with the peer's uid and pid.
import grp
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import Daemon, create_vm

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
print(json.dumps(out))
"""


def call_as(sock, calls, uid=NOBODY, gid=NOBODY, extra_groups=()):
    r = subprocess.run([sys.executable, "-c", CLIENT, str(sock), json.dumps(calls)],
                       user=uid, group=gid, extra_groups=list(extra_groups),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


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
    d.dir.chmod(0o755)  # others must reach the sockets
    d.start()
    yield d
    try:
        d.stop()
    finally:
        d.cleanup()


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
        assert r["error"]["message"] == (f"permission denied: {method} changes state and this "
                                         "connection is read-only (read-only socket)")
    assert f"denied vm.delete to uid {NOBODY}" in served.read_log()
    with served.rpc() as r:
        assert r.result("vm.info", {"name": "shown"})["state"] == "defined"


def test_root_on_the_read_only_socket_is_read_only_too(served):
    from conftest import Rpc
    with Rpc(served.dir / "ro" / "vmmd-ro.sock") as r:
        err = r.error("vm.create", {"name": "x", "memory": 32, "kernel": "/k"})
        assert err["code"] == -32006
