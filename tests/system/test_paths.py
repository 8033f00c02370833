# The default paths (docs/architecture.md#paths) with neither --socket nor
# --state-dir: a user's vmmd under $XDG_RUNTIME_DIR and ~/.local/share, and
# root's under /run/vmmd and /var/lib/vmmd, with vmctl finding the socket
# by itself. The user is nobody with a temporary HOME and XDG_RUNTIME_DIR;
# root's run takes place in a mount namespace whose /run and /var/lib are
# empty tmpfs, so the host's are never touched.
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import VMCTL, VMMD, guest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="running vmmd as another user or in a mount namespace needs root")

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def nobody_dirs():
    top = tempfile.mkdtemp(prefix="vmmd-paths-", dir="/tmp")
    os.chmod(top, 0o755)
    home, xdg = os.path.join(top, "home"), os.path.join(top, "xdg")
    for d, mode in ((home, 0o755), (xdg, 0o700)):
        os.mkdir(d, mode)
        os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)
    yield home, xdg
    shutil.rmtree(top, ignore_errors=True)


def as_nobody(args, env, **kw):
    return dict(args=[str(a) for a in args], env=env, user=NOBODY.pw_uid,
                group=NOBODY.pw_gid, extra_groups=[], **kw)


def test_a_users_vmmd_and_vmctl_agree_on_the_default_paths(nobody_dirs):
    home, xdg = nobody_dirs
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": xdg}
    r, w = os.pipe()
    log = tempfile.TemporaryFile()
    vmmd = subprocess.Popen(**as_nobody([VMMD, "--ready-fd", w], env, pass_fds=(w,),
                                        stdout=log, stderr=log))
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 10)
        assert ready and os.read(r, 16) == b"READY\n"
        sock = os.path.join(xdg, "vmmd", "vmmd.sock")
        assert os.stat(sock).st_uid == NOBODY.pw_uid

        def vmctl(*args):
            return subprocess.run(**as_nobody([VMCTL, "--json", *args], env),
                                  capture_output=True, text=True, timeout=30)
        version = vmctl("version")
        assert version.returncode == 0, version.stderr
        assert json.loads(version.stdout)["pid"] == vmmd.pid
        created = vmctl("create", "w", "--memory", 2, "--kernel", guest("hello.elf"))
        assert created.returncode == 0, created.stderr
        state = os.path.join(home, ".local", "share", "vmmd")
        assert json.loads(created.stdout)["console_log"] == f"{state}/console/w.log"
        with open(f"{state}/vms/w.json") as f:
            assert json.load(f)["definition"]["name"] == "w"
        assert [v["name"] for v in json.loads(vmctl("list").stdout)["vms"]] == ["w"]
    finally:
        os.close(r)
        vmmd.send_signal(signal.SIGTERM)
        rc = vmmd.wait(20)
        log.seek(0)
        assert rc == 0, log.read().decode(errors="replace")


# Root's defaults, in a namespace of its own: vmmd in the background, vmctl
# without --socket, then what ended up where.
ROOT_SCRIPT = r"""
set -e
mount -t tmpfs vmmd-test-run /run
mount -t tmpfs vmmd-test-lib /var/lib
env -u VMMD_SOCKET "$VMMD" --ready-fd 3 3>"$READY" 2>"$LOG" &
pid=$!
read line <"$READY"
env -u VMMD_SOCKET "$VMCTL" --json version
env -u VMMD_SOCKET "$VMCTL" create r --memory 2 --kernel "$KERNEL" >/dev/null
ls /run/vmmd/vmmd.sock /var/lib/vmmd/vms/r.json
kill -TERM $pid
wait $pid
"""


def test_roots_vmmd_and_vmctl_use_run_and_var_lib(tmp_path):
    if not shutil.which("unshare"):
        pytest.skip("root's default paths are tested in a mount namespace: no unshare(1)")
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    env = dict(os.environ, VMMD=str(VMMD), VMCTL=str(VMCTL), KERNEL=guest("hello.elf"),
               READY=str(ready), LOG=str(tmp_path / "vmmd.log"))
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        ROOT_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + (tmp_path / "vmmd.log").read_text()
    version = json.loads(r.stdout[:r.stdout.rindex("}") + 1])
    assert version["version"]
    assert r.stdout.splitlines()[-2:] == ["/run/vmmd/vmmd.sock", "/var/lib/vmmd/vms/r.json"]
    log = (tmp_path / "vmmd.log").read_text()
    assert "serving /run/vmmd/vmmd.sock (state /var/lib/vmmd, run /run/vmmd;" in log
    # The host's /run and /var/lib never saw it.
    assert not os.path.exists("/var/lib/vmmd/vms/r.json")
