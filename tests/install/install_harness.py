"""Run install.sh for real, against a staged root and PATH shims for the system commands.

The package really goes into a real virtual environment (from this checkout,
offline, without dependencies: the dependencies are pip's business, not the
installer's), files really land under the staged root with real modes and
owners; only the commands that would change this machine are recorded instead
of run (see shim.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO / "install.sh"
SHIM = Path(__file__).with_name("shim.py")
SHIMMED = [
    "apt-get",
    "apt-cache",
    "dpkg-query",
    "dpkg",
    "systemctl",
    "useradd",
    "groupadd",
    "usermod",
    "userdel",
    "groupdel",
    "getent",
    "chown",
    "raspi-config",
    "udevadm",
    "runuser",
    "id",
]
#: The Python that builds the virtual environment: Debian's, as on a Pi.
SYSTEM_PYTHON = "/usr/bin/python3"
#: Commands that change something; none may run in a dry run.
WRITES = {"apt-get", "useradd", "groupadd", "usermod", "userdel", "groupdel", "chown", "udevadm", "runuser"}


def venv_requirements_missing() -> str | None:
    """Why install.sh cannot build its environment here as on a Pi, or None when it can."""
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip, setuptools, wheel"], capture_output=True)
    except FileNotFoundError:
        return f"install.sh builds the environment with Debian's {SYSTEM_PYTHON}, which is missing here"
    if probe.returncode != 0:
        return (
            f"{SYSTEM_PYTHON} lacks ensurepip, setuptools or wheel "
            "(scripts/system-deps.sh --test installs python3-venv python3-setuptools python3-wheel)"
        )
    return None


def machine_state(**overrides) -> dict:
    """A Raspberry Pi OS Bookworm machine on which nothing of pibridge is installed yet."""
    state = {
        "uid": 0,
        "accounts": {"passwd": {}, "group": {}},
        "installed": [],
        "available": ["python3-venv", "i2c-tools", "python3-lgpio", "python3-libgpiod", "libgpiod2"],
        "systemd_version": 252,
        "system_state": "running",
        "active": [],
        "enabled": [],
        "interfaces": {"i2c": 1, "onewire": 1},
        "exit_codes": {},
    }
    state.update(overrides)
    return state


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def called(self, name: str) -> list[list[str]]:
        return [call[1:] for call in self.calls if call[0] == name]


class Machine:
    """A staged root plus the shims' pretend machine, and a way to run install.sh against them."""

    def __init__(self, base: Path, shims: list[str] = SHIMMED, **state):
        self.base = base
        self.root = base / "root"
        self.bin = base / "bin"
        self.state_file = base / "machine.json"
        self.log = base / "calls.jsonl"
        self.root.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        for name in shims:
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{SHIM}" {name} "$@"\n')
            wrapper.chmod(0o755)
        self.state_file.write_text(json.dumps(machine_state(**state)))

    def with_target_accounts(self) -> Machine:
        """Give the staged root an /etc/passwd and /etc/group, as an image being built has."""
        etc = self.root / "etc"
        etc.mkdir(exist_ok=True)
        (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        (etc / "group").write_text("root:x:0:\n")
        return self

    @property
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def run(
        self,
        *args: str,
        staged: bool = True,
        install_sh: Path = INSTALL_SH,
        timeout: float = 120,
        wrap: list[str] = (),
        env: dict[str, str] | None = None,
    ) -> Run:
        """Run install.sh (with --root unless staged=False), behind the command prefix ``wrap``."""
        self.log.write_text("")
        environment = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "SHIM_STATE": str(self.state_file),
            "SHIM_LOG": str(self.log),
            "PIBRIDGE_PYTHON": SYSTEM_PYTHON,
            **(env or {}),
        }
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PIP_INDEX_URL", "PIP_REQUIRE_VIRTUALENV"):
            environment.pop(name, None)
        argv = [*wrap, "bash", str(install_sh), *(["--root", str(self.root)] if staged else []), *args]
        proc = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        if proc.returncode == 0:
            assert "install.sh: error" not in proc.stderr, proc.stderr
        return Run(proc.returncode, proc.stdout, proc.stderr, calls)

    def copy(self, base: Path) -> Machine:
        """An independent copy of this machine, staged root and all, owners included.

        The copy works like the original: the staged environment's scripts
        point at the target path, not at where the files happen to lie.
        """
        shutil.copytree(self.base, base, symlinks=True)
        for path in [base, *base.rglob("*")]:
            st = (self.base / path.relative_to(base)).lstat()
            os.lchown(path, st.st_uid, st.st_gid)
        return Machine(base, **json.loads(self.state_file.read_text()))

    def account(self, db: str, name: str) -> list[str] | None:
        for line in (self.root / "etc" / db).read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                return fields
        return None

    def ids(self, user: str, group: str) -> tuple[int, int]:
        return int(self.account("passwd", user)[2]), int(self.account("group", group)[2])


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its type, mode, owner, mtime and content (or link target)."""
    tree: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = None
            tree[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, content)
    return tree


def offline_args(source: Path | str = REPO) -> list[str]:
    return ["--from", str(source), "--offline", "--no-deps"]
