"""``pibridge check`` on SPI and serial sensors: a PMS5003 on a real pseudo-terminal, an MCP3008 and a
MAX31865 on SPI stand-ins; and what it says when the buses are not enabled."""

from __future__ import annotations

import re

import pytest

from pibridge.bridge import check
from pibridge.drivers.uart import _port
from tests.support.chips.max31865 import MAX31865Chip
from tests.support.chips.mcp3008 import MCP3008Chip
from tests.support.chips.pms5003 import PMS5003StandIn
from tests.support.spidev_fake import spi_factory


@pytest.fixture
def spi(monkeypatch, tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=tty1\n")
    monkeypatch.setattr(_port, "CMDLINE", str(cmdline))
    return spi_factory(monkeypatch)


def config(tmp_path, port: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'''
[[sensors]]
name = "air"
driver = "pms5003"
port = "{port}"
interval = 10.0
timeout = 2.0

[[sensors]]
name = "soil"
driver = "mcp3008"
interval = 10.0
channels = {{ moisture = "CH0" }}

[[sensors]]
name = "tank"
driver = "max31865"
interval = 10.0
device = 1
rtd_nominal = 100.0
reference_resistor = 430.0
wires = 3
''', encoding="utf-8")
    return str(path)


def rows(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SENSOR"))
    table = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        table[cells[-4] if len(cells) >= 4 else cells[0]] = cells
    return table


def test_check_reads_serial_and_spi_sensors(spi, tmp_path, capsys):
    spi.add(MCP3008Chip(volts=[1.65] + [0.0] * 7), device=0)
    spi.add(MAX31865Chip(resistance=119.40, reference=430.0), device=1)
    with PMS5003StandIn(pm2_5=12, pm10=20, particles_0_3um=1500) as sensor:
        code = check.main(["--config", config(tmp_path, sensor.path)])
    out = capsys.readouterr().out
    assert code == 0, out
    table = rows(out)
    assert table["pm2_5"][-2:] == ["12 µg/m³", "12 µg/m³ (custom double)"]
    assert table["particles_0_3um"][-2:] == ["1500 1/0.1L", "1500 particles/0.1 L (custom integer)"]
    assert table["moisture"][-1].endswith("SI.ElectricPotential.VOLT")
    assert float(table["moisture"][-2].split()[0]) == pytest.approx(1.65, abs=0.004)
    temperature = table["temperature"]
    assert float(temperature[-2].split()[0]) == pytest.approx(50.0, abs=0.05)  # Table 9: 119.40 Ω is 50 °C
    assert "All 3 sensors read OK" in out


def test_check_explains_disabled_buses_and_a_missing_port(spi, tmp_path, capsys):
    spi.buses.clear()
    code = check.main(["--config", config(tmp_path, "/dev/ttyAMA7"), "--timeout", "5"])
    out = capsys.readouterr().out
    assert code == 1
    table = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in ("air", "soil", "tank")}
    assert "/dev/ttyAMA7 does not exist" in table["air"] and "do_serial_hw 0" in table["air"]
    assert "/dev/spidev0.0 is missing" in table["soil"] and "raspi-config nonint do_spi 0" in table["soil"]
    assert "/dev/spidev0.1 is missing" in table["tank"]
