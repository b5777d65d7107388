"""Config values that used to pass ``check`` and ``run`` and then killed a thread or burned a core.

Each is refused up front, by ``pibridge check`` and by ``pibridge run`` alike (exit status 2),
with the usual message: the file, the sensor, the key, the bound it broke and a good value.  No
daemon thread ever sees such a value.
"""

from __future__ import annotations

import pytest

from tests.faults.bridge import pibridge

SENSOR = '[[sensors]]\nname = "attic"\ndriver = "mock"\ninterval = {interval}\n'
CASES = [
    # (what the issue saw, the config text, the key named, the words of the bound)
    ("OverflowError in the reader", "", SENSOR.format(interval="1e300"), "interval", "at most 1 d"),
    ("a whole core on a mock", "", SENSOR.format(interval="0.000001"), "interval", "at least 10 ms"),
    ("the commit thread", "[storage]\ncommit_interval = 1e300\n", SENSOR.format(interval=5), "storage.commit_interval",
     "at most 1 h"),
    ("the agent client", "[agent]\ntimeout = 1e300\n", SENSOR.format(interval=5), "agent.timeout", "at most 1 h"),
    ("struct.error in the MQTT keep-alive", '[agent]\ntimeout = "1d"\n', SENSOR.format(interval=5), "agent.timeout",
     "at most 1 h"),
    ("a duplicated key", '[agent]\nhost = "a"\nhost = "b"\n', SENSOR.format(interval=5), "agent.host",
     "given twice"),
]


# Every case through `pibridge check`; `pibridge run` reads the config the same way, so two of
# them through `run` show it refuses before anything starts.
RUNS = [("check", case) for case in CASES] + [("run", CASES[0]), ("run", CASES[4])]


@pytest.mark.parametrize("command, case", RUNS, ids=[f"{c}-{case[0]}" for c, case in RUNS])
def test_a_value_out_of_bounds_is_refused_before_anything_runs(tmp_path, case, command):
    _, sections, sensors, key, words = case
    path = tmp_path / "config.toml"
    path.write_text(sections + f'[storage]\ndir = "{tmp_path / "storage"}"\n' * ("[storage]" not in sections)
                    + sensors)
    done = pibridge(command, "--config", str(path), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert str(path) in out and f"key '{key}'" in out and words in out and "Fix:" in out, out
    assert "Traceback" not in out
    assert not (tmp_path / "storage").exists(), "nothing may start with a bad config"
