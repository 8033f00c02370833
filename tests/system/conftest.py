# Shared fixtures for the system tests: paths to the built binaries.
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("VMMD_BUILD", ROOT / "build"))


@pytest.fixture(scope="session")
def build_dir():
    return BUILD
