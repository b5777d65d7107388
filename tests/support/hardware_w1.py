"""A temporary copy of the kernel's 1-Wire sysfs tree (``/sys/bus/w1/devices``).

The files have the kernel's formats (w1_therm): ``w1_slave`` holds the nine
scratchpad bytes with the CRC verdict, then the same bytes with the
temperature in millidegrees (empty when the kernel's own conversion check
fails); ``w1_bus_master1/w1_master_slaves`` lists one device id per line.
The scratchpad builders give each family's bytes as its datasheet lays them out.
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


def _with_crc(body: bytes) -> bytes:
    return body + bytes([maxim_crc8(body)])


def scratchpad(millidegrees: int | None = None, config: int = 0x7F, raw: int | None = None) -> bytes:
    """A DS18B20's nine scratchpad bytes after a conversion (12-bit: 1/16 °C steps).

    Byte 6 is what genuine Maxim parts leave there after converting, 0x10 - (LSB & 0x0F); it
    reads 0x0C only at power-on (see :data:`DS18B20_POWER_ON`).
    """
    if raw is None:
        raw = round(millidegrees * 16 / 1000)
    raw &= 0xFFFF
    return _with_crc(bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, config, 0xFF, 0x10 - (raw & 0x0F), 0x10]))


#: DS18B20 datasheet, memory map: power-up state of the scratchpad, 0550h (+85 °C), TH 4Bh, TL 46h,
#: config 7Fh, reserved FFh, 0Ch, 10h.
DS18B20_POWER_ON = _with_crc(bytes.fromhex("5005" "4b46" "7fff" "0c10"))


def ds18s20_scratchpad(raw: int, count_remain: int, count_per_c: int = 0x10) -> bytes:
    """A DS18S20's scratchpad: 0.5 °C steps in bytes 0-1, COUNT_REMAIN and COUNT_PER_C in bytes 6-7."""
    raw &= 0xFFFF
    return _with_crc(bytes([raw & 0xFF, raw >> 8, 0x4B, 0x46, 0xFF, 0xFF, count_remain, count_per_c]))


def max31850_scratchpad(thermocouple_raw: int, cold_junction_raw: int, fault: int = 0, address: int = 0) -> bytes:
    """A MAX31850's scratchpad (datasheet, memory map).

    Bytes 0-1: the thermocouple temperature in bits 15-2 (0.25 °C each), bit 0 the fault flag;
    bytes 2-3: the cold junction in bits 15-4 (0.0625 °C), bits 0-2 of byte 2 the open (1),
    short-to-GND (2) and short-to-VDD (4) faults; byte 4: 1111 and the AD3-AD0 pins; bytes 5-7: FFh.
    """
    tc = (thermocouple_raw << 2 & 0xFFFC) | (1 if fault else 0)
    cj = (cold_junction_raw << 4 & 0xFFF0) | (fault & 0x07)
    return _with_crc(bytes([tc & 0xFF, tc >> 8, cj & 0xFF, cj >> 8, 0xF0 | address, 0xFF, 0xFF, 0xFF]))


def kernel_millidegrees(pad: bytes) -> int:
    """The ``t=`` figure w1_therm prints for a DS18B20: raw * 1000 / 16, truncated toward zero as C does."""
    raw = pad[0] | pad[1] << 8
    raw = raw - 0x10000 if raw & 0x8000 else raw
    return int(raw * 1000 / 16)


def w1_slave_text(pad: bytes, millidegrees: int | None = None, crc_ok: bool | None = None) -> str:
    """The two lines the kernel writes; the verdict follows the CRC unless forced."""
    hexes = " ".join(f"{b:02x}" for b in pad)
    ok = maxim_crc8(pad[:8]) == pad[8] if crc_ok is None else crc_ok
    if millidegrees is None:
        millidegrees = kernel_millidegrees(pad)
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
