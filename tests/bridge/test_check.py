"""``pibridge check``: config errors (exit 2), one read per sensor with a table (exit 0), failures (exit 1).

The sensors are real mock-driver devices, including its injected faults:
failed reads, hangs, absent devices and garbage values.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pibridge import drivers
from pibridge.bridge import check
from pibridge.drivers import Driver, Option, ReadFailed
from pibridge.readings import Quantity

ROOT = Path(__file__).resolve().parents[2]


class Flaky(Driver):
    """A device whose first reads fail, like a DHT22 with a marginal pull-up; or one with a driver bug."""

    name = "test-flaky"
    retries = 2
    options = {
        "failures": Option(int, 0, "reads that fail before one succeeds"),
        "bug": Option(str, "", "'raise': read raises a non-driver error; 'extra': reports an undeclared quantity"),
    }

    def quantities(self):
        return [Quantity("temperature", "°C")]

    def open(self):
        self.left = self.config["failures"]

    def read(self):
        if self.config["bug"] == "raise":
            raise ZeroDivisionError("division by zero")
        if self.left > 0:
            self.left -= 1
            raise ReadFailed(f"sensor {self.sensor!r}: checksum error")
        values = {"temperature": 21.5}
        if self.config["bug"] == "extra":
            values["pressure"] = 1000.0
        return values


@pytest.fixture(autouse=True)
def flaky_driver():
    drivers.available()
    drivers.register(Flaky)
    yield
    drivers._registry.pop(Flaky.name, None)


def flaky(name: str, extra: str) -> str:
    return f'[[sensors]]\nname = "{name}"\ndriver = "test-flaky"\ninterval = 5.0\n{extra}\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sensor(name: str, extra: str = "") -> str:
    return f'[[sensors]]\nname = "{name}"\ndriver = "mock"\ninterval = 5.0\n{extra}\n'


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = check.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> list[list[str]]:
    """The table's lines split on the column gaps (two or more spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SENSOR"))
    rows = []
    for line in lines[start:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_good_sensors_are_read_and_shown_in_both_units(tmp_path, capsys):
    path = write(
        tmp_path,
        sensor("greenhouse", 'metrics = ["temperature", "pressure", "illuminance", "contact"]\nseed = 1\n'
               '[sensors.metric.illuminance]\nname = "light"\n')
        + sensor("shed", 'metrics = ["distance", "counter"]\n[sensors.metric.counter]\ndrop = true\n'),
    )
    code, out, err = run(capsys, "--config", str(path))
    assert code == 0, out + err
    assert f"Config {path} is valid: 2 sensors, 2 enabled." in out
    assert "not contacted" in out and "All 2 sensors read OK" in out
    rows = table_rows(out)
    assert rows[0] == ["SENSOR", "DRIVER", "QUANTITY", "METRIC", "VALUE", "SENT TO THE AGENT"]
    by_quantity = {row[-4]: row for row in rows[1:]}
    assert rows[1][:2] == ["greenhouse", "mock"]

    temperature = by_quantity["temperature"]
    value, unit = temperature[-2].split()
    assert unit == "°C"
    assert temperature[-1] == f"{value} SI.Temperature.CELSIUS"

    pressure = by_quantity["pressure"]
    hpa, unit = pressure[-2].split()
    pa, agent_unit = pressure[-1].split()
    assert (unit, agent_unit) == ("hPa", "SI.Pressure.PASCAL")
    assert float(pa) == pytest.approx(float(hpa) * 100)  # 1 hPa = 100 Pa

    light = by_quantity["illuminance"]
    assert light[-3] == "light" and light[-2].endswith(" lx") and light[-1].endswith("lx (custom double)")
    assert by_quantity["contact"][-2] in ("true", "false")

    distance = by_quantity["distance"]
    cm, _ = distance[-2].split()
    m, agent_unit = distance[-1].split()
    assert agent_unit == "SI.Length.METER" and float(m) == pytest.approx(float(cm) / 100)

    counter = by_quantity["counter"]
    assert counter[-3] == "(dropped)" and counter[-2].endswith(" count") and counter[-1] == "not sent (drop = true)"


def test_columns_are_aligned(tmp_path, capsys):
    path = write(tmp_path, sensor("greenhouse", 'metrics = ["temperature", "humidity"]') + sensor("a-much-longer-name"))
    code, out, _ = run(capsys, "--config", str(path))
    assert code == 0
    lines = [line for line in out.splitlines() if "mock" in line or line.startswith("SENSOR")]
    header = next(line for line in out.splitlines() if line.startswith("SENSOR"))
    for title in ("DRIVER", "QUANTITY", "METRIC"):
        column = header.index(title)
        assert all(line[column - 2:column] == "  " for line in lines)


def test_a_failing_sensor_makes_exit_status_1_and_shows_the_driver_message(tmp_path, capsys):
    path = write(tmp_path, sensor("greenhouse") + sensor("shed", "fail_every = 1") + sensor("cellar", "absent = true"))
    code, out, _ = run(capsys, "--config", str(path))
    assert code == 1
    rows = {row[0]: row for row in table_rows(out)[1:] if row[0] in ("shed", "cellar")}
    assert rows["shed"][2].startswith("FAILED: mock: injected read failure")
    assert "absent = true" in rows["cellar"][2]
    assert "1 of 3 sensors read OK; failed: shed, cellar." in out


def test_a_hanging_device_does_not_hang_check(tmp_path, capsys):
    path = write(tmp_path, sensor("greenhouse") + sensor("attic", "hang_every = 1\nhang_seconds = 60.0"))
    started = time.monotonic()
    code, out, _ = run(capsys, "--config", str(path), "--timeout", "0.5")
    assert time.monotonic() - started < 10
    assert code == 1
    assert "FAILED: no answer within 0.5 s" in out
    assert "temperature" in out  # the good sensor was still read


def test_garbage_values_are_refused_per_quantity(tmp_path, capsys):
    path = write(tmp_path, sensor("cellar", 'metrics = ["temperature", "humidity", "co2"]\ngarbage_every = 1\nseed = 5'))
    code, out, _ = run(capsys, "--config", str(path))
    rows = table_rows(out)[1:]
    refused = [row for row in rows if row[-1].startswith("ERROR refused")]
    # The mock mixes NaN, infinities and text with absurd but finite numbers; seed 5 gives some of each.
    assert refused and code == 1
    assert all(re.search(r"expected a (finite )?number", row[-1]) for row in refused)


def test_disabled_sensors_are_listed_but_not_read(tmp_path, capsys):
    path = write(tmp_path, sensor("greenhouse") + sensor("garage", "enabled = false\nabsent = true"))
    code, out, _ = run(capsys, "--config", str(path))
    assert code == 0
    assert ["garage", "mock", "(disabled: enabled = false, not read)"] in table_rows(out)


def test_only_the_chosen_sensor_is_read(tmp_path, capsys):
    path = write(tmp_path, sensor("greenhouse") + sensor("shed", "fail_every = 1"))
    code, out, _ = run(capsys, "--config", str(path), "--sensor", "greenhouse")
    assert code == 0 and "shed" not in out.split("SENSOR", 1)[1]
    code, _, err = run(capsys, "--config", str(path), "--sensor", "barn")
    assert code == 2 and "no sensor named 'barn'" in err and "'greenhouse'" in err


def test_config_errors_are_listed_with_exit_status_2(tmp_path, capsys):
    path = write(tmp_path, '[agent]\napi_port = "x"\n' + sensor("greenhouse", "colour = 1") + sensor("greenhouse"))
    code, out, err = run(capsys, "--config", str(path))
    assert code == 2
    assert out == ""
    assert f"pibridge check: {path} has 3 problems:" in err
    assert f"  - {path}:2: key 'agent.api_port': must be an integer" in err
    assert f"  - {path}:7: sensor 'greenhouse': key 'colour': unknown option" in err
    assert f"  - {path}:9: sensor 'greenhouse': key 'name': the name 'greenhouse' is already used" in err
    assert "Traceback" not in err


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run(capsys, "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "does not exist" in err and "examples/config.toml" in err


def test_config_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIBRIDGE_CONFIG", str(write(tmp_path, sensor("greenhouse"))))
    code, out, _ = run(capsys)
    assert code == 0 and "greenhouse" in out


def test_bad_timeout_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        check.main(["--timeout", "0"])
    assert info.value.code == 2
    assert "--timeout must be a positive number" in capsys.readouterr().err


def test_the_starter_config_checks_out(capsys):
    code, out, err = run(capsys, "--config", str(ROOT / "examples" / "config.toml"))
    assert code == 0, out + err


def test_pibridge_check_command_end_to_end(tmp_path):
    """The installed command, in a real process: exit codes and output as a user sees them."""
    good = write(tmp_path, sensor("greenhouse", 'metrics = ["pressure"]'))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-m", "pibridge.cli", "check", "--config", str(good)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "SI.Pressure.PASCAL" in done.stdout and done.stderr == ""

    bad = tmp_path / "bad.toml"
    bad.write_text("[[sensors]]\nname = 3\n")
    done = subprocess.run(
        [sys.executable, "-m", "pibridge.cli", "check", "--config", str(bad)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 2
    assert "key 'name': must be a string" in done.stderr and "Traceback" not in done.stderr


def test_read_failures_are_retried_as_often_as_the_driver_allows(tmp_path, capsys):
    path = write(tmp_path, flaky("twice", "failures = 2") + flaky("thrice", "failures = 3"))
    code, out, _ = run(capsys, "--config", str(path))
    assert code == 1
    rows = {row[0]: row for row in table_rows(out)[1:]}
    assert rows["twice"][-2:] == ["21.5 °C", "21.5 SI.Temperature.CELSIUS"]
    assert rows["thrice"][2] == "FAILED: checksum error"


def test_driver_bugs_are_reported_in_the_table(tmp_path, capsys):
    path = write(tmp_path, flaky("buggy", 'bug = "raise"') + flaky("chatty", 'bug = "extra"'))
    code, out, err = run(capsys, "--config", str(path))
    assert code == 1 and "Traceback" not in out + err
    rows = table_rows(out)[1:]
    assert ["buggy", "test-flaky", "FAILED: ZeroDivisionError from the driver: division by zero"] in rows
    assert ["pressure", "ERROR the driver reported a quantity it does not declare"] in rows


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_gets_a_row_per_sensor_and_no_traceback(example, capsys):
    """On a machine without the devices every sensor fails with advice; on a Pi they read.  Never a crash."""
    from pibridge.bridge.config import load_config
    from pibridge.drivers import available

    config = load_config(example) if all(s["driver"] in available() for s in _sensors_of(example)) else None
    if config is None:
        pytest.skip(f"{example.name} needs drivers that are not installed yet")
    code, out, err = run(capsys, "--config", str(example), "--timeout", "5")
    assert code in (0, 1) and "Traceback" not in out + err
    shown = {row[0] for row in table_rows(out)[1:]}
    assert {s.name for s in config.enabled_sensors} <= shown


def _sensors_of(path: Path) -> list[dict]:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8")).get("sensors", [])


def test_filters_are_shown_step_by_step_with_why_a_value_would_not_be_pushed_now(tmp_path, capsys):
    path = write(tmp_path, sensor("greenhouse", 'metrics = ["temperature", "humidity", "pressure"]\nseed = 3\n'
                                  'derived = ["dew_point", "sea_level_pressure"]\naltitude = 250\n'
                                  '[sensors.metric.temperature]\noffset = -0.4\nfilters = [{ median = 5 }]\n'
                                  '[sensors.metric.humidity]\nfilters = [{ calibrate = [[0.0, 0.3], [100.0, 99.1]] }]\n'
                                  'round = 1\n'))
    code, out, err = run(capsys, "--config", str(path))
    assert code == 0, out + err
    rows = {row[-4]: row for row in table_rows(out)[1:]}
    assert rows["temperature"][-1] == "not now: window not full: 1 of 5 readings"
    hpa = float(rows["pressure"][-2].split()[0])
    dew, unit = rows["dew_point"][-2].split()
    assert unit == "°C" and rows["dew_point"][-1] == f"{dew} SI.Temperature.CELSIUS"
    slp = float(rows["sea_level_pressure"][-2].split()[0])
    assert slp > hpa  # reduced to sea level from 250 m up
    steps = {line.split(": ", 1)[0].strip(): line for line in out.splitlines() if line.startswith("  greenhouse / ")}
    humidity = steps["greenhouse / humidity"]
    raw = float(re.search(r"raw ([\d.]+) %RH", humidity).group(1))
    calibrated = float(re.search(r"calibrate \(x 0\.988 \+ 0\.3\): ([\d.]+) %RH", humidity).group(1))
    assert calibrated == pytest.approx(raw * 0.988 + 0.3)  # the line through (0, 0.3) and (100, 99.1)
    assert f"round 1: {round(calibrated, 1):g} %RH => pushed {round(calibrated, 1):g} NoSI.Dimensionless.PERCENT" in humidity
    assert "offset -0.4" in steps["greenhouse / temperature"] and "held (window not full" in steps["greenhouse / temperature"]


def test_a_value_outside_valid_is_shown_as_dropped_and_fails_the_check(tmp_path, capsys):
    path = write(tmp_path, sensor("cellar", 'metrics = ["pressure"]\nderived = ["altitude"]\n'
                                  '[sensors.metric.pressure]\nfilters = [{ valid = [1100, 1200] }]\n'))
    code, out, err = run(capsys, "--config", str(path))
    assert code == 1 and "Traceback" not in out + err
    rows = {row[-4] if len(row) > 3 else row[0]: row for row in table_rows(out)[1:]}
    assert re.fullmatch(r"ERROR dropped: [\d.]+ is outside valid = \[1100, 1200\]", rows["pressure"][-1])
    assert rows["altitude"][-1] == "ERROR not computed: its input 'pressure' was dropped by that metric's filters"
    assert "pibridge.transforms" not in err  # the table says it; no log noise
