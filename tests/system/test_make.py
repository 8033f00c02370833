# The top-level commands a newcomer runs: make demo and make install.
import os
import subprocess

from conftest import BUILD, ROOT, needs_kvm


@needs_kvm
def test_make_demo_script():
    r = subprocess.run([str(ROOT / "scripts" / "demo.sh"), str(BUILD)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "==> starting a private vmmd" in r.stdout
    assert "demo: ok" in r.stdout
    assert "vmmd exited cleanly" in r.stdout


@needs_kvm
def test_make_install_into_destdir(tmp_path):
    dest = tmp_path / "root"
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "install",
                        f"BUILD={BUILD}", f"DESTDIR={dest}", "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    vmmd = dest / "usr/sbin/vmmd"
    vmctl = dest / "usr/bin/vmctl"
    assert os.access(vmmd, os.X_OK) and os.access(vmctl, os.X_OK)
    assert (dest / "usr/share/doc/vmmd/README.md").exists()
    # The installed vmctl finds the installed vmmd for a private daemon.
    env = dict(os.environ, VMMD_SOCKET=str(tmp_path / "none.sock"), PATH="/usr/bin:/bin",
               XDG_RUNTIME_DIR=str(tmp_path))
    r = subprocess.run([str(vmctl), "run", str(BUILD / "guests" / "hello.elf"), "--cmdline",
                        "exit=6"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 6, r.stderr
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "uninstall",
                        f"BUILD={BUILD}", f"DESTDIR={dest}", "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert not vmmd.exists() and not vmctl.exists()
