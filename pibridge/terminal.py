"""A live area at the bottom of a terminal, with log lines kept above it, and single-key commands.

``pibridge demo`` uses both: the table of sensors is redrawn in place while
warnings scroll by above it instead of through it, and ``c`` or ``q`` act at
once, without Enter.

Threading: :class:`LiveArea` may be called from any thread (one lock);
:class:`Keys` reads the keyboard in a thread of its own and calls its
handlers there.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import sys
import threading
from typing import Callable, TextIO


class LiveArea:
    """The last few lines of *out*, replaced on each :meth:`show`; :meth:`log` writes above them.

    On something that is not a terminal (a pipe, a file) every :meth:`show`
    prints the rows as a block, and :meth:`log` just prints the line.
    """

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self.tty = out.isatty()
        self._rows: list[str] = []
        self._drawn = 0
        self._lock = threading.Lock()

    def show(self, rows: list[str]) -> None:
        with self._lock:
            self._rows = list(rows)
            if self.tty:
                self._erase()
                self._draw()
            else:
                self.out.write("\n".join(rows) + "\n\n")
            self.out.flush()

    def log(self, text: str) -> None:
        with self._lock:
            if self.tty:
                self._erase()
                self.out.write(text + "\n")
                self._draw()
            else:
                self.out.write(text + "\n")
            self.out.flush()

    def _erase(self) -> None:
        if self._drawn:
            # Up to the first live line, then clear everything below the cursor.
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        # A row wider than the terminal would wrap onto a second line that the next erase
        # does not know of: clip each row to the width instead.
        width = max(20, shutil.get_terminal_size().columns - 1)
        self.out.write("".join(f"\x1b[2K{row[:width]}\n" for row in self._rows))
        self._drawn = len(self._rows)


class LiveLogHandler(logging.Handler):
    """Sends log records through a :class:`LiveArea`, so they appear above the live lines."""

    def __init__(self, area: LiveArea, level: int = logging.NOTSET):
        super().__init__(level)
        self.area = area

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.area.log(self.format(record))
        except Exception:
            self.handleError(record)


class Keys:
    """Calls ``handlers[key]`` for each key pressed on a terminal's standard input.

    The terminal is put in cbreak mode (keys arrive at once, Ctrl-C still
    interrupts) until :meth:`stop`.  Without a terminal it does nothing.
    """

    def __init__(self, handlers: dict[str, Callable[[], None]], stream: TextIO = sys.stdin):
        self.handlers = handlers
        self._stream = stream
        self._saved = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self) -> "Keys":
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self
        if not os.isatty(fd):
            return self
        import termios
        import tty

        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._read, args=(fd,), name="keys", daemon=True)
        self._thread.start()
        return self

    def _read(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            key = os.read(fd, 1).decode("utf-8", "replace").lower()
            handler = self.handlers.get(key)
            if handler is not None:
                handler()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1)
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
