"""What the TI ADS1015 (12-bit) and ADS1115 (16-bit) share: the register map, the input
multiplexer, the gain table and single-shot conversions.

Both chips have the same four registers, the same config register layout and the same
full-scale ranges (ADS1015 datasheet SBAS473 section 8.6.3, ADS1115 SBAS444 section 9.6.3).
They differ in the data rates DR[7:5] select and in the result: the ADS1115 fills all 16
bits, the ADS1015 gives 12 bits left-justified (bits 3:0 of the conversion register always
read 0).  A subclass says which with :attr:`ADS1x15.bits` and :attr:`ADS1x15.data_rates`.
"""

from __future__ import annotations

import time
from typing import ClassVar

from pibridge.readings import Quantity

from .. import Option, OptionError, ValueRejected
from .._bits import signed
from ._bus import I2CDriver, bus_options

REG_CONVERSION = 0x00
REG_CONFIG = 0x01
#: input -> MUX bits 14:12 of the config register
MUX = {"A0-A1": 0b000, "A0-A3": 0b001, "A1-A3": 0b010, "A2-A3": 0b011, "A0": 0b100, "A1": 0b101, "A2": 0b110, "A3": 0b111}
#: gain -> (PGA bits 11:9, full-scale range in volts), as in the datasheets' full-scale range tables
GAINS = {2 / 3: (0b000, 6.144), 1: (0b001, 4.096), 2: (0b010, 2.048), 4: (0b011, 1.024), 8: (0b100, 0.512), 16: (0b101, 0.256)}
OS_START = 0x8000
MODE_SINGLE_SHOT = 0x0100
COMPARATOR_OFF = 0b11
ADDRESSES = (0x48, 0x49, 0x4A, 0x4B)


def channel_options(data_rates: dict[int, int], default_rate: int) -> dict[str, Option]:
    """The options every ADS1x15 takes; only the data rates differ between the chips."""
    *most, last = map(str, data_rates)
    rates = f"{', '.join(most)} or {last}"
    return {
        **bus_options(ADDRESSES),
        "channels": Option((list, dict), ["A0", "A1", "A2", "A3"], "inputs to measure: A0..A3, A0-A1, A0-A3, A1-A3, A2-A3"),
        "gain": Option(float, 1.0, "2/3 (±6.144 V), 1 (±4.096 V), 2, 4, 8 or 16 (±0.256 V)"),
        "data_rate": Option(int, default_rate, f"samples per second: {rates}"),
    }


class ADS1x15(I2CDriver):
    """Base of the ADS1015 and ADS1115 drivers: channels, gain, data rate, single-shot reads."""

    #: Bits in a result: 16 (ADS1115) or 12 (ADS1015, left-justified in the 16-bit register).
    bits: ClassVar[int] = 16
    #: samples per second -> DR bits 7:5 of the config register
    data_rates: ClassVar[dict[int, int]] = {}
    addresses = ADDRESSES
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
                    "channels", f"sensor {sensor!r}: unknown {self.chip} input {spec!r}; use one of {', '.join(MUX)}"
                )
            self._channels.append((name, MUX[key]))
        gain = self.config["gain"]
        match = [g for g in GAINS if abs(g - gain) < 0.01]
        if not match:
            raise OptionError("gain", f"sensor {sensor!r}: gain must be 2/3, 1, 2, 4, 8 or 16, not {gain}")
        self._pga, self.full_scale = GAINS[match[0]]
        if self.config["data_rate"] not in self.data_rates:
            raise OptionError(
                "data_rate", f"sensor {sensor!r}: data_rate must be one of {', '.join(map(str, self.data_rates))}"
            )

    def quantities(self) -> list[Quantity]:
        return [Quantity(name, "V", f"voltage on {self._input_name(mux)}") for name, mux in self._channels]

    @staticmethod
    def _input_name(mux: int) -> str:
        return next(name for name, bits in MUX.items() if bits == mux)

    def config_word(self, mux: int) -> int:
        """The config register value that starts one conversion of *mux* (datasheets' config register table)."""
        rate = self.data_rates[self.config["data_rate"]]
        return OS_START | mux << 12 | self._pga << 9 | MODE_SINGLE_SHOT | rate << 5 | COMPARATOR_OFF

    def setup(self) -> None:
        # No id register: an acknowledged read of the config register is the presence check.
        self.read_word_be(REG_CONFIG)

    def counts(self, word: int) -> int:
        """The signed result in the conversion register *word*, in LSBs of this chip's resolution."""
        return signed(word, 16) >> (16 - self.bits)

    def measure(self) -> dict[str, float]:
        period = 1.0 / self.config["data_rate"]
        top = (1 << (self.bits - 1)) - 1
        values = {}
        for name, mux in self._channels:
            self.write_word_be(REG_CONFIG, self.config_word(mux))
            time.sleep(period)
            # The oscillator is only accurate to about 10 %, so poll for the end rather than trust the period.
            self.poll(lambda: self.read_word_be(REG_CONFIG) & OS_START, 3 * period + 0.01, "the conversion")
            word = self.read_word_be(REG_CONVERSION)
            self.check_result(word)
            code = self.counts(word)
            if code in (top, -top - 1):
                raise ValueRejected(
                    f"{self.where()}: input {self._input_name(mux)} is at the end of the ±{self.full_scale} V range; "
                    "the real voltage may be beyond it: use a smaller gain (and keep inputs below VDD + 0.3 V)"
                )
            values[name] = round(code * self.full_scale / (top + 1), 9)
        return values

    def check_result(self, word: int) -> None:
        """Raise if the conversion register *word* cannot come from this chip (see ADS1015)."""
