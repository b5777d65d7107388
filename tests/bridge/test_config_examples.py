"""Every examples/*.toml is a valid config, so a user can start from any of them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pibridge.bridge.config import load_config
from pibridge.drivers import available

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))


def test_there_are_examples():
    names = {path.name for path in EXAMPLES}
    assert {"config.toml", "greenhouse.toml", "power.toml", "weather.toml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_valid_config(path):
    wanted = {s.get("driver") for s in tomllib.loads(path.read_text(encoding="utf-8")).get("sensors", [])}
    missing = sorted(d for d in wanted if d not in available())
    if missing:
        pytest.skip(f"{path.name} needs drivers that are not installed yet: {', '.join(missing)}")
    config = load_config(path)
    assert config.sensors and all(s.metrics for s in config.sensors)
    for sensor in config.sensors:
        # Every sensor in an example pushes something under a readable name.
        pushed = [m for m in sensor.metrics.values() if not m.drop]
        assert pushed, sensor.name


def test_the_starter_config_runs_on_a_laptop():
    """The file the installer copies must pass validation with no hardware at all."""
    config = load_config(EXAMPLES[[p.name for p in EXAMPLES].index("config.toml")])
    assert {s.driver for s in config.enabled_sensors} == {"mock"}
    assert config.agent.host == "localhost" and config.agent.api_port == 18884


DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_documented_unit_table_matches_the_code():
    from pibridge.readings import UNITS

    rows = {}
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and ("SI." in cells[1] or "custom" in cells[1]):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    assert set(rows) == set(UNITS)
    for unit, agent in UNITS.items():
        described, factor = rows[unit]
        if agent.unit is not None:
            assert described == f"`{agent.unit.value}`" and float(factor) == agent.factor, unit
        else:
            assert described == (
                f"custom: valueType `{agent.value_type.value}`, valueAnnotation `{agent.annotation}`"
            ), unit


def test_documented_error_messages_are_what_the_loader_says():
    from pibridge.bridge.config import ConfigError, parse_config

    section = DOC.split("This file:", 1)[1]
    broken = section.split("```toml\n", 1)[1].split("```", 1)[0]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    path = Path("/etc/pibridge/config.toml")
    with pytest.raises(ConfigError) as info:
        parse_config(broken, path)
    assert shown[0] == f"pibridge check: {path} has {len(info.value.errors)} problems:"
    assert shown[1:-1] == [f"  - {e.describe()}" for e in info.value.errors]
