"""Text from outside (a sensor, a device, the config, the agent) made safe for one log line or a terminal.

A newline in a device's answer or in a config string must not start a forged
line in the journal, and an escape sequence must not repaint the terminal that
runs ``pibridge status``.  :func:`one_line` writes every control character
(and the Unicode line and paragraph separators and direction overrides) as a
Python-style escape, ``\\n``, ``\\x1b``, ``\\u202e``; everything else,
accents and symbols included, is kept as it is.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: object) -> str:
    """*text* as a string with every control character escaped."""
    return _UNSAFE.sub(_escape, str(text))


def safe_value(value: object) -> object:
    """A reading's value for the status file: strings escaped, numbers and booleans as they are."""
    return one_line(value) if isinstance(value, str) else value
