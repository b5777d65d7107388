"""install.sh installs a system service: it refuses to run as an ordinary user, except to stage with --root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from install_harness import INSTALL_SH, Machine, offline_args


@pytest.mark.parametrize("args", [(), ("--dry-run",), ("--uninstall",), ("--purge",)])
def test_refuses_a_non_root_user(tmp_path, args):
    machine = Machine(tmp_path, uid=1000)
    result = machine.run(*args, staged=False)
    assert result.returncode == 1
    assert "must run as root to install a system service: sudo " in result.stderr
    assert "or stage into a directory with --root DIR" in result.stderr
    assert result.calls == [["id", "-u"]]
    assert result.stdout == ""


def test_non_root_may_stage_with_root(copy_of_installed):
    state = copy_of_installed.state
    copy_of_installed.state_file.write_text(json.dumps({**state, "uid": 1000}))
    result = copy_of_installed.run(*offline_args())
    assert result.returncode == 0, result.output
    assert "Nothing to change" in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_refuses_a_real_unprivileged_user():
    """No shims: the real id, as the real user nobody."""
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)
        script = Path(scratch, "install.sh")
        shutil.copy(INSTALL_SH, script)
        script.chmod(0o755)
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(script), "--dry-run"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
            cwd=scratch,
            timeout=30,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "must run as root" in result.stderr
    assert "--dry-run" in result.stderr  # the command to repeat with sudo


def test_refuses_a_shell_other_than_bash(tmp_path):
    """`sh install.sh` (dash on Debian) gets a clear message, not a syntax error."""
    if shutil.which("dash") is None:
        pytest.skip("dash is not installed")
    result = subprocess.run(["dash", str(INSTALL_SH), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == "install.sh: run it with bash: sudo ./install.sh (or sudo bash install.sh)\n"
