"""A sensor whose read hangs (a wedged bus) delays only itself.

One mock sensor hangs on every second read for far longer than its
interval; the others must keep their schedule: their readings stay one
interval apart, none skipped, for the whole time the hung one is stuck.
"""

from __future__ import annotations

from tests.faults.bridge import Bridge, mock, wait_until
from tests.faults.checks import on_schedule, readings

INTERVAL = 0.5


def test_a_hanging_sensor_does_not_delay_the_others(tmp_path, sim):
    sensors = [
        mock("stuck", INTERVAL, hang_every=2, hang_seconds=600.0, seed=1),
        mock("kitchen", INTERVAL, seed=2),
        mock("cellar", INTERVAL, ("temperature", "humidity", "pressure"), seed=3),
    ]
    bridge = Bridge(tmp_path, sim, sensors, name="hang").start()
    try:
        def enough():
            got = readings(bridge.values())
            return all(len(got.get(s, {})) >= 16 for s in ("kitchen", "cellar")) and got

        got = wait_until(enough, timeout=40, what="8 s of readings from the healthy sensors")
        bridge.assert_running()
    finally:
        bridge.stop()
    # The hung sensor gave its first reading, then hung on the second read and never came back.
    assert len(got.get("stuck", {})) == 1, sorted(got.get("stuck", {}))
    for sensor in ("kitchen", "cellar"):
        stamps = sorted(got[sensor])
        late = on_schedule(stamps, INTERVAL, tolerance=0.25)
        # The first reading is taken at once at start, off the grid; after it every step is one interval.
        assert not late[1:] if late and late[0][0] == stamps[0] else not late, (sensor, late)
        assert all(ts % 500 < 250 for ts in stamps[1:]), f"{sensor}: readings drifted off the 0.5 s grid: {stamps}"
