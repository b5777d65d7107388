"""A pulse counter's total survives restarts: saved in the storage directory, restored at start.

The daemon tests run the real ``pibridge run`` against the simulator, with
gpiozero's MockFactory under the pulse counter (tests/bridge/pulse_daemon.py
drives the pin), and stop it with SIGTERM or kill it with SIGKILL.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from daemon_support import Daemon, env, wait_for
from pibridge.bridge.counters import CounterStore
from pibridge.bridge.scheduler import SensorReader
from pibridge.drivers import create

HERE = Path(__file__).resolve().parent
RAIN = {"name": "rain", "driver": "pulse_counter", "interval": 0.2, "pin": 17, "factor": 0.2794, "unit": "mm",
        "rate_per": "h"}


@pytest.fixture
def pins():
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def pulse(pin, n):
    for _ in range(n):
        pin.drive_low()
        pin.drive_high()


# --- the store -------------------------------------------------------------------------------


def test_the_file_is_private_and_replaced_whole(tmp_path):
    store = CounterStore(tmp_path / "counters.json")
    store.save("rain", {"count": 12})
    path = tmp_path / "counters.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"rain": {"count": 12}}
    assert [p.name for p in tmp_path.iterdir()] == ["counters.json"]  # no temporary file left behind
    assert CounterStore(path).restored("rain") == {"count": 12}


def test_an_unchanged_state_is_not_written_again(tmp_path):
    store = CounterStore(tmp_path / "counters.json")
    for _ in range(5):
        store.save("rain", {"count": 3})
    store.save("wind", None)  # a driver without state
    assert store.writes == 1
    store.save("rain", {"count": 4})
    assert store.writes == 2


def test_a_damaged_file_starts_the_counters_from_zero_and_says_so(tmp_path, caplog):
    path = tmp_path / "counters.json"
    path.write_text('{"rain": {"cou')  # cut off, as a full disk might leave a file written without this store
    store = CounterStore(path)
    assert store.restored("rain") is None
    assert "counters start from 0" in caplog.text
    store.save("rain", {"count": 1})
    assert json.loads(path.read_text()) == {"rain": {"count": 1}}


def test_a_failed_write_is_logged_and_tried_again_at_the_next_push(tmp_path, caplog):
    path = tmp_path / "counters.json"
    path.mkdir()  # something in the way that no rename can replace, even for root
    store = CounterStore(path)
    store.save("rain", {"count": 1})
    assert "cannot save the state of sensor 'rain'" in caplog.text and store.writes == 0
    assert [p.name for p in tmp_path.iterdir()] == ["counters.json"]  # the temporary file is cleaned up
    path.rmdir()
    store.save("rain", {"count": 1})  # the same state: written now, as it never was
    assert store.writes == 1 and json.loads(path.read_text()) == {"rain": {"count": 1}}


# --- the driver's side -----------------------------------------------------------------------


def test_a_restored_count_continues_and_the_rate_ignores_it(pins):
    driver = create("pulse_counter", "rain", {"pin": 23, "factor": 0.2794, "unit": "mm", "rate_per": "h"})
    driver.restore({"count": 1000})
    before_open = time.monotonic()
    driver.open()
    after_open = time.monotonic()
    try:
        pulse(pins.pin(23), 10)
        before_read = time.monotonic()
        values = driver.read()
        after_read = time.monotonic()
        assert values["count"] == 1010 and values["total"] == pytest.approx(1010 * 0.2794)
        # Only the 10 new pulses count for the rate (10 x 0.2794 mm over the time since open).
        assert 2.794 * 3600 / (after_read - before_open) <= values["rate"] <= 2.794 * 3600 / (before_read - after_open)
        assert driver.state() == {"count": 1010}
    finally:
        driver.close()


@pytest.mark.parametrize("state", [{"count": -1}, {"count": "12"}, {"count": True}, {}])
def test_a_nonsense_saved_state_is_refused(state):
    driver = create("pulse_counter", "rain", {"pin": 23})
    with pytest.raises(ValueError, match="saved count"):
        driver.restore(state)


def test_the_reader_saves_once_per_push_never_per_pulse(pins, tmp_path):
    """1000 pulses between two reads cost one write; reads with nothing new cost none."""
    driver = create("pulse_counter", "rain", {"pin": 22})
    store = CounterStore(tmp_path / "counters.json")
    pushed = []
    reader = SensorReader("rain", driver, interval=3600, sink=pushed.append, keep_state=store.save)
    reader.start()
    wait_for(lambda: pushed, 10, "the first reading")
    assert store.writes == 1  # {"count": 0}, saved before the first reading went out
    pulse(pins.pin(22), 1000)
    assert store.writes == 1
    reader.notify()  # as a watching driver would: read now
    wait_for(lambda: len(pushed) >= 2, 10, "the second reading")
    assert pushed[-1].values["count"] == 1000
    assert json.loads((tmp_path / "counters.json").read_text()) == {"rain": {"count": 1000}}
    writes = store.writes
    reader.notify()
    wait_for(lambda: len(pushed) >= 3, 10, "the third reading")
    reader.stop()
    assert reader.join(5)
    assert store.writes == writes == 2  # no new pulse: neither the push nor the stop wrote anything


# --- the daemon ------------------------------------------------------------------------------


class PulseDaemon(Daemon):
    """The real daemon, with a pulse source on the rain gauge's pin (see pulse_daemon.py)."""

    def start_pulsing(self, pulses: int) -> "PulseDaemon":
        self.done = self.workdir / f"pulsed-{pulses}"
        self.done.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "pulse_daemon.py"), str(RAIN["pin"]), str(pulses), str(self.done), "--",
                 "run", "--config", str(self.config), "--log-level", "debug"],
                stdout=out, stderr=subprocess.STDOUT, env=env(),
            )
        wait_for(lambda: self.alive() and self.done.exists(), 30, f"{pulses} pulses on the pin")
        return self

    def count_metric(self, client_id: str) -> dict | None:
        for sensor in self.sim.store.sensors(client_id):
            for metric in self.sim.store.metrics(client_id, sensor["sensor_id"]):
                if metric["name"] == "count":
                    return metric
        return None

    def counted(self, client_id: str) -> int | None:
        metric = self.count_metric(client_id)
        return None if metric is None else metric["last_value"]

    def saved(self) -> int | None:
        try:
            return json.loads((self.storage / "counters.json").read_text())["rain"]["count"]
        except (OSError, ValueError, KeyError):
            return None


@pytest.fixture
def rain_daemon(sim, tmp_path):
    daemon = PulseDaemon(tmp_path, sim, [RAIN], name="rain")
    yield daemon
    daemon.stop_quietly()


def test_the_total_survives_kill_9_and_a_clean_restart(rain_daemon):
    d = rain_daemon
    d.start_pulsing(40)
    client = d.client_id()
    wait_for(lambda: d.counted(client) == 40, 30, "the agent to get count 40")
    assert d.saved() == 40
    assert stat.S_IMODE((d.storage / "counters.json").stat().st_mode) == 0o600
    d.kill()

    # kill -9: nothing could be written at the end, yet the count saved at the last push is all there is.
    d.start_pulsing(25)
    wait_for(lambda: d.counted(client) == 65, 30, "the agent to get count 65 (40 before the kill + 25)")
    assert "continuing from the saved state {'count': 40}" in d.log_text()

    # SIGTERM (systemctl restart): the state is written at stop as well.
    assert d.terminate() == 0
    assert d.saved() == 65
    d.start_pulsing(5)
    wait_for(lambda: d.counted(client) == 70, 30, "the agent to get count 70")
    metric_id = d.count_metric(client)["metric_id"]
    # By reading time: a kill -9 may make the agent get a reading twice (docs/delivery.md), never out of time.
    taken = sorted({(r["timestamp_ms"], r["value"]) for r in d.sim.store.values(client, metric_id=metric_id)})
    counts = [value for _, value in taken]
    assert counts[-1] == 70 and counts == sorted(counts), f"the count went backwards across a restart: {counts}"


def test_a_nonsense_saved_count_is_logged_and_counting_starts_afresh(rain_daemon):
    d = rain_daemon
    d.storage.mkdir(parents=True, exist_ok=True)
    (d.storage / "counters.json").write_text(json.dumps({"rain": {"count": "lots"}}))
    d.start_pulsing(3)
    client = d.client_id()
    wait_for(lambda: d.counted(client) == 3, 30, "the agent to get count 3")
    assert "sensor 'rain': the saved state in" in d.log_text() and "is not usable" in d.log_text()
    wait_for(lambda: d.saved() == 3, 10, "the fresh count saved")
