"""``pibridge drivers`` shows the SPI and serial drivers with their bus; neither library is imported early."""

import json
import subprocess
import sys

from pibridge import cli


def test_drivers_lists_the_spi_and_serial_drivers(capsys):
    assert cli.main(["drivers"]) == 0
    out = capsys.readouterr().out
    for name in ("mcp3008", "mcp3004", "max31855", "max31865", "pms5003", "pms7003", "sds011", "mhz19"):
        assert f"\n{name}: " in "\n" + out, name
    assert "SPI: /dev/spidev<bus>.<device>, mode 1 or 3, clock up to 1000000 Hz" in out
    assert "serial: 9600 baud 8N1 on /dev/serial0 (option port)" in out
    assert "pm2_5 [µg/m³]" in out and "particles_0_3um [1/0.1L]" in out and "co2 [ppm]" in out


def test_drivers_json_has_the_bus_details(capsys):
    assert cli.main(["drivers", "--json"]) == 0
    data = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert data["max31855"]["spi"] == {"modes": [0], "max_speed_hz": 5_000_000}
    assert data["sds011"]["serial"] == {"port": "/dev/serial0", "baud": 9600}
    assert "spi" not in data["pms5003"] and "serial" not in data["mcp3008"]


def test_one_driver_shows_its_wiring(capsys):
    assert cli.main(["drivers", "max31865"]) == 0
    out = capsys.readouterr().out
    assert "GPIO11 (pin 23)" in out and "reference_resistor" in out


def test_spidev_and_pyserial_are_imported_only_when_a_device_is_opened():
    code = (
        "import sys, pibridge.drivers as d, pibridge.driverlist; d.available(); "
        "print(','.join(m for m in ('spidev', 'serial') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_every_new_driver_has_its_section_in_the_docs():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "drivers.md").read_text(encoding="utf-8")
    for heading in ("## mcp3008, mcp3004", "## max31855", "## max31865", "## pms5003, pms7003", "## sds011", "## mhz19",
                    "## SPI and serial buses"):
        assert f"\n{heading}\n" in docs, heading
