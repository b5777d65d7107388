"""Aosong AHT20/AHT21/AHT25 (and the older AHT10): temperature and humidity over I2C."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from .._crc import sensirion_crc8
from ._bus import I2CDriver, bus_options

# Commands, AHT20 datasheet (Aosong, version 1.1), section 5.4; the AHT10's initialisation differs.
INITIALISE = {"aht20": (0xBE, 0x08, 0x00), "aht10": (0xE1, 0x08, 0x00)}
TRIGGER = (0xAC, 0x33, 0x00)
SOFT_RESET = 0xBA
STATUS_BUSY = 0x80
STATUS_CALIBRATED = 0x08

POWER_ON_SECONDS = 0.040
INITIALISE_SECONDS = 0.010
MEASURE_SECONDS = 0.080


def humidity(raw: int) -> float:
    """RH = S_RH / 2^20 * 100 % (datasheet section 6.1)."""
    return raw / 1048576.0 * 100.0


def temperature(raw: int) -> float:
    """T = S_T / 2^20 * 200 - 50 °C (datasheet section 6.2)."""
    return raw / 1048576.0 * 200.0 - 50.0


@register
class AHT20(I2CDriver):
    """An AHT20, AHT21, AHT25 or AHT10 board: temperature (°C) and humidity (%RH).

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is 0x38 (an AHT10 with its ADDR pin high:
    0x39).  Set ``model = "aht10"`` for the older AHT10, which starts with
    another command and sends no checksum; the AHT20 family's answers carry
    a CRC-8, checked here.  The chip's status byte says whether its
    calibration is loaded; the driver loads it when it is not.  Read no
    more often than every 2 s, or the chip warms itself.
    """

    name = "aht20"
    summary = "Aosong AHT20/AHT21/AHT25/AHT10 temperature and humidity (I2C)"
    chip = "AHT20"
    addresses = (0x38, 0x39)
    options = {
        **bus_options((0x38, 0x39)),
        "model": Option(str, "aht20", "aht20 (also AHT21, AHT25) or aht10"),
    }
    provides = (
        Quantity("temperature", "°C", "air temperature"),
        Quantity("humidity", "%RH", "relative humidity"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["model"] not in INITIALISE:
            raise OptionError("model", f"sensor {sensor!r}: model must be aht20 or aht10, not {self.config['model']!r}")
        if self.config["address"] == 0x39 and self.config["model"] != "aht10":
            raise OptionError("address", f"sensor {sensor!r}: only an AHT10 can be at 0x39; the AHT20 is always at 0x38")

    @property
    def has_crc(self) -> bool:
        return self.config["model"] == "aht20"

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return 2.0

    def status(self) -> int:
        return self.receive(1)[0]

    def setup(self) -> None:
        time.sleep(POWER_ON_SECONDS)
        if not self.status() & STATUS_CALIBRATED:
            model = self.config["model"].upper()
            try:
                self.send(*INITIALISE[self.config["model"]])
            except OSError as exc:
                raise DeviceNotFound(
                    f"{self.where()}: the chip answers but refuses the {model} initialisation command "
                    f"(errno {exc.errno}): it is not an {model} (check model)"
                ) from None
            time.sleep(INITIALISE_SECONDS)
            status = self.status()
            if not status & STATUS_CALIBRATED:
                raise DeviceNotFound(
                    f"{self.where()}: the calibration bit (status bit 3) stays 0 after initialisation "
                    f"(status {status:#04x}): the chip is not an {model} (check model) or is damaged"
                )

    def measure(self) -> dict[str, float]:
        self.send(*TRIGGER)
        time.sleep(MEASURE_SECONDS)
        self.poll(lambda: not self.status() & STATUS_BUSY, 0.1, "the measurement")
        data = self.receive(7 if self.has_crc else 6)
        if self.has_crc:
            expected = sensirion_crc8(data[:6])
            if data[6] != expected:
                raise ReadFailed(
                    f"{self.where()}: CRC mismatch (got {data[6]:#04x}, expected {expected:#04x} for "
                    f"{data[:6].hex()}): noise on the bus; keep I2C wires short and check the pull-ups"
                )
        if not data[0] & STATUS_CALIBRATED:
            # A brown-out drops the calibration; initialising again restores it.
            self.send(*INITIALISE[self.config["model"]])
            raise ReadFailed(f"{self.where()}: the chip lost its calibration (a brown-out?); it was reloaded")
        raw_h = data[1] << 12 | data[2] << 4 | data[3] >> 4
        raw_t = (data[3] & 0x0F) << 16 | data[4] << 8 | data[5]
        t = temperature(raw_t)
        if not -40.0 <= t <= 85.0:
            raise ValueRejected(f"{self.where()}: temperature {t:.2f} °C is outside the chip's range (-40 to 85 °C)")
        return {"temperature": round(t, 2), "humidity": round(humidity(raw_h), 2)}
