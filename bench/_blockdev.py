"""A block device of its own for a benchmark's storage dir, and its write counters.

The SD-card benchmark counts what reaches the device (``/sys/block/<dev>/stat``,
sectors written), which includes what the file system adds: its journal, inode
and directory blocks.  On a shared disk other processes write too, so the
benchmark gives each daemon an ext4 file system of its own on a loop device
(an image file, mounted as root, removed afterwards).  Without root it falls
back to the device that holds the directory, and says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SECTOR = 512


@dataclass
class BlockDevice:
    """A mounted file system and the block device under it."""

    mount: Path
    name: str  # e.g. "loop3" or "vda"
    private: bool  # only this benchmark writes to it

    def sectors_written(self) -> int:
        """Sectors written to the device since boot (field 7 of /sys/block/<dev>/stat)."""
        fields = Path(f"/sys/block/{self.name}/stat").read_text().split()
        return int(fields[6])

    def bytes_written(self) -> int:
        return self.sectors_written() * SECTOR

    def flush(self) -> None:
        """Write back everything dirty on this file system (syncfs), so the counters include it."""
        fd = os.open(self.mount, os.O_RDONLY)
        try:
            os.syncfs(fd) if hasattr(os, "syncfs") else os.sync()
        finally:
            os.close(fd)


def device_of(path: Path) -> str:
    """The /sys/block name of the whole disk holding *path* (a partition maps to its disk)."""
    st = os.stat(path)
    sys_dev = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}").resolve()
    if (sys_dev / "partition").exists():
        sys_dev = sys_dev.parent
    if not (sys_dev / "stat").exists():
        raise OSError(f"{path} is not on a block device (tmpfs or overlay?): its device {sys_dev} has no stat")
    return sys_dev.name


def can_loop_mount() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("losetup", "mkfs.ext4", "mount", "umount"))


@contextlib.contextmanager
def private_ext4(parent: Path | None, size_mb: int = 256) -> Iterator[BlockDevice]:
    """An ext4 file system on a loop device of its own, mounted under *parent*; removed afterwards.

    Made with mkfs.ext4's defaults (4 KiB blocks, a journal, ordered data), as
    Raspberry Pi OS formats its card; mounted ``noatime`` like its root.
    """
    with tempfile.TemporaryDirectory(prefix="pibridge-blk-", dir=parent) as tmp:
        image = Path(tmp) / "fs.img"
        mount = Path(tmp) / "mnt"
        mount.mkdir()
        with image.open("wb") as f:
            f.truncate(size_mb * 2**20)
        # Inode tables and journal zeroed now, not by a kernel thread later while the figures run.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image)],
                       check=True)
        loop = subprocess.run(["losetup", "--find", "--show", str(image)], check=True,
                              capture_output=True, text=True).stdout.strip()
        try:
            subprocess.run(["mount", "-o", "noatime", loop, str(mount)], check=True)
            try:
                yield BlockDevice(mount, Path(loop).name, private=True)
            finally:
                subprocess.run(["umount", str(mount)], check=False)
        finally:
            subprocess.run(["losetup", "-d", loop], check=False)


@contextlib.contextmanager
def storage_device(parent: Path | None) -> Iterator[BlockDevice]:
    """A private loop-mounted ext4 when run as root, else the device holding *parent* (shared)."""
    if can_loop_mount():
        with private_ext4(parent) as dev:
            yield dev
        return
    with tempfile.TemporaryDirectory(prefix="pibridge-blk-", dir=parent) as tmp:
        yield BlockDevice(Path(tmp), device_of(Path(tmp)), private=False)
