"""Nova Fitness SDS011: PM2.5 and PM10 in µg/m³ over a serial port."""

from __future__ import annotations

import time

from pibridge.readings import Quantity

from .. import DeviceNotFound, Option, OptionError, ReadFailed, ValueRejected, register
from ._port import port_options
from ._stream import FrameFormat, StreamingDriver

HEAD, TAIL = 0xAA, 0xAB
COMMAND, DATA, REPLY = 0xB4, 0xC0, 0xC5
#: Command ids (Laser Dust Sensor Control Protocol V1.3, section 3)
REPORTING_MODE, QUERY_DATA, SLEEP_WORK, WORKING_PERIOD = 0x02, 0x04, 0x06, 0x08
QUERY, SET = 0, 1
ACTIVE_REPORTING, QUERY_REPORTING, WORK = 0, 1, 1
REPORTING = {"active": ACTIVE_REPORTING, "query": QUERY_REPORTING}
ALL_DEVICES = 0xFFFF
#: The specification's measuring range
MAXIMUM = 999.9
#: How long the sensor takes to answer a command, with room for one streamed frame in between.
ANSWER_TIMEOUT = 1.5


def command(command_id: int, *data: int, device: int = ALL_DEVICES) -> bytes:
    """A 19-byte command: AA B4, data bytes 1..13 (the first is the command id), the device id,
    the checksum (the low 8 bits of the sum of data bytes and device id) and AB."""
    payload = bytes([command_id, *data]).ljust(13, b"\x00") + device.to_bytes(2, "big")
    return bytes([HEAD, COMMAND]) + payload + bytes([sum(payload) & 0xFF, TAIL])


class NovaFrames(FrameFormat):
    """The sensor's 10-byte frames: AA, C0 (data) or C5 (reply), 6 data bytes, checksum, AB."""

    header = bytes([HEAD])
    length_known_after = 2

    def length(self, start: bytes) -> int | None:
        return 10 if start[1] in (DATA, REPLY) else None

    def problem(self, frame: bytes) -> str | None:
        if frame[9] != TAIL:
            return f"tail byte {frame[9]:#04x} instead of 0xab"
        expected = sum(frame[2:8]) & 0xFF
        if frame[8] != expected:
            return f"checksum {frame[8]:#04x}, expected {expected:#04x}"
        return None

    def kind(self, frame: bytes):
        return "data" if frame[1] == DATA else ("reply", frame[2])


def decode(frame: bytes) -> dict[str, float]:
    """PM2.5 = (high x 256 + low) / 10 from bytes 2-3, PM10 likewise from bytes 4-5 (low byte first)."""
    return {
        "pm2_5": int.from_bytes(frame[2:4], "little") / 10,
        "pm10": int.from_bytes(frame[4:6], "little") / 10,
    }


@register
class SDS011(StreamingDriver):
    """A Nova Fitness SDS011 particulate-matter sensor: PM2.5 and PM10 in µg/m³.

    Most come with a USB serial adapter: plug it in and set
    ``port = "/dev/ttyUSB0"``.  To wire it to the Pi's UART instead, connect
    the sensor's 5V to 5 V (pin 2 or 4) — its fan needs 5 V — GND to ground,
    TXD to RXD GPIO15 (pin 10) and RXD to TXD GPIO14 (pin 8); its data lines
    are 3.3 V.  On a Pi 5 the UART is ``/dev/ttyAMA0``.

    The laser lasts about 8000 hours (under a year of non-stop running).
    ``work_period`` (minutes, 1..30) lets the sensor sleep between
    measurements: it wakes 30 s before each one and sends one frame per
    period; 0 (the default) measures every second.  ``mode = "active"``
    lets the sensor report on its own and reads take the newest frame;
    ``mode = "query"`` asks for each one.  The driver sets the reporting
    mode and the work period at start, writing only what differs (the
    sensor stores both in flash).  Every frame's checksum is verified;
    garbage on the line is skipped.
    """

    name = "sds011"
    summary = "Nova Fitness SDS011 PM2.5 and PM10 (µg/m³) (serial)"
    device_name = "SDS011"
    frame_format = NovaFrames()
    data_kind = "data"
    options = {
        **port_options(9600),
        "mode": Option(str, "active", "active (the sensor reports on its own) or query (each value asked for)"),
        "work_period": Option(int, 0, "minutes between measurements, 1..30, the sensor sleeping meanwhile; 0: every second"),
        "timeout": Option((float, type(None)), None,
                          "seconds without a valid frame before a read fails (default: 10, or the work period + 30 s)"),
    }
    provides = (
        Quantity("pm2_5", "µg/m³", "PM2.5 concentration"),
        Quantity("pm10", "µg/m³", "PM10 concentration"),
    )

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if self.config["mode"] not in REPORTING:
            raise OptionError("mode", f"sensor {sensor!r}: mode must be active or query, not {self.config['mode']!r}")
        if not 0 <= self.config["work_period"] <= 30:
            raise OptionError("work_period", f"sensor {sensor!r}: work_period must be 0..30 minutes")
        timeout = self.config["timeout"]
        if timeout is not None and timeout <= 0:
            raise OptionError("timeout", f"sensor {sensor!r}: timeout must be positive")
        self.device_id: int | None = None

    def quantities(self) -> list[Quantity]:
        return list(self.provides)

    def timeout(self) -> float:
        if self.config["timeout"] is not None:
            return self.config["timeout"]
        period = self.config["work_period"]
        return 10.0 if period == 0 else period * 60 + 30.0

    def min_interval(self) -> float:
        return max(1.0, self.config["work_period"] * 60.0)

    def ask(self, command_id: int, *data: int) -> bytes:
        """Send a command and wait for its reply; DeviceNotFound if none comes."""
        sent_at = time.monotonic()
        self.write(command(command_id, *data))
        reply = self.wait_for_answer(("reply", command_id), sent_at, ANSWER_TIMEOUT)
        if reply is None:
            raise DeviceNotFound(
                f"{self.where()}: no answer to command {command_id:#04x} within {ANSWER_TIMEOUT:g} s; "
                f"{self.silence_advice()}"
            )
        self.device_id = int.from_bytes(reply[6:8], "big")
        return reply

    def configure(self) -> None:
        self.ask(SLEEP_WORK, SET, WORK)
        reporting = REPORTING[self.config["mode"]]
        if self.ask(REPORTING_MODE, QUERY)[4] != reporting:
            self.ask(REPORTING_MODE, SET, reporting)
        period = self.config["work_period"]
        if self.ask(WORKING_PERIOD, QUERY)[4] != period:
            self.ask(WORKING_PERIOD, SET, period)

    def measure(self) -> dict[str, float]:
        if self.config["mode"] == "query":
            sent_at = time.monotonic()
            self.write(command(QUERY_DATA))
            frame = self.wait_for_answer("data", sent_at, self.timeout())
            if frame is None:
                raise ReadFailed(self.silence_message(self.reader.latest("data"), self.timeout()))
        else:
            frame = self.latest_frame()
        values = decode(frame)
        for name, value in values.items():
            if value > MAXIMUM:
                raise ValueRejected(f"{self.where()}: {name} = {value} µg/m³ is beyond the sensor's range (0 to {MAXIMUM})")
        return values
