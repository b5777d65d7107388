"""TI ADS1115: four analog inputs (or two differential pairs) in volts over I2C."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import Option, OptionError, ValueRejected, register
from ._bus import I2CDriver, bus_options

REG_CONVERSION = 0x00
REG_CONFIG = 0x01
#: input -> MUX bits 14:12 of the config register
MUX = {"A0-A1": 0b000, "A0-A3": 0b001, "A1-A3": 0b010, "A2-A3": 0b011, "A0": 0b100, "A1": 0b101, "A2": 0b110, "A3": 0b111}
#: gain -> (PGA bits 11:9, full-scale range in volts), as in the datasheet's full-scale range table
GAINS = {2 / 3: (0b000, 6.144), 1: (0b001, 4.096), 2: (0b010, 2.048), 4: (0b011, 1.024), 8: (0b100, 0.512), 16: (0b101, 0.256)}
#: samples per second -> DR[7:5]
DATA_RATES = {8: 0b000, 16: 0b001, 32: 0b010, 64: 0b011, 128: 0b100, 250: 0b101, 475: 0b110, 860: 0b111}
OS_START = 0x8000
MODE_SINGLE_SHOT = 0x0100
COMPARATOR_OFF = 0b11


@register
class ADS1115(I2CDriver):
    """An ADS1115 board: up to four voltages (soil moisture probes, batteries, potentiometers).

    Wire VDD to 3.3 V (pin 1), GND to ground, SDA to GPIO2 (pin 3), SCL to
    GPIO3 (pin 5).  The ADDR pin picks the address: GND 0x48, VDD 0x49, SDA
    0x4A, SCL 0x4B.  Never put more than VDD + 0.3 V on an input, whatever
    the gain.

    ``channels`` lists what to measure: ``"A0"`` .. ``"A3"`` against ground,
    or the pairs ``"A0-A1"``, ``"A0-A3"``, ``"A1-A3"``, ``"A2-A3"``
    differentially.  As a list the quantities are named ``a0``, ``a0_a1``;
    as a table (``channels = { battery = "A0" }``) you choose the names.
    ``gain`` sets the full-scale range: 2/3 = ±6.144 V, 1 = ±4.096 V,
    2 = ±2.048 V, 4 = ±1.024 V, 8 = ±0.512 V, 16 = ±0.256 V.  A reading at
    the end of the range is refused, since the real voltage may be higher.
    """

    name = "ads1115"
    summary = "TI ADS1115 16-bit ADC, 4 single-ended or 2 differential inputs in volts (I2C)"
    chip = "ADS1115"
    addresses = (0x48, 0x49, 0x4A, 0x4B)
    options = {
        **bus_options((0x48, 0x49, 0x4A, 0x4B)),
        "channels": Option((list, dict), ["A0", "A1", "A2", "A3"], "inputs to measure: A0..A3, A0-A1, A0-A3, A1-A3, A2-A3"),
        "gain": Option(float, 1.0, "2/3 (±6.144 V), 1 (±4.096 V), 2, 4, 8 or 16 (±0.256 V)"),
        "data_rate": Option(int, 128, "samples per second: 8, 16, 32, 64, 128, 250, 475 or 860"),
    }
    #: With the default channels; other channels report under their own names (a0_a1, or yours).
    provides = tuple(Quantity(f"a{n}", "V", f"voltage on A{n}") for n in range(4))

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        channels = self.config["channels"]
        pairs = list(channels.items()) if isinstance(channels, dict) else [
            (str(c).lower().replace("-", "_"), c) for c in channels
        ]
        if not pairs:
            raise OptionError("channels", f"sensor {sensor!r}: 'channels' is empty; list at least one input")
        self._channels: list[tuple[str, int]] = []
        for name, spec in pairs:
            key = str(spec).upper().replace(" ", "")
            if key not in MUX:
                raise OptionError(
                    "channels", f"sensor {sensor!r}: unknown ADS1115 input {spec!r}; use one of {', '.join(MUX)}"
                )
            self._channels.append((name, MUX[key]))
        gain = self.config["gain"]
        match = [g for g in GAINS if abs(g - gain) < 0.01]
        if not match:
            raise OptionError("gain", f"sensor {sensor!r}: gain must be 2/3, 1, 2, 4, 8 or 16, not {gain}")
        self._pga, self.full_scale = GAINS[match[0]]
        if self.config["data_rate"] not in DATA_RATES:
            raise OptionError("data_rate", f"sensor {sensor!r}: data_rate must be one of {', '.join(map(str, DATA_RATES))}")

    def quantities(self) -> list[Quantity]:
        return [Quantity(name, "V", f"voltage on {self._input_name(mux)}") for name, mux in self._channels]

    @staticmethod
    def _input_name(mux: int) -> str:
        return next(name for name, bits in MUX.items() if bits == mux)

    def config_word(self, mux: int) -> int:
        """The config register value that starts one conversion of *mux* (datasheet 9.6.3)."""
        rate = DATA_RATES[self.config["data_rate"]]
        return OS_START | mux << 12 | self._pga << 9 | MODE_SINGLE_SHOT | rate << 5 | COMPARATOR_OFF

    def setup(self) -> None:
        # No id register: an acknowledged read of the config register is the presence check.
        self.read_word_be(REG_CONFIG)

    def measure(self) -> dict[str, float]:
        period = 1.0 / self.config["data_rate"]
        values = {}
        for name, mux in self._channels:
            self.write_word_be(REG_CONFIG, self.config_word(mux))
            time.sleep(period)
            self.poll(lambda: self.read_word_be(REG_CONFIG) & OS_START, 3 * period + 0.01, "the conversion")
            code = self.read_word_be(REG_CONVERSION)
            if code & 0x8000:
                code -= 0x10000
            if code in (32767, -32768):
                raise ValueRejected(
                    f"{self.where()}: input {self._input_name(mux)} is at the end of the ±{self.full_scale} V range; "
                    "the real voltage may be beyond it: use a smaller gain (and keep inputs below VDD + 0.3 V)"
                )
            values[name] = round(code * self.full_scale / 32768, 9)
        return values
