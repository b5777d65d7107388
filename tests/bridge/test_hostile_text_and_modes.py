"""Text from outside is escaped before a log line or the status output; files are private whatever the umask."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from pibridge.bridge.logs import setup_logging
from pibridge.bridge.registry import write_atomically
from pibridge.bridge.status import render
from pibridge.outbox import Outbox
from pibridge.readings import Reading
from pibridge.safetext import one_line


@pytest.mark.parametrize(
    "text, shown",
    [
        ("plain °C, µs", "plain °C, µs"),
        ("two\nlines", "two\\nlines"),
        ("cr\rtab\t", "cr\\rtab\\t"),
        ("\x1b[2Jwiped", "\\x1b[2Jwiped"),
        ("nul\x00del\x7f c1\x9b", "nul\\x00del\\x7f c1\\x9b"),
        ("sep\u2028rtl\u202eend", "sep\\u2028rtl\\u202eend"),
    ],
)
def test_one_line_escapes_control_characters_only(text, shown):
    assert one_line(text) == shown


@pytest.mark.parametrize("journal", [False, True])
def test_a_log_message_from_outside_stays_one_line_and_tracebacks_keep_theirs(capsys, monkeypatch, journal):
    if journal:
        monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    else:
        monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    setup_logging("info")
    try:
        log = logging.getLogger("pibridge.test")
        log.warning("sensor %r: %s", "uart", "no answer\nERROR pibridge: FORGED")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("with a traceback")
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if h.get_name() == "pibridge"]:
            root.removeHandler(handler)
    err = capsys.readouterr().err
    assert not any("FORGED" in line and "no answer" not in line for line in err.splitlines())
    assert "no answer\\nERROR pibridge: FORGED" in err
    assert "Traceback (most recent call last):" in err and err.count("\n") > 4


def test_status_output_escapes_what_the_state_file_holds():
    info = {
        "storage_dir": "/var/lib/pibridge",
        "running": True,
        "outbox": None,
        "state": {
            "pid": 1,
            "agent": {"host": "localhost", "port": 18884, "connected": False, "problem": "bad\nFORGED"},
            "sensors": {"uart": {"online": False, "last_values": {"line": "\x1b[31mred"}, "error_streak": 2,
                                 "last_error": "garbled\r\nFORGED"}},
        },
    }
    text = render(info)
    assert "\x1b" not in text and "\r" not in text
    assert not any(line.startswith("FORGED") for line in text.splitlines())
    assert "\\x1b[31mred" in text and "garbled\\r\\nFORGED" in text and "bad\\nFORGED" in text


def test_files_and_directories_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        storage = tmp_path / "new" / "storage"
        with Outbox(storage / "outbox.db", auto_commit=False) as ob:
            ob.append([Reading("attic", 1, {"t": 1.0})])
            ob.commit()
            write_atomically(storage / "registry.json", "{}", durable=True)
            write_atomically(storage / "state.json", "{}", durable=False)
            created = sorted(storage.iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in created}
    finally:
        os.umask(old)
    assert {"outbox.db", "outbox.db-wal", "outbox.db-shm", "outbox.db.lock", "outbox.tally", "registry.json",
            "state.json"} <= set(modes)
    assert {name: oct(m) for name, m in modes.items() if m != 0o600} == {}
    assert stat.S_IMODE(storage.stat().st_mode) == 0o700
