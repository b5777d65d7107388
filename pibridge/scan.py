"""``pibridge scan``: which I2C addresses answer, and which supported chips could be there.

It probes like ``i2cdetect -y``: a quick write to most addresses, a one-byte
read to 0x30-0x37 and 0x50-0x5F, where a quick write can upset EEPROMs.
The chip names come from each I2C driver's declared ``addresses``, narrowed
by its ``identify`` where the chip has an id register, so a new driver file
shows up here without changing this module.
"""

from __future__ import annotations

import argparse
import errno
import sys

from pibridge.drivers import available
from pibridge.drivers.i2c import _bus as _i2c

#: What :func:`probe` says about one address.
ANSWERS, ABSENT, BUSY = "answers", "absent", "busy"


def known_chips() -> dict[int, list[type]]:
    """Address -> the registered driver classes whose chip can sit there."""
    chips: dict[int, list[type]] = {}
    for cls in available().values():
        for address in getattr(cls, "addresses", ()):
            chips.setdefault(address, []).append(cls)
    return chips


def _label(cls: type) -> str:
    return f'{getattr(cls, "chip", "") or cls.name} (driver = "{cls.name}")'


def describe(bus, address: int, candidates: list[type]) -> str:
    """One line on what is at *address*: the chip its id register names, or the chips it could be."""
    if not candidates:
        return "no pibridge driver knows this address"
    verdicts = [(cls, cls.identify(bus, address) if hasattr(cls, "identify") else None) for cls in candidates]
    confirmed = [cls for cls, verdict in verdicts if verdict is True]
    if confirmed:
        return "is: " + ", ".join(map(_label, confirmed)) + " (checked its id register)"
    possible = [cls for cls, verdict in verdicts if verdict is None]
    if possible:
        return "could be: " + ", ".join(map(_label, possible))
    return "a chip whose id matches none of: " + ", ".join(map(_label, candidates))


def probe(bus, address: int) -> str:
    """Whether a chip acknowledges *address*: ANSWERS, ABSENT or BUSY (claimed by a kernel driver)."""
    try:
        if 0x30 <= address <= 0x37 or 0x50 <= address <= 0x5F:
            bus.read_byte(address)
        else:
            bus.write_quick(address)
    except OSError as exc:
        return BUSY if exc.errno == errno.EBUSY else ABSENT
    return ANSWERS


def scan(bus) -> dict[int, str]:
    """Probe every usable address; return those that are not absent."""
    found = {}
    for address in range(_i2c.FIRST_ADDRESS, _i2c.LAST_ADDRESS + 1):
        state = probe(bus, address)
        if state != ABSENT:
            found[address] = state
    return found


def table(found: dict[int, str]) -> str:
    """The grid ``i2cdetect`` prints: the address where a chip answers, UU where a kernel driver sits."""
    lines = ["     " + "  ".join(f"{col:x}" for col in range(16)).rstrip()]
    for row in range(0, 0x80, 0x10):
        cells = []
        for address in range(row, row + 0x10):
            if not _i2c.FIRST_ADDRESS <= address <= _i2c.LAST_ADDRESS:
                cells.append("  ")
            elif address in found:
                cells.append("UU" if found[address] == BUSY else f"{address:02x}")
            else:
                cells.append("--")
        lines.append(f"{row:02x}: " + " ".join(cells).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pibridge scan", description="List the I2C addresses that answer and the supported chips that live there."
    )
    parser.add_argument("--bus", type=int, default=1, help="I2C bus number (default 1: GPIO2/GPIO3)")
    args = parser.parse_args(argv)
    try:
        bus = _i2c.open_bus_for(args.bus, "pibridge scan")
    except Exception as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        found = scan(bus)
        print(f"I2C bus {args.bus}:")
        print(table(found))
        print()
        if not found:
            print(
                "No chip answers.  Check the wiring (SDA to GPIO2 / pin 3, SCL to GPIO3 / pin 5, 3.3 V and GND), "
                "that the board has power, and that I2C is enabled."
            )
            return 0
        chips = known_chips()
        for address, state in found.items():
            if state == BUSY:
                print(f"0x{address:02x}  in use: {_i2c.kernel_driver_advice(args.bus, address)}")
            else:
                print(f"0x{address:02x}  {describe(bus, address, chips.get(address, []))}")
    finally:
        bus.close()
    return 0
