# The top-level commands a newcomer runs: make demo and make install.
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, needs_kvm

UNITS = ("vmmd.service", "vmmd.socket", "vmmd-ro.socket")


def make(*args, timeout=300):
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", f"BUILD={BUILD}",
                        *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def unit_setting(text, key):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def assert_service_files(root, prefix):
    """The units, sysusers and tmpfiles entries under root for an install at prefix."""
    unitdir = root / prefix.lstrip("/") / "lib/systemd/system"
    service = (unitdir / "vmmd.service").read_text()
    assert "@" not in service, "unrendered placeholder in the unit"
    assert unit_setting(service, "ExecStart") == [f"{prefix}/sbin/vmmd"]
    assert unit_setting(service, "Documentation") == \
        [f"file:{prefix}/share/doc/vmmd/operations.md"]
    assert unit_setting(service, "Type") == ["notify"]
    assert unit_setting(service, "KillMode") == ["process"]
    for name in ("vmmd.socket", "vmmd-ro.socket"):
        assert (unitdir / name).read_text() == (ROOT / "systemd" / name).read_text()
    lib = root / prefix.lstrip("/") / "lib"
    assert (lib / "sysusers.d/vmmd.conf").read_text() == \
        (ROOT / "systemd/vmmd.sysusers").read_text()
    assert "g vmmd - -" in (lib / "sysusers.d/vmmd.conf").read_text().splitlines()
    tmpfiles = (lib / "tmpfiles.d/vmmd.conf").read_text()
    assert tmpfiles == (ROOT / "systemd/vmmd.tmpfiles").read_text()
    assert "d /run/vmmd 0755 root root -" in tmpfiles.splitlines()
    assert "d /var/lib/vmmd 0700 root root -" in tmpfiles.splitlines()
    return unitdir


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
    assert (dest / "usr/share/doc/vmmd/operations.md").exists()
    # The units name where the files will be, not where DESTDIR put them.
    unitdir = assert_service_files(dest, "/usr")
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
    assert not any((unitdir / name).exists() for name in UNITS)
    assert not (dest / "usr/lib/sysusers.d/vmmd.conf").exists()
    assert not (dest / "usr/lib/tmpfiles.d/vmmd.conf").exists()


def test_make_install_renders_the_unit_for_each_prefix(tmp_path):
    # Two installs in a row into different prefixes, from one build
    # directory: each unit starts the vmmd of its own prefix, and verifies.
    for prefix in (tmp_path / "one", tmp_path / "two"):
        make("install", f"PREFIX={prefix}")
        unitdir = assert_service_files(pathlib.Path("/"), str(prefix))
        assert os.access(prefix / "sbin/vmmd", os.X_OK)
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", *(str(unitdir / n) for n in UNITS)],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert r.stderr.strip() == "", r.stderr
    # Installing again into a prefix renders nothing new.
    assert "GEN" not in make("install", f"PREFIX={tmp_path / 'two'}").stdout
