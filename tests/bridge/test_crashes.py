"""No thread dies silently: a bug that escapes a reader or the delivery thread is logged with its
traceback once, the thread carries on, and after repeated crashes it gives up so the daemon exits
(status 1) instead of running on without it."""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import textwrap
import time

from pibridge.bridge.delivery import Delivery
from pibridge.bridge.scheduler import SensorReader
from pibridge.drivers.system.mock import MockDriver
from pibridge.outbox import Outbox
from pibridge.readings import Reading
from tests.support.waiting import wait_until


class FlakySink:
    """Raises on the readings numbered in *bad* (1-based), keeps the others."""

    def __init__(self, bad):
        self.bad = set(bad)
        self.calls = 0
        self.kept = queue.SimpleQueue()

    def __call__(self, reading):
        self.calls += 1
        if self.calls in self.bad:
            raise KeyError(f"bug #{self.calls}")
        self.kept.put(reading)


def tracebacks(caplog, logger):
    return [r for r in caplog.records if r.name == logger and r.exc_info]


def test_a_reader_survives_a_bug_logs_its_traceback_once_and_keeps_its_schedule(caplog):
    caplog.set_level(logging.INFO, logger="pibridge.scheduler")
    sink = FlakySink(bad={2, 4})
    reader = SensorReader("attic", MockDriver("attic", {"seed": 1}), interval=0.02, sink=sink)
    reader.start()
    try:
        wait_until(lambda: sink.kept.qsize() >= 8, 10, "readings after the crashes")
        assert not reader.ended_unasked() and not reader.crashed
    finally:
        reader.stop()
        assert reader.join(5)
    assert len(tracebacks(caplog, "pibridge.scheduler")) == 1
    again = [r.getMessage() for r in caplog.records if "failed again" in r.getMessage()]
    assert len(again) == 1 and "2 times so far" in again[0] and "attic" in again[0]


def test_a_reader_that_crashes_on_every_read_gives_up_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="pibridge.scheduler")
    sink = FlakySink(bad=range(1, 100))
    reader = SensorReader("pond", MockDriver("pond", {"seed": 1}), interval=0.02, sink=sink)
    reader.start()
    wait_until(reader.ended_unasked, 10, "the reader to give up")
    assert reader.crashed and sink.calls == 5
    assert len(tracebacks(caplog, "pibridge.scheduler")) == 1
    assert any(r.levelno == logging.CRITICAL and "giving up" in r.getMessage() for r in caplog.records)


def test_a_delivery_thread_that_gives_up_still_puts_its_readings_in_the_outbox(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="pibridge.delivery")
    outbox = Outbox(tmp_path / "outbox.db", auto_commit=False)
    delivery = Delivery(outbox)
    turns = []

    def broken_housekeeping():
        turns.append(1)
        raise ZeroDivisionError("bug in housekeeping")

    monkeypatch.setattr(delivery, "_housekeeping", broken_housekeeping)
    monkeypatch.setattr("pibridge.bridge.delivery.time.sleep", lambda s: None)
    monkeypatch.setattr(delivery, "_wait_time", lambda: 0.01)
    delivery.start()
    now_ms = int(time.time() * 1000)
    readings = [Reading("attic", now_ms + i, {"temperature": float(i)}) for i in range(7)]
    for r in readings:
        delivery.submit(r)
    wait_until(lambda: not delivery.is_alive(), 10, "the delivery thread to give up")
    assert delivery.crashed and len(turns) == 5
    assert len(tracebacks(caplog, "pibridge.delivery")) == 1
    assert delivery.stop()
    assert [e.reading for e in outbox.peek(100)] == readings
    outbox.close()


def test_the_daemon_exits_1_when_a_thread_died(tmp_path):
    """A real ``pibridge run`` whose reader hits a bug on every read: it exits 1 (for systemd's
    Restart=on-failure), with one traceback, instead of living on with a dead reader."""
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""
        [agent]
        host = "127.0.0.1"
        provision_port = 9
        api_port = 10
        ca_file = "{tmp_path / 'ca.crt'}"
        [storage]
        dir = "{tmp_path / 'storage'}"
        [[sensors]]
        name = "cellar"
        driver = "mock"
        interval = 0.05
    """))
    bug = textwrap.dedent("""
        import sys
        from pibridge.bridge import scheduler
        def broken(self, values):
            raise IndexError("a bug in the check of the values")
        scheduler.SensorReader._check = broken
        from pibridge.bridge.daemon import main
        sys.exit(main(["--config", sys.argv[1]]))
    """)
    done = subprocess.run([sys.executable, "-c", bug, str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("Traceback") == 1, done.stderr
    assert "the reader of sensor 'cellar' ended" in done.stderr
    assert "exit status 1" in done.stderr
