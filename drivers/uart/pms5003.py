"""Plantower PMS5003 / PMS7003: particulate matter (PM1.0, PM2.5, PM10) and particle counts over a serial port."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._port import port_options
from ._stream import FrameFormat, StreamingDriver

HEADER = b"\x42\x4d"
#: Frame length field of a measurement frame: 13 data words and the check word (manual, Appendix I)
DATA_LENGTH = 28
#: ... and of the answer to a command: the command, its data and the check word
ANSWER_LENGTH = 4
CMD_READ, CMD_MODE, CMD_SLEEP = 0xE2, 0xE1, 0xE4
PASSIVE, ACTIVE = 0x0000, 0x0001
SLEEP, WAKE = 0x0000, 0x0001
#: The manual's effective range of PM2.5 is 0..500 µg/m³ and the maximum 1000 µg/m³.
MAXIMUM = 1000

#: Data words 1..12 in frame order: quantity name, unit, description (manual, Appendix I)
WORDS = (
    ("pm1_0_cf1", "µg/m³", "PM1.0 concentration, CF=1 (standard particle)"),
    ("pm2_5_cf1", "µg/m³", "PM2.5 concentration, CF=1 (standard particle)"),
    ("pm10_cf1", "µg/m³", "PM10 concentration, CF=1 (standard particle)"),
    ("pm1_0", "µg/m³", "PM1.0 concentration, atmospheric environment"),
    ("pm2_5", "µg/m³", "PM2.5 concentration, atmospheric environment"),
    ("pm10", "µg/m³", "PM10 concentration, atmospheric environment"),
    ("particles_0_3um", "1/0.1L", "particles above 0.3 µm in 0.1 L of air"),
    ("particles_0_5um", "1/0.1L", "particles above 0.5 µm in 0.1 L of air"),
    ("particles_1_0um", "1/0.1L", "particles above 1.0 µm in 0.1 L of air"),
    ("particles_2_5um", "1/0.1L", "particles above 2.5 µm in 0.1 L of air"),
    ("particles_5_0um", "1/0.1L", "particles above 5.0 µm in 0.1 L of air"),
    ("particles_10um", "1/0.1L", "particles above 10 µm in 0.1 L of air"),
)


def checksum(data: bytes) -> int:
    """The check word: the 16-bit sum of every byte before it, from the first header byte on."""
    return sum(data) & 0xFFFF


def command(cmd: int, data: int) -> bytes:
    """A 7-byte command: 42 4D, CMD, DATA high, DATA low, check word (manual, Appendix II)."""
    body = HEADER + bytes([cmd, data >> 8, data & 0xFF])
    return body + checksum(body).to_bytes(2, "big")


class PlantowerFrames(FrameFormat):
    header = HEADER
    length_known_after = 4

    def length(self, start: bytes) -> int | None:
        field = int.from_bytes(start[2:4], "big")
        return 4 + field if field in (DATA_LENGTH, ANSWER_LENGTH) else None

    def problem(self, frame: bytes) -> str | None:
        expected, got = checksum(frame[:-2]), int.from_bytes(frame[-2:], "big")
        if expected != got:
            return f"check word {got:#06x}, expected {expected:#06x}"
        return None

    def kind(self, frame: bytes) -> str:
        return "data" if len(frame) == 4 + DATA_LENGTH else "answer"


def decode(frame: bytes) -> dict[str, int]:
    """The 12 data words of a measurement frame, by quantity name."""
    words = [int.from_bytes(frame[4 + 2 * i : 6 + 2 * i], "big") for i in range(len(WORDS))]
    return {name: value for (name, _, _), value in zip(WORDS, words)}


@register
class PMS5003(StreamingDriver):
    """A Plantower PMS5003 or PMS7003 particulate-matter sensor on a serial port.

    Wire the sensor's VCC to 5 V (pin 2 or 4) — its fan needs 5 V — and GND
    to ground, its TX to the Pi's RXD GPIO15 (pin 10) and its RX to TXD
    GPIO14 (pin 8).  Its logic is 3.3 V, so the data lines connect directly.
    Leave SET and RESET unconnected (pulled up inside) or tie them to 3.3 V.
    On a Pi 5 set ``port = "/dev/ttyAMA0"``.

    Reports PM1.0, PM2.5 and PM10 in µg/m³ twice: ``pm2_5`` for the
    atmospheric environment (what to use outdoors and indoors) and
    ``pm2_5_cf1`` with the factory calibration (CF=1, "standard
    particle"), and the particle counts per 0.1 L of air above 0.3, 0.5, 1,
    2.5, 5 and 10 µm.

    ``mode = "active"`` (the sensor's default) lets the sensor stream a
    frame every 0.2 to 2.3 s and reports the newest; ``mode = "passive"``
    asks for each frame.  Every frame's check word is verified; garbage on
    the line is skipped.  ``sleep_on_close = true`` stops the fan and laser
    while pibridge does not run (they wear out, after about 8000 hours); the
    sensor then needs ``warmup`` seconds (30) after waking before its
    values are right, and reads fail meanwhile.
    """

    name = "pms5003"
    summary = "Plantower PMS5003/PMS7003 PM1.0, PM2.5, PM10 (µg/m³) and particle counts (serial)"
    device_name = "PMS5003"
    frame_format = PlantowerFrames()
    data_kind = "data"
    options = {
        **port_options(9600),
        "mode": Option(str, "active", "active (the sensor streams) or passive (each frame asked for)"),
        "timeout": Option(float, 5.0, "seconds without a valid frame before a read fails"),
        "sleep_on_close": Option(bool, False, "put the sensor to sleep (fan and laser off) when pibridge stops"),
        "warmup": Option(float, 30.0, "seconds after waking before values count (only with sleep_on_close)"),
    }
    provides = tuple(Quantity(name, unit, text) for name, unit, text in WORDS)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["mode"] not in ("active", "passive"):
            raise OptionError("mode", f"sensor {sensor!r}: mode must be active or passive, not {self.config['mode']!r}")
        if self.config["timeout"] <= 0:
            raise OptionError("timeout", f"sensor {sensor!r}: timeout must be positive")
        if self.config["warmup"] < 0:
            raise OptionError("warmup", f"sensor {sensor!r}: warmup must be 0 or more seconds")
        self.woken_at = 0.0

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return 1.0

    def configure(self) -> None:
        self.write(command(CMD_SLEEP, WAKE))
        self.woken_at = time.monotonic()
        self.write(command(CMD_MODE, PASSIVE if self.config["mode"] == "passive" else ACTIVE))
        if self.config["mode"] == "passive":
            self._ask()
            if self.wait_for_answer("data", self.woken_at, self.timeout()) is None:
                raise DeviceNotFound(self.silence_message(None, self.timeout()))

    def teardown(self) -> None:
        if self.config["sleep_on_close"] and self._serial is not None:
            try:
                self.write(command(CMD_SLEEP, SLEEP))
            except OSError:
                pass  # the port is going away anyway; the sensor keeps running
        super().teardown()

    def _ask(self) -> float:
        sent_at = time.monotonic()
        self.write(command(CMD_READ, 0))
        return sent_at

    def measure(self) -> dict[str, int]:
        if self.config["mode"] == "passive":
            frame = self.wait_for_answer("data", self._ask(), self.timeout())
            if frame is None:
                raise ReadFailed(self.silence_message(self.reader.latest("data"), self.timeout()))
        else:
            frame = self.latest_frame()
        if self.config["sleep_on_close"]:
            left = self.woken_at + self.config["warmup"] - time.monotonic()
            if left > 0:
                raise ReadFailed(f"{self.where()}: warming up after waking, {left:.0f} s left (the fan must run 30 s)")
        values = decode(frame)
        for name in ("pm1_0_cf1", "pm2_5_cf1", "pm10_cf1", "pm1_0", "pm2_5", "pm10"):
            if values[name] > MAXIMUM:
                raise ValueRejected(
                    f"{self.where()}: {name} = {values[name]} µg/m³ is beyond the sensor's {MAXIMUM} µg/m³ maximum"
                )
        return values


@register
class PMS7003(PMS5003):
    """A Plantower PMS7003: the PMS5003's frames, commands and options in a flatter case.

    Its 10-pin connector (1.27 mm pitch; boards usually bring it out to
    0.1" pins): pins 1-2 VCC to 5 V (pin 2 or 4), 3-4 GND, 7 RX to TXD
    GPIO14 (pin 8), 9 TX to RXD GPIO15 (pin 10); 5 RESET and 10 SET stay
    unconnected.  The data lines are 3.3 V.
    """

    name = "pms7003"
    summary = "Plantower PMS7003 PM1.0, PM2.5, PM10 (µg/m³) and particle counts (serial)"
    device_name = "PMS7003"
