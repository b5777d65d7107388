"""A temporary copy of the kernel's 1-Wire sysfs tree (``/sys/bus/w1/devices``).

The files have the kernel's formats (w1_therm): ``w1_slave`` holds the nine
scratchpad bytes with the CRC verdict, then the same bytes with the
temperature in millidegrees; ``w1_bus_master1/w1_master_slaves`` lists one
device id per line.
"""

from __future__ import annotations

from pathlib import Path


def maxim_crc8(data: bytes) -> int:
    """Maxim application note 27: x^8 + x^5 + x^4 + 1, bits sent least significant first."""
    crc = 0
    for byte in data:
        for bit in range(8):
            feedback = (crc ^ (byte >> bit)) & 1
            crc = (crc >> 1) ^ (0x8C if feedback else 0)
    return crc


def scratchpad(millidegrees: int, config: int = 0x7F) -> bytes:
    """The DS18B20's nine scratchpad bytes for a temperature (12-bit, 1/16 °C steps)."""
    raw = round(millidegrees * 16 / 1000) & 0xFFFF
    body = bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, config, 0xFF, 0x0E, 0x10])
    return body + bytes([maxim_crc8(body)])


def w1_slave_text(pad: bytes, millidegrees: int | None = None, crc_ok: bool | None = None) -> str:
    """The two lines the kernel writes; the verdict follows the CRC unless forced."""
    hexes = " ".join(f"{b:02x}" for b in pad)
    ok = maxim_crc8(pad[:8]) == pad[8] if crc_ok is None else crc_ok
    if millidegrees is None:
        raw = pad[0] | pad[1] << 8
        raw = raw - 0x10000 if raw & 0x8000 else raw
        millidegrees = raw * 1000 // 16
    return f"{hexes} : crc={pad[8]:02x} {'YES' if ok else 'NO'}\n{hexes} t={millidegrees}\n"


class W1Tree:
    """Builds and changes a fake ``devices`` folder under *root*."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.master = root / "w1_bus_master1"
        self.master.mkdir(exist_ok=True)
        self._update_listing()

    def _update_listing(self):
        ids = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("w1_bus_master"))
        (self.master / "w1_master_slaves").write_text("".join(f"{i}\n" for i in ids) or "not found.\n")
        (self.master / "w1_master_slave_count").write_text(f"{len(ids)}\n")

    def add(self, device_id: str, text: str) -> Path:
        folder = self.root / device_id
        folder.mkdir(exist_ok=True)
        (folder / "w1_slave").write_text(text)
        self._update_listing()
        return folder

    def remove(self, device_id: str) -> None:
        folder = self.root / device_id
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        self._update_listing()
