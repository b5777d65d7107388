"""Helpers and fixtures of the outbox tests: readings to store and small real file systems to fill up."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from pibridge.readings import Reading

#: One clock for the tests and the writers they start as child processes (see child_env), so
#: that a child's readings can be compared with make_readings in the test.
NOW_MS = int(os.environ.get("PIBRIDGE_TEST_NOW_MS") or time.time() * 1000)


def make_readings(count: int, start: int = 0, sensor: str = "greenhouse-bme280") -> list[Reading]:
    """``count`` readings of five doubles, timestamps a millisecond apart from now."""
    return [
        Reading(
            sensor,
            NOW_MS + start + i,
            {
                "temperature": 20.0 + (start + i) / 1000,
                "humidity": 55.5,
                "pressure": 1013.25,
                "gas": 12345.0 + start + i,
                "altitude": -3.0,
            },
        )
        for i in range(count)
    ]


def timestamps(entries) -> list[int]:
    return [e.reading.timestamp_ms for e in entries]


class TinyFs:
    """A tmpfs of a few hundred kB, mounted for one test: it fills up and it can go read-only."""

    def __init__(self, mountpoint: Path, size_kb: int) -> None:
        self.path = mountpoint
        self.size_kb = size_kb
        self.filler = mountpoint / "filler"

    def fill(self) -> None:
        """Take every free byte (a real ENOSPC for whoever writes next)."""
        chunk = b"\0" * 4096
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while os.write(fd, chunk):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True, capture_output=True)


@pytest.fixture
def tiny_fs(tmp_path: Path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    size_kb = 512
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mountpoint)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here: cannot make a small file system to fill up")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield TinyFs(mountpoint, size_kb)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def child_env() -> dict[str, str]:
    repo = Path(__file__).resolve().parents[2]
    return dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                PIBRIDGE_TEST_NOW_MS=str(NOW_MS))
