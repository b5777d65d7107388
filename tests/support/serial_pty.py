"""A real pseudo-terminal as a serial port, with a device stand-in on the far end.

The driver opens ``device.path`` (the pty's slave, e.g. ``/dev/pts/7``)
through pyserial's real code; the stand-in reads the driver's commands and
writes its frames on the master side from a thread of its own.  Both ends
are raw (no echo, no line editing), as a UART is.

:class:`SerialStandIn` is the base of the device stand-ins in
:mod:`tests.support.chips`: it calls :meth:`SerialStandIn.on_bytes` with
what the driver sent and, while :attr:`streaming` is true,
:meth:`SerialStandIn.frame` every :attr:`period` seconds.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty


def take_command(pending: bytearray, header: bytes, length: int) -> bytes | None:
    """Take the next *length*-byte command that starts with *header* out of *pending*.

    Bytes before a header are dropped as line noise, except the tail that may be
    the start of a header still on its way; None until a whole command is there.
    """
    start = pending.find(header)
    if start < 0:
        del pending[: max(0, len(pending) - (len(header) - 1))]
        return None
    del pending[:start]
    if len(pending) < length:
        return None
    command = bytes(pending[:length])
    del pending[:length]
    return command


class SerialStandIn:
    """A device on the far end of a pseudo-terminal."""

    def __init__(self, period: float = 0.02):
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.period = period
        self.streaming = True
        self.received = bytearray()
        self.sent_frames = 0
        self._pending = bytearray()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"stand-in-{self.path}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def send(self, data: bytes) -> None:
        """Write *data* to the driver now (frames, garbage, half frames)."""
        with self._lock:
            os.write(self.master, data)

    def _run(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            wait = max(0.0, next_frame - time.monotonic()) if self.streaming else 0.05
            ready, _, _ = select.select([self.master], [], [], min(wait, 0.05))
            if ready:
                try:
                    data = os.read(self.master, 1024)
                except OSError:
                    return
                self.received += data
                self._pending += data
                self.on_bytes(self._pending)
            if self.streaming and time.monotonic() >= next_frame:
                frame = self.frame()
                if frame:
                    self.send(frame)
                    self.sent_frames += 1
                next_frame = time.monotonic() + self.period

    def on_bytes(self, pending: bytearray) -> None:
        """Handle (and remove from *pending*) the commands the driver sent."""
        pending.clear()

    def frame(self) -> bytes | None:
        """The next frame to stream, or None to send nothing this period."""
        return None
