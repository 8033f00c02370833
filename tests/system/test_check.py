# What `make check` shows: a skipped system test must say why it was skipped,
# or a host that cannot run a test would look like one that passed it.
import os
import subprocess

from conftest import BUILD, ROOT


def test_check_system_prints_every_skip_reason(tmp_path):
    (tmp_path / "test_skipping.py").write_text(
        "import pytest\n\n"
        "def test_skipped():\n"
        "    pytest.skip('the reason this host cannot run it')\n")
    # A make of our own, not a sub-make of the one running this test.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "check-system",
                        f"BUILD={BUILD}", f"SYSTEM_TESTS={tmp_path}"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 skipped" in r.stdout
    assert "SKIPPED [1] " in r.stdout
    assert "the reason this host cannot run it" in r.stdout
