"""Microchip MCP3008 / MCP3004: 10-bit ADC with 8 / 4 inputs, in volts, over SPI."""

from __future__ import annotations

from typing import ClassVar

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._bus import SPIDriver, spi_options

START = 0x01
SINGLE_ENDED = 0x80
FULL_SCALE = 1023


def _inputs(count: int) -> dict[str, int]:
    """Input name -> the SGL/DIFF and D2..D0 bits of the datasheet's configuration table (Table 5-2)."""
    table = {f"CH{n}": SINGLE_ENDED | n << 4 for n in range(count)}
    for n in range(0, count, 2):
        table[f"CH{n}-CH{n + 1}"] = n << 4
        table[f"CH{n + 1}-CH{n}"] = (n + 1) << 4
    return table


@register
class MCP3008(SPIDriver):
    """An MCP3008 (8 inputs) on SPI: voltages from potentiometers, soil probes, light sensors.

    Wire VDD and VREF to 3.3 V (pin 17), AGND and DGND to ground, CLK to
    GPIO11 (pin 23), DOUT to MISO GPIO9 (pin 21), DIN to MOSI GPIO10 (pin 19)
    and CS/SHDN to CE0 GPIO8 (pin 24, ``device = 0``) or CE1 GPIO7 (pin 26,
    ``device = 1``).  Keep every input between 0 V and VDD.

    ``channels`` lists what to measure: ``"CH0"`` .. ``"CH7"`` against
    ground, or a pair such as ``"CH0-CH1"`` (CH0 minus CH1; only the
    neighbours 0/1, 2/3, 4/5, 6/7, either way round).  A differential input
    cannot go negative: below zero it reads 0 V.  As a list the quantities
    are named ``ch0``, ``ch0_ch1``; as a table (``channels = { pot = "CH0" }``)
    you choose the names.  ``vref`` is the voltage on the VREF pin: a code
    of 1024 would be ``vref`` volts.  A reading at full scale (1023) is
    refused, since the real voltage may be higher.
    """

    name = "mcp3008"
    summary = "Microchip MCP3008 10-bit ADC, 8 single-ended or 4 differential inputs in volts (SPI)"
    chip = "MCP3008"
    #: The datasheet's modes 0,0 and 1,1 (its figures 6-1 and 6-2).
    modes = (0, 3)
    channel_count: ClassVar[int] = 8
    options = {
        **spi_options(0, 1_000_000),
        "channels": Option((list, dict), [f"CH{n}" for n in range(8)], "inputs: CH0..CH7, or pairs CH0-CH1, CH1-CH0 .. CH7-CH6"),
        "vref": Option(float, 3.3, "voltage on the VREF pin in volts (3.3 when tied to the Pi's 3.3 V)"),
    }
    provides = tuple(Quantity(f"ch{n}", "V", f"voltage on CH{n}") for n in range(8))

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        table = _inputs(self.channel_count)
        channels = self.config["channels"]
        pairs = list(channels.items()) if isinstance(channels, dict) else [
            (str(c).lower().replace("-", "_"), c) for c in channels
        ]
        if not pairs:
            raise OptionError("channels", f"sensor {sensor!r}: 'channels' is empty; list at least one input")
        self._channels: list[tuple[str, str, int]] = []
        for name, spec in pairs:
            key = str(spec).upper().replace(" ", "")
            if key not in table:
                raise OptionError(
                    "channels",
                    f"sensor {sensor!r}: a {self.chip} has no input {spec!r}; use CH0..CH{self.channel_count - 1} "
                    "or a neighbouring pair such as CH0-CH1",
                )
            self._channels.append((name, key, table[key]))
        vref = self.config["vref"]
        if not 0 < vref <= 5.5:
            raise OptionError("vref", f"sensor {sensor!r}: vref must be above 0 and at most 5.5 V (VDD), not {vref}")

    def quantities(self) -> list[Quantity]:
        return [Quantity(name, "V", f"voltage on {key}") for name, key, _ in self._channels]

    def convert(self, bits: int) -> int:
        """One conversion: start bit, then SGL/DIFF and D2..D0, then clock out B9..B0 (figure 6-1)."""
        reply = self.transfer([START, bits, 0x00])
        if reply[1] & 0x04:
            # The null bit before B9 is always 0; a 1 is the MISO line floating high: no chip answers.
            raise ReadFailed(
                f"{self.where()}: the reply {bytes(reply).hex()} has no null bit before the result: "
                f"no {self.chip} answers; {self.wiring_hint()}"
            )
        return (reply[1] & 0x03) << 8 | reply[2]

    def setup(self) -> None:
        try:
            self.convert(self._channels[0][2])
        except ReadFailed as exc:
            raise DeviceNotFound(str(exc)) from None

    def measure(self) -> dict[str, float]:
        vref = self.config["vref"]
        values = {}
        for name, key, bits in self._channels:
            code = self.convert(bits)
            if code == FULL_SCALE:
                raise ValueRejected(
                    f"{self.where()}: input {key} reads full scale (code 1023): it is at or above "
                    f"vref = {vref} V, the real voltage may be higher; keep it below VREF"
                )
            values[name] = round(code * vref / 1024, 6)
        return values


@register
class MCP3004(MCP3008):
    """An MCP3004 (4 inputs) on SPI; wired and configured as the MCP3008, with CH0..CH3.

    Pairs are CH0-CH1, CH1-CH0, CH2-CH3 and CH3-CH2.
    """

    name = "mcp3004"
    summary = "Microchip MCP3004 10-bit ADC, 4 single-ended or 2 differential inputs in volts (SPI)"
    chip = "MCP3004"
    channel_count = 4
    options = {
        **MCP3008.options,
        "channels": Option((list, dict), [f"CH{n}" for n in range(4)], "inputs: CH0..CH3, or pairs CH0-CH1, CH1-CH0, CH2-CH3, CH3-CH2"),
    }
    provides = tuple(Quantity(f"ch{n}", "V", f"voltage on CH{n}") for n in range(4))
