"""Vishay VEML7700: ambient light in lux over I2C, 0.0036 lx to 120 klx with auto-range."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ValueRejected, register
from ._bus import I2CDriver, bus_options

REG_CONFIG = 0x00
REG_POWER_SAVING = 0x03
REG_ALS = 0x04
REG_ID = 0x07
DEVICE_ID = 0x81  # low byte of the ID register; the high byte (0xC4) encodes the address option
SHUTDOWN = 0x0001
#: gain -> ALS_GAIN bits 12:11 (datasheet doc. 84286, table "ALS_CONF_0")
GAINS = {0.125: 0b10, 0.25: 0b11, 1.0: 0b00, 2.0: 0b01}
GAIN_NAMES = {"1/8": 0.125, "1/4": 0.25, "1": 1.0, "2": 2.0}
#: integration time in ms -> ALS_IT bits 9:6
INTEGRATION_TIMES = {25: 0b1100, 50: 0b1000, 100: 0b0000, 200: 0b0001, 400: 0b0010, 800: 0b0011}
#: lx per count at gain 2 and 800 ms; application note "Designing the VEML7700 Into an Application"
#: (doc. 84323), table "Resolution and maximum detection range": halving the gain or the
#: integration time doubles it, up to 1.8432 lx at gain 1/8 and 25 ms.
FINEST_RESOLUTION = 0.0036
#: Power-on to first measurement (app note: wait 2.5 ms after clearing ALS_SD).
START_S = 0.0025
#: The app note's minimum wait is one integration time; a quarter more covers a slow oscillator.
MARGIN = 1.25
SATURATED = 0xFFFF
#: Above this many lx the correction applies.
CORRECTION_FROM = 1000.0
#: Auto-range thresholds of the app note's flow chart (fig. "Flow chart: ALS calculation"):
#: at most 100 counts raises gain then integration time, above 10000 counts shortens it.
TOO_FEW, TOO_MANY = 100, 10000
AUTO_GAINS = (0.125, 0.25, 1.0, 2.0)
AUTO_TIMES = (25, 50, 100, 200, 400, 800)


def resolution(gain: float, integration_ms: int) -> float:
    """lx per count at *gain* and *integration_ms* (the application note's resolution table)."""
    return FINEST_RESOLUTION * (2.0 / gain) * (800 / integration_ms)


def corrected(lux: float) -> float:
    """The application note's correction of the non-linearity at high illuminance (fourth-order
    polynomial, page 5: "for illuminations > 1000 lx a correction formula needs to be applied")."""
    return (((6.0135e-13 * lux - 9.3924e-9) * lux + 8.1488e-5) * lux + 1.0023) * lux


@register
class VEML7700(I2CDriver):
    """A VEML7700 board: illuminance in lux, from moonlight to direct sun.

    Wire VIN to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The address is fixed at 0x10.  The chip is checked by
    its id register at start.

    With ``gain = "auto"`` (the default) each read follows the application
    note's auto-range: it starts at gain 1/8 and 100 ms, raises the gain and
    then the integration time while the count is at most 100, or shortens
    the integration time while it is above 10000.  A read then takes 0.13 to
    2.3 s.  A fixed ``gain`` (1/8, 1/4, 1 or 2) with ``integration_time`` (25,
    50, 100, 200, 400 or 800 ms, default 100) keeps the chip converting and
    reads the latest result.  Above 1000 lx the note's correction for the
    sensor's non-linearity is applied (``correction = false`` turns it off).
    A saturated reading is refused.
    """

    name = "veml7700"
    summary = "Vishay VEML7700 ambient light in lux, auto-ranging (I2C)"
    chip = "VEML7700"
    addresses = (0x10,)
    options = {
        **bus_options((0x10,)),
        "gain": Option((float, str), "auto", '"auto", or 1/8, 1/4, 1 or 2 (write "1/8" or 0.125)'),
        "integration_time": Option(int, None, "ms with a fixed gain: 25, 50, 100 (default), 200, 400 or 800"),
        "correction": Option(bool, True, "apply the application note's high-light non-linearity correction"),
    }
    provides = (Quantity("illuminance", "lx", "ambient light, weighted like the human eye"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        gain, integration = self.config["gain"], self.config["integration_time"]
        self.auto = gain == "auto"
        if self.auto:
            if integration is not None:
                raise OptionError(
                    "integration_time",
                    f"sensor {sensor!r}: with gain = \"auto\" the driver picks the integration time; "
                    "leave integration_time out or give a fixed gain too",
                )
            self.gain, self.integration_ms = AUTO_GAINS[0], 100
        else:
            self.gain = self._parse_gain(sensor, gain)
            self.integration_ms = 100 if integration is None else integration
            if self.integration_ms not in INTEGRATION_TIMES:
                raise OptionError(
                    "integration_time",
                    f"sensor {sensor!r}: integration_time must be 25, 50, 100, 200, 400 or 800 (ms), not {integration}",
                )
        self._ready_at = 0.0

    @staticmethod
    def _parse_gain(sensor: str, gain) -> float:
        value: float | None = float(gain) if not isinstance(gain, str) else GAIN_NAMES.get(gain.strip())
        if value is None:
            try:
                value = float(gain)
            except ValueError:
                pass
        if value not in GAINS:
            raise OptionError("gain", f'sensor {sensor!r}: gain must be "auto", 1/8, 1/4, 1 or 2, not {gain!r}')
        return value

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return 0.0 if self.auto else self.integration_ms / 1000 * MARGIN

    @classmethod
    def identify(cls, bus, address):
        try:
            low, _high = bus.read_i2c_block_data(address, REG_ID, 2)
        except OSError:
            return None
        return low == DEVICE_ID

    def read_word(self, register: int) -> int:
        """The chip's registers are 16 bits sent least significant byte first."""
        low, high = self.read_block(register, 2)
        return high << 8 | low

    def write_word(self, register: int, value: int) -> None:
        self.write_block(register, [value & 0xFF, value >> 8])

    def config_word(self, gain: float, integration_ms: int, shutdown: bool = False) -> int:
        return GAINS[gain] << 11 | INTEGRATION_TIMES[integration_ms] << 6 | (SHUTDOWN if shutdown else 0)

    def setup(self) -> None:
        ident = self.read_word(REG_ID)
        if ident & 0xFF != DEVICE_ID:
            raise DeviceNotFound(
                f"{self.where()}: its id register reads {ident:#06x}, not 0x..81: "
                "the chip at this address is not a VEML7700"
            )
        self.write_word(REG_POWER_SAVING, 0)
        if self.auto:
            self.write_word(REG_CONFIG, self.config_word(self.gain, self.integration_ms, shutdown=True))
        else:
            self._start(self.gain, self.integration_ms)

    def _start(self, gain: float, integration_ms: int) -> None:
        """Program the settings in shutdown, then power on, so the next result is wholly theirs."""
        self.write_word(REG_CONFIG, self.config_word(gain, integration_ms, shutdown=True))
        self.write_word(REG_CONFIG, self.config_word(gain, integration_ms))
        self._ready_at = time.monotonic() + START_S + integration_ms / 1000 * MARGIN

    def _counts(self) -> int:
        wait = self._ready_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return self.read_word(REG_ALS)

    def measure(self) -> dict[str, float]:
        if self.auto:
            gain, integration_ms, counts = self._auto_range()
        else:
            gain, integration_ms, counts = self.gain, self.integration_ms, self._counts()
        if counts >= SATURATED:
            # The application note's "maximum possible illuminance" is the full 2^16 counts.
            top = (SATURATED + 1) * resolution(gain, integration_ms)
            advice = (" even at gain 1/8 and 25 ms: shade the sensor or put a diffuser in front" if self.auto
                      else ': use gain = "auto", a lower gain or a shorter integration_time')
            raise ValueRejected(f"{self.where()}: the light sensor is saturated (above {top:.0f} lx){advice}")
        lux = counts * resolution(gain, integration_ms)
        if lux > CORRECTION_FROM and self.config["correction"]:
            lux = corrected(lux)
        return {"illuminance": round(lux, 4)}

    def _auto_range(self) -> tuple[float, int, int]:
        """The application note's flow chart; returns the settings used and the count."""
        g, t = 0, AUTO_TIMES.index(100)
        self._start(AUTO_GAINS[g], AUTO_TIMES[t])
        counts = self._counts()
        if counts > TOO_FEW:
            while counts > TOO_MANY and t > 0:
                t -= 1
                self._start(AUTO_GAINS[g], AUTO_TIMES[t])
                counts = self._counts()
        else:
            while counts <= TOO_FEW and (g, t) != (len(AUTO_GAINS) - 1, len(AUTO_TIMES) - 1):
                if g < len(AUTO_GAINS) - 1:
                    g += 1
                else:
                    t += 1
                self._start(AUTO_GAINS[g], AUTO_TIMES[t])
                counts = self._counts()
        self.write_word(REG_CONFIG, self.config_word(AUTO_GAINS[g], AUTO_TIMES[t], shutdown=True))
        return AUTO_GAINS[g], AUTO_TIMES[t], counts
