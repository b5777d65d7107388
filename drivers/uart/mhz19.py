"""Winsen MH-Z19B / MH-Z19C: CO2 concentration in ppm over a serial port, polled by command."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._port import SerialDriver, port_options
from ._stream import FrameFormat, FrameParser

READ_CO2, ABC, RANGE = 0x86, 0x79, 0x99
ABC_ON, ABC_OFF = 0xA0, 0x00
RANGES = (2000, 5000, 10000)
#: The sensor answers within a few tens of milliseconds; this leaves room for a slow USB adapter.
ANSWER_TIMEOUT = 1.0


def checksum(packet: bytes) -> int:
    """The manual's checksum: bytes 1..7 added, negated, plus one (the two's complement of the sum)."""
    return (0xFF - (sum(packet[1:8]) & 0xFF) + 1) & 0xFF


def command(code: int, *data: int) -> bytes:
    """A 9-byte command: FF, 01 (sensor number), the command, 5 data bytes, the checksum."""
    packet = bytes([0xFF, 0x01, code, *data]).ljust(8, b"\x00")
    return packet + bytes([checksum(packet)])


def range_command(ppm: int) -> bytes:
    """Detection range setting: the range in bytes 6 and 7, as the sensors accept it (the manual
    shows bytes 3 and 4, which the sensors ignore)."""
    return command(RANGE, 0, 0, 0, ppm >> 8, ppm & 0xFF)


class WinsenAnswers(FrameFormat):
    """Answers to the read command: FF 86, concentration high and low byte, 4 more bytes, checksum."""

    header = bytes([0xFF, READ_CO2])
    length_known_after = 2

    def length(self, start: bytes) -> int | None:
        return 9

    def problem(self, frame: bytes) -> str | None:
        expected = checksum(frame)
        return None if frame[8] == expected else f"checksum {frame[8]:#04x}, expected {expected:#04x}"


@register
class MHZ19(SerialDriver):
    """A Winsen MH-Z19B or MH-Z19C infrared CO2 sensor on a serial port: CO2 in ppm.

    Wire Vin to 5 V (pin 2 or 4), GND to ground, the sensor's TX to RXD
    GPIO15 (pin 10) and its RX to TXD GPIO14 (pin 8); its data lines are
    3.3 V.  On a Pi 5 set ``port = "/dev/ttyAMA0"``.

    The sensor is polled: each read sends the read command and waits for
    the 9-byte answer, whose checksum is verified.  It needs 3 minutes to
    preheat after power-on; values before that are not right.  ``abc``
    switches automatic baseline correction on or off: with it on, the
    sensor takes the lowest value of every 24 hours as 400 ppm, which is
    right where fresh air comes in daily (homes, offices) and wrong in a
    greenhouse or a closed room.  ``range`` is the detection range, 2000,
    5000 or 10000 ppm.  Both are sent only when set (the sensor keeps them);
    a reading at the top of the range is refused.
    """

    name = "mhz19"
    summary = "Winsen MH-Z19B/MH-Z19C CO2 concentration in ppm (serial)"
    device_name = "MH-Z19"
    options = {
        **port_options(9600),
        "abc": Option((bool, type(None)), None, "automatic baseline correction: true, false, or unset (leave as is)"),
        "range": Option((int, type(None)), None, "detection range in ppm: 2000, 5000 or 10000, or unset (leave as is)"),
    }
    provides = (Quantity("co2", "ppm", "CO2 concentration"),)

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["range"] is not None and self.config["range"] not in RANGES:
            raise OptionError("range", f"sensor {sensor!r}: range must be 2000, 5000 or 10000 (ppm)")

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def min_interval(self) -> float:
        return 2.0

    def setup(self) -> None:
        if self.config["abc"] is not None:
            self.write(command(ABC, ABC_ON if self.config["abc"] else ABC_OFF))
        if self.config["range"] is not None:
            self.write(range_command(self.config["range"]))
        try:
            self.ask_co2()
        except ReadFailed as exc:
            raise DeviceNotFound(str(exc)) from None

    def ask_co2(self) -> bytes:
        port = self._serial
        port.reset_input_buffer()  # an answer left from a timed-out read must not pass for this one
        self.write(command(READ_CO2))
        parser = FrameParser(WinsenAnswers())
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            frames = parser.feed(port.read(max(1, port.in_waiting)))
            if frames:
                return frames[-1]
        counts = parser.counts
        if counts.bad_frames:
            problem = f"{counts.bad_frames} answers with a bad checksum (last: {counts.last_problem})"
        elif counts.garbage_bytes:
            problem = f"{counts.garbage_bytes} bytes that are no answer: check baud = {self.config['baud']}"
        else:
            problem = f"nothing: {self.silence_advice()}"
        raise ReadFailed(f"{self.where()}: no valid answer to the read command within {ANSWER_TIMEOUT:g} s, got {problem}")

    def measure(self) -> dict[str, int]:
        answer = self.ask_co2()
        ppm = answer[2] << 8 | answer[3]
        top = self.config["range"]
        if top is not None and ppm >= top:
            raise ValueRejected(
                f"{self.where()}: {ppm} ppm is at the top of the detection range ({top} ppm): "
                "the real value may be higher; set a larger range"
            )
        if ppm > RANGES[-1]:
            raise ValueRejected(f"{self.where()}: {ppm} ppm is beyond any MH-Z19 range (10000 ppm at most)")
        return {"co2": ppm}
