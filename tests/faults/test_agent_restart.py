"""The agent's broker goes away during steady pushing and comes back: nothing is lost.

The daemon runs as a subprocess with mock sensors on short intervals.  The
simulator's broker is stopped for 10 s (2 min under ``--runslow``) and
started again.  What the simulator stored afterwards must hold every
reading taken before, during and after the outage, per sensor in the order
taken, each with the timestamp it was taken at -- so the readings of the
outage carry outage-time timestamps but arrived after it.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.bridge import Bridge, mock, wait_until
from tests.faults.checks import assert_complete, assert_in_order, assert_no_gaps, readings

INTERVAL = 0.5
SENSORS = {"porch": ("temperature", "humidity"), "shed": ("temperature", "humidity", "pressure")}


def outage(tmp_path, sim, seconds: float) -> None:
    sensors = [mock(name, INTERVAL, metrics, seed=i) for i, (name, metrics) in enumerate(SENSORS.items())]
    bridge = Bridge(tmp_path, sim, sensors, name="restart").start()
    try:
        bridge.wait_values(20, timeout=30)
        down_ms = int(time.time() * 1000)
        sim.drop_api_listener(seconds)
        assert sim.wait_until_ready(seconds + 30), "the simulator's broker did not come back"
        up_ms = int(time.time() * 1000)

        def caught_up():
            got = readings(bridge.values())
            # Live again: every sensor has readings taken well after the broker came back.
            return all(got.get(s) and max(got[s]) > up_ms + 3000 for s in SENSORS)

        wait_until(caught_up, timeout=60, what="the backlog to be replayed and live pushing to resume")
        bridge.assert_running()
    finally:
        assert bridge.stop() == 0, bridge.log_text()[-3000:]

    values = bridge.values()
    assert_in_order(values)
    assert_complete(values, {s: len(m) for s, m in SENSORS.items()})
    got = readings(values)
    received = {(v["sensor"], v["timestamp_ms"]): v["received_at"] for v in values}
    for sensor in SENSORS:
        stamps = sorted(got[sensor])
        assert_no_gaps(stamps, INTERVAL, sensor)
        during = [ts for ts in stamps if down_ms + 1000 < ts < up_ms - 1000]
        # Every slot of the outage is there, with its original timestamp ...
        assert len(during) >= (up_ms - down_ms - 2000) / 1000 / INTERVAL - 2, (sensor, len(during))
        # ... and those readings could only have arrived after the broker was back.
        assert all(received[(sensor, ts)] * 1000 >= up_ms - 1000 for ts in during)


def test_broker_down_10s_loses_nothing(tmp_path, sim):
    outage(tmp_path, sim, 10)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_broker_down_2min_loses_nothing(tmp_path, sim):
    outage(tmp_path, sim, 120)
