"""``pibridge drivers`` and ``pibridge scan`` know the ADS1015, MCP9808, LM75, TMP102, VEML7700,
TSL2591 and TSL2561 from their driver files alone."""

import json

import pytest

from pibridge import cli

CHIPS = {
    "ads1015": (["0x48", "0x49", "0x4a", "0x4b"], {"a0": "V", "a1": "V", "a2": "V", "a3": "V"}),
    "mcp9808": ([f"0x{a:02x}" for a in range(0x18, 0x20)], {"temperature": "°C"}),
    "lm75": ([f"0x{a:02x}" for a in range(0x48, 0x50)], {"temperature": "°C"}),
    "tmp102": (["0x48", "0x49", "0x4a", "0x4b"], {"temperature": "°C"}),
    "veml7700": (["0x10"], {"illuminance": "lx"}),
    "tsl2591": (["0x29"], {"illuminance": "lx"}),
    "tsl2561": (["0x39", "0x29", "0x49"], {"illuminance": "lx"}),
}


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_listed_with_addresses_and_units(capsys, name):
    addresses, units = CHIPS[name]
    assert cli.main(["drivers", "--json"]) == 0
    info = next(d for d in json.loads(capsys.readouterr().out) if d["name"] == name)
    assert info["i2c_addresses"] == addresses
    assert {q["name"]: q["unit"] for q in info["quantities"]} == units
    assert cli.main(["drivers", name]) == 0
    assert "SDA to GPIO2 (pin 3)" in capsys.readouterr().out  # the wiring notes


def test_scan_offers_every_chip_that_can_sit_at_an_address_without_an_id(bus, capsys):
    from tests.support.smbus_fake import RegisterChip

    bus.add(RegisterChip(0x4C))  # all registers 0: nothing rules out an LM75 there
    cli.main(["scan"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("0x4c  "))
    assert line.startswith("0x4c  could be: ") and 'LM75 (driver = "lm75")' in line
    assert "TMP102" not in line and "ADS1" not in line  # their addresses end at 0x4b
