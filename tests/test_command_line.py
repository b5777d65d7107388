"""The ``pibridge`` command line itself: global options and how it ends when its reader goes away."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
[agent]
host = "localhost"
[storage]
dir = "{dir}"
[[sensors]]
name = "bench"
driver = "mock"
interval = 5.0
"""


def pibridge(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pibridge.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, **kwargs)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(dir=tmp_path / "state"), encoding="utf-8")
    return path


@pytest.mark.parametrize("form", [["-c", "{}"], ["--config", "{}"], ["--config={}"]])
def test_the_config_option_is_accepted_before_the_command(config_file, form):
    before = pibridge(*[part.format(config_file) for part in form], "status", "--json")
    after = pibridge("status", "-c", str(config_file), "--json")
    assert before.returncode == after.returncode
    assert str(config_file.parent / "state") in before.stdout + before.stderr
    assert before.stdout == after.stdout


def test_a_global_config_option_without_a_path_says_what_it_needs():
    result = pibridge("-c")
    assert result.returncode == 2
    assert "needs the path of a config file" in result.stderr


def test_a_command_that_reads_no_config_refuses_the_option(config_file):
    result = pibridge("-c", str(config_file), "drivers")
    assert result.returncode == 2
    assert "drivers reads no config file" in result.stderr


def test_a_closed_pipe_ends_the_command_without_a_traceback():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "pibridge.cli", "drivers"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr
    assert result.stderr == ""
    assert result.returncode == 141
