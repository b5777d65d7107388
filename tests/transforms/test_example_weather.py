"""The weather station example, read once by ``pibridge check`` from an emulated BME280.

The chip is the register emulator of tests/support/hardware_chips.py (BME280
datasheet calibration and ADC values); everything above the I2C bus is real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pibridge.bridge import check
from pibridge.drivers.i2c import _bus as _i2c
from pibridge.transforms.derived import formulas as derived
from tests.support.hardware_chips import BoschChip
from tests.support.smbus_fake import BusFactory

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "weather.toml"


@pytest.fixture
def bme280_at_0x77(monkeypatch):
    factory = BusFactory()
    factory.bus(1).add(BoschChip(0x77))
    monkeypatch.setattr(_i2c, "open_bus", factory)


def test_the_weather_station_pushes_dew_point_and_sea_level_pressure(bme280_at_0x77, capsys):
    code = check.main(["--config", str(EXAMPLE), "--sensor", "Outside air"])
    out = capsys.readouterr().out
    assert code == 0, out
    # The step-by-step lines: "Outside air / <metric>: raw <value> <unit> -> ..." ("computed" for derived values).
    first = {m.group(1): float(m.group(2))
             for m in re.finditer(r"^  Outside air / ([\w ]+): (?:raw|computed) (-?[\d.]+) ", out, re.M)}
    t, p, rh = first["temperature"], first["station pressure"], first["humidity"]
    assert first["air pressure"] == pytest.approx(derived.sea_level_pressure(p, 250.0), abs=1e-5)
    assert first["dew point"] == pytest.approx(derived.dew_point(t, rh), abs=1e-5)
    assert first["air pressure"] > p and first["dew point"] < t
    rounded = round(first["air pressure"], 1)  # round = 1 in the example, sent in Pa
    assert f"{rounded:g} hPa  {rounded * 100:g} SI.Pressure.PASCAL" in out
