# scripts/install-deps.sh: the package list, and that a machine which ran
# `make check` has every package (the script is what CI relies on).
import os
import pathlib
import subprocess
import tempfile

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-deps.sh"


def run(*args, **kw):
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, **kw)


def test_list_names_every_required_package():
    r = run("--list")
    assert r.returncode == 0
    pkgs = r.stdout.split()
    for p in ("libev-dev", "libjson-c-dev", "libseccomp-dev", "libcmocka-dev",
              "python3-pytest", "qemu-system-x86"):
        assert p in pkgs


def test_ensure_is_silent_when_nothing_is_missing():
    r = run("--ensure")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""


def test_unknown_option_is_a_usage_error():
    r = run("--bogus")
    assert r.returncode == 2
    assert "usage" in r.stderr


def test_non_root_gets_the_apt_get_line():
    # A fake dpkg-query that reports nothing installed, run as an unprivileged
    # user; its directory must be readable by that user.
    uid = 65534 if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        fake = pathlib.Path(d) / "dpkg-query"
        fake.write_text("#!/bin/sh\nexit 1\n")
        fake.chmod(0o755)
        env = dict(os.environ, PATH=f"{d}:/usr/bin:/bin")
        r = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env,
                           user=uid)
    assert r.returncode == 1
    assert "apt-get install -y --no-install-recommends" in r.stderr
    assert "libev-dev" in r.stderr
