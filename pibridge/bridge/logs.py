"""How ``pibridge run`` logs: one line per message, and syslog priorities under systemd.

Every message is one line: control characters in text from outside (a
device, the config, the agent) are escaped, so nothing can start a forged
line.  Under systemd (``$JOURNAL_STREAM`` set) each line starts with its
priority and journald adds the time.
"""

from __future__ import annotations

import logging
import os
import sys

from pibridge.safetext import one_line

_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class OneLineFormatter(logging.Formatter):
    """Each message on one line: control characters in it (from a device, the config, the agent)
    are escaped, so no text from outside can start a forged line.  Tracebacks keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


class JournalFormatter(logging.Formatter):
    """``<6>pibridge.delivery: message``: journald reads the priority and adds the time itself."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        text = f"<{priority}>{record.name}: {one_line(record.getMessage())}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info).replace("\n", f"\n<{priority}>")
        return text


def setup_logging(level: str) -> None:
    """Log to stderr: plain lines with a time stamp in a terminal, syslog priorities under systemd."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.set_name("pibridge")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "pibridge"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
