"""Finding a device's frames in a serial byte stream, and reading a streaming
device in a background thread.

A serial line has no message boundaries: a reader that starts mid-frame,
a loose wire or a power glitch leaves garbage and broken frames in the
stream.  :class:`FrameParser` finds frames by their header, takes their
length from the format, checks every frame's checksum and, after a bad
one, resynchronises on the next header.  :class:`FrameReader` runs a parser
over a port in a thread of its own and keeps the newest valid frame of
each kind, so a driver's ``read`` answers at once with the latest one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import DeviceNotFound, ReadFailed
from ._port import SerialDriver

log = logging.getLogger(__name__)


class FrameFormat:
    """How one device frames its messages.  A subclass sets :attr:`header` and implements the rest."""

    #: The bytes every frame starts with.
    header: bytes = b""
    #: Bytes needed from the frame's start before :meth:`length` can tell the frame's length.
    length_known_after: int = 0

    def length(self, start: bytes) -> int | None:
        """The whole frame's length, given its first :attr:`length_known_after` bytes; None if
        those bytes cannot start a frame (the header matched by chance)."""
        raise NotImplementedError

    def problem(self, frame: bytes) -> str | None:
        """Why *frame* is not valid (checksum, tail byte), or None if it is."""
        raise NotImplementedError

    def kind(self, frame: bytes) -> Any:
        """What sort of message *frame* is (a measurement, a command's answer)."""
        return None


@dataclass
class StreamCounts:
    """What the parser has seen so far; shown in errors so a bad line is visible."""

    frames: int = 0
    bad_frames: int = 0
    garbage_bytes: int = 0
    last_problem: str = ""


class FrameParser:
    """Incremental frame finder: feed it bytes as they come, get the valid frames back."""

    def __init__(self, format: FrameFormat):
        self.format = format
        self.counts = StreamCounts()
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        header = self.format.header
        frames: list[bytes] = []
        while True:
            start = buffer.find(header)
            if start < 0:
                # Keep a tail that may be the beginning of a header cut by the read.
                keep = next((n for n in range(len(header) - 1, 0, -1) if buffer.endswith(header[:n])), 0)
                self.counts.garbage_bytes += len(buffer) - keep
                del buffer[: len(buffer) - keep]
                return frames
            if start:
                self.counts.garbage_bytes += start
                del buffer[:start]
            if len(buffer) < self.format.length_known_after:
                return frames
            length = self.format.length(bytes(buffer[: self.format.length_known_after]))
            if length is None:
                self._reject("a header with an impossible length")
                continue
            if len(buffer) < length:
                return frames
            frame = bytes(buffer[:length])
            problem = self.format.problem(frame)
            if problem is not None:
                self._reject(problem)
                continue
            del buffer[:length]
            self.counts.frames += 1
            frames.append(frame)

    def _reject(self, problem: str) -> None:
        # Drop only the first header byte: the real next frame may start inside this one.
        self.counts.bad_frames += 1
        self.counts.last_problem = problem
        self.counts.garbage_bytes += 1
        del self._buffer[:1]


class FrameReader:
    """Reads one serial port in a background thread and keeps the newest valid frame of each kind.

    Threading: :meth:`start` starts the thread ``serial-<port>``, which is
    the only one reading the port; drivers write commands from their own
    thread (pyserial allows one reader and one writer at a time).
    :meth:`latest` and :meth:`wait_for` may be called from any thread.  If
    reading fails (a USB adapter pulled out) the thread records the error
    and ends; :meth:`latest` then raises it, so nothing fails silently.
    :meth:`stop` ends the thread within one read timeout.
    """

    def __init__(self, port: Any, format: FrameFormat, name: str):
        self.port = port
        self.parser = FrameParser(format)
        self.name = name
        self.error: BaseException | None = None
        self.started_at = 0.0
        self._latest: dict[Any, tuple[bytes, float]] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def counts(self) -> StreamCounts:
        return self.parser.counts

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        cancel = getattr(self.port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except OSError:
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        with self._changed:
            self._changed.notify_all()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                data = self.port.read(max(1, self.port.in_waiting))
                if not data:
                    continue
                frames = self.parser.feed(data)
                if frames:
                    now = time.monotonic()
                    with self._changed:
                        for frame in frames:
                            self._latest[self.parser.format.kind(frame)] = (frame, now)
                        self._changed.notify_all()
        except Exception as exc:  # a dying reader must be heard: read() raises this
            if not self._stopping.is_set():
                log.warning("serial reader for %s stopped: %s", self.name, exc)
                with self._changed:
                    self.error = exc
                    self._changed.notify_all()

    def latest(self, kind: Any = None) -> tuple[bytes, float] | None:
        """The newest valid frame of *kind* and when it arrived (time.monotonic()), or None."""
        with self._changed:
            if self.error is not None:
                raise self.error
            return self._latest.get(kind)

    def wait_for(self, kind: Any, newer_than: float, timeout: float) -> tuple[bytes, float] | None:
        """Wait until a frame of *kind* arrives after *newer_than*; None after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self.error is not None:
                    raise self.error
                entry = self._latest.get(kind)
                if entry is not None and entry[1] > newer_than:
                    return entry
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return None
                self._changed.wait(remaining)


class StreamingDriver(SerialDriver):
    """Base of drivers for devices that send frames on their own (Plantower, Nova).

    ``open`` starts a :class:`FrameReader` on the port, then calls
    :meth:`configure` to send the device its commands; ``close`` stops the
    reader.  :meth:`latest_frame` gives the newest valid measurement frame;
    if none arrived within ``timeout`` seconds, it raises
    :class:`ReadFailed` saying what the line carried instead.  Just after
    ``open`` it waits for the first frame, for at most ``timeout`` seconds:
    a read never hangs.
    """

    frame_format: ClassVar[FrameFormat]
    #: The :meth:`FrameFormat.kind` of measurement frames.
    data_kind: ClassVar[Any] = None

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        self._reader: FrameReader | None = None

    def timeout(self) -> float:
        return self.config["timeout"]

    def setup(self) -> None:
        self._reader = FrameReader(self._serial, self.frame_format, self.port)
        self._reader.start()
        self.configure()

    def teardown(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.stop()

    def configure(self) -> None:
        """Send the device what it needs after the port is open (mode, wake-up); the reader runs."""

    @property
    def reader(self) -> FrameReader:
        if self._reader is None:
            raise ReadFailed(f"{self.where()}: the port is not open")
        return self._reader

    def latest_frame(self) -> bytes:
        reader = self.reader
        timeout = self.timeout()
        now = time.monotonic()
        try:
            entry = reader.latest(self.data_kind)
            if (entry is None or now - entry[1] > timeout) and reader.started_at + timeout > now:
                entry = reader.wait_for(self.data_kind, now - timeout, reader.started_at + timeout - now)
        except OSError as exc:
            raise DeviceNotFound(self.port_failed(exc)) from None
        if entry is None or time.monotonic() - entry[1] > timeout:
            raise ReadFailed(self.silence_message(entry, timeout))
        return entry[0]

    def wait_for_answer(self, kind: Any, sent_at: float, timeout: float) -> bytes | None:
        try:
            entry = self.reader.wait_for(kind, sent_at, timeout)
        except OSError as exc:
            raise DeviceNotFound(self.port_failed(exc)) from None
        return None if entry is None else entry[0]

    def silence_message(self, entry: tuple[bytes, float] | None, timeout: float) -> str:
        counts = self.reader.counts
        if entry is None:
            what = f"no valid {self.device_name} frame within {timeout:g} s"
        else:
            what = f"no valid {self.device_name} frame for {time.monotonic() - entry[1]:.1f} s (timeout {timeout:g} s)"
        if counts.bad_frames or counts.garbage_bytes:
            seen = (f"the port carried {counts.garbage_bytes} stray bytes and {counts.bad_frames} broken frames"
                    + (f" (last: {counts.last_problem})" if counts.last_problem else "")
                    + f": check baud = {self.config['baud']}, the ground wire and the cable's length")
        else:
            seen = f"nothing arrived: {self.silence_advice()}"
        return f"{self.where()}: {what}; {seen}"
