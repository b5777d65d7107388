"""Maxim MAX31855: a thermocouple's temperature, cold-junction compensated, over SPI (read only)."""

from __future__ import annotations

from pibridge.readings import Quantity

from .. import DeviceNotFound, ReadFailed, ValueRejected, register
from .._bits import signed
from ._bus import SPIDriver, spi_options

FAULT = 1 << 16
RESERVED = 1 << 17 | 1 << 3
#: fault bit -> what it means and what to check (datasheet Table 3, "Memory Map—Descriptions")
FAULTS = {
    1 << 0: "open circuit (OC): no thermocouple between T+ and T-; check it is screwed in",
    1 << 1: "thermocouple shorted to GND (SCG); check the probe's sheath and the leads",
    1 << 2: "thermocouple shorted to VCC (SCV); check the leads",
}
#: The chip converts continuously; one conversion takes up to 100 ms (datasheet, Electrical Characteristics).
CONVERSION_S = 0.1


def decode(frame: int) -> tuple[float, float]:
    """(thermocouple °C, cold junction °C) from a 32-bit frame: D31..D18 in 0.25 °C, D15..D4 in 0.0625 °C."""
    return signed(frame >> 18, 14) * 0.25, signed(frame >> 4, 12) * 0.0625


def faults(frame: int) -> list[str]:
    return [text for bit, text in FAULTS.items() if frame & bit]


@register
class MAX31855(SPIDriver):
    """A MAX31855 board with a thermocouple (type K on the common MAX31855K boards).

    Wire VIN to 3.3 V (pin 17), GND to ground, CLK to GPIO11 (pin 23), DO to
    MISO GPIO9 (pin 21) and CS to CE0 GPIO8 (pin 24, ``device = 0``) or CE1
    GPIO7 (pin 26, ``device = 1``).  The chip has no data input: leave MOSI
    unconnected.  Screw the thermocouple's yellow (+) lead to T+ and its red
    (-) lead to T-.

    Reports the thermocouple's temperature (0.25 °C steps) and the chip's
    own, cold-junction temperature (0.0625 °C steps).  A broken, unplugged
    or shorted thermocouple is reported by the chip's fault bits and gives
    a failed read naming the fault.  The chip assumes a linear thermocouple
    (41.276 µV/°C for type K), so readings far from room temperature carry
    the thermocouple's own non-linearity, a few °C at most.
    """

    name = "max31855"
    summary = "Maxim MAX31855 thermocouple and cold-junction temperature (SPI)"
    chip = "MAX31855"
    modes = (0,)
    options = spi_options(0, 5_000_000)
    provides = (
        Quantity("temperature", "°C", "thermocouple (hot junction) temperature"),
        Quantity("cold_junction", "°C", "the chip's own temperature (cold junction)"),
    )

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return CONVERSION_S

    def frame(self) -> int:
        """The 32 bits D31..D0, most significant first (datasheet Table 2, "Memory Map")."""
        data = self.transfer([0, 0, 0, 0])
        return int.from_bytes(bytes(data), "big")

    def setup(self) -> None:
        frame = self.frame()
        if frame & RESERVED or frame == 0:
            level = "all zeros" if frame == 0 else f"{frame:#010x} with the always-0 bits D17/D3 set"
            raise DeviceNotFound(f"{self.where()}: read {level}: no {self.chip} answers; {self.wiring_hint()}")

    def measure(self) -> dict[str, float]:
        frame = self.frame()
        if frame & RESERVED:
            raise ReadFailed(
                f"{self.where()}: read {frame:#010x} with the always-0 bits D17/D3 set: the chip stopped "
                f"answering; {self.wiring_hint()}"
            )
        if frame & FAULT:
            found = faults(frame) or ["a fault bit without a cause"]
            raise ReadFailed(f"{self.where()}: the chip reports " + "; ".join(found))
        thermocouple, cold_junction = decode(frame)
        if not -55.0 <= cold_junction <= 125.0:
            raise ValueRejected(
                f"{self.where()}: cold-junction temperature {cold_junction} °C is outside the chip's "
                "range (-55 to 125 °C)"
            )
        return {"temperature": thermocouple, "cold_junction": cold_junction}
