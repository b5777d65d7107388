"""``pibridge scan``, ``pibridge drivers`` and driver discovery (modules and entry points)."""

import errno
import json
import sys
import textwrap

import pytest

import pibridge.drivers as registry
from pibridge import cli
from pibridge.drivers import available, create, driver_class
from tests.support.hardware_chips import ADS1115Chip, BH1750Chip, BoschChip, SHT3xChip
from tests.support.smbus_fake import Chip


class EepromChip(Chip):
    """An AT24 EEPROM at 0x50: answers reads; a quick write would start a write cycle."""

    def __init__(self, address=0x50):
        super().__init__(address)
        self.quick_writes = 0

    def read(self, length):
        return b"\xff" * length

    def write(self, data):
        self.quick_writes += not data


class BusyBus:
    """A bus where one address is claimed by a kernel driver (EBUSY, shown as UU)."""

    def __init__(self, bus, busy):
        self._bus, self.busy = bus, busy

    def __getattr__(self, name):
        method = getattr(self._bus, name)

        def call(address=None, *args, **kwargs):
            if address == self.busy:
                raise OSError(errno.EBUSY, "Device or resource busy")
            return method(address, *args, **kwargs) if address is not None else method()

        return call


def test_scan_lists_answering_addresses_and_candidate_chips(bus, capsys):
    bus.add(BoschChip(0x76))
    bus.add(SHT3xChip(0x44))
    bus.add(ADS1115Chip(0x48))
    bus.add(BH1750Chip(0x23))
    eeprom = bus.add(EepromChip(0x50))
    bus.add(Chip(0x3C))  # an OLED display; a PCF8574A could sit there too
    assert cli.main(["scan", "--bus", "1"]) == 0
    out = capsys.readouterr().out
    assert "70: -- -- -- -- -- -- 76 --" in out
    assert "40: -- -- -- -- 44 -- -- -- 48" in out
    assert '0x76  is: BME280 (driver = "bme280") (checked its id register)' in out
    # INA219 can be strapped to any of 0x40-0x4f, so it shares 0x44 with the Sensirion chips.
    assert '0x44  could be: INA219 (driver = "ina219"), SHT3x (driver = "sht3x"), SHT4x (driver = "sht4x")' in out
    assert '0x48  could be: ADS1015 (driver = "ads1015"), ADS1115 (driver = "ads1115"), INA219 (driver = "ina219")' in out
    assert '0x3c  could be: PCF8574A (driver = "pcf8574a")' in out
    assert "0x50  no pibridge driver" in out
    assert eeprom.quick_writes == 0  # probed with a read, as i2cdetect does in 0x50-0x5f
    assert bus.closed


def test_scan_tells_bme280_bmp280_and_others_apart_by_chip_id(bus, capsys):
    bus.add(BoschChip(0x76, chip_id=0x58))
    bus.add(BoschChip(0x77, chip_id=0x55))  # same addresses, an id no pibridge driver knows
    cli.main(["scan"])
    out = capsys.readouterr().out
    assert '0x76  is: BMP280 (driver = "bmp280") (checked its id register)' in out
    assert '0x77  a chip whose id matches none of: BME280 (driver = "bme280"), BME680' in out


def test_scan_of_an_empty_bus_gives_wiring_advice(bus, capsys):
    assert cli.main(["scan"]) == 0
    assert "No chip answers" in capsys.readouterr().out


@pytest.mark.parametrize("number, advice", [
    (1, "raspi-config nonint do_i2c 0"),
    (0, "dtparam=i2c_vc=on"),
    (4, "dtoverlay=i2c-gpio,bus=4"),
])
def test_scan_of_a_missing_bus_says_how_to_make_that_bus(buses, capsys, number, advice):
    del buses.buses[1]
    assert cli.main(["scan", "--bus", str(number)]) == 1
    err = capsys.readouterr().err
    assert f"/dev/i2c-{number} is missing" in err and advice in err
    if number != 1:
        assert "do_i2c" not in err  # the bus-1 switch does not make this bus


def test_scan_marks_addresses_held_by_kernel_drivers(buses, capsys, monkeypatch, tmp_path):
    from pibridge.drivers.i2c import _bus as _i2c

    real = buses.bus(1)
    monkeypatch.setattr(_i2c, "open_bus", lambda number: BusyBus(real, 0x68))
    # What the kernel shows after dtoverlay=i2c-rtc,ds3231: the client device 1-0068 named ds3231.
    (tmp_path / "1-0068").mkdir()
    (tmp_path / "1-0068" / "name").write_text("ds3231\n")
    monkeypatch.setattr(_i2c, "SYSFS_DEVICES", tmp_path)
    assert cli.main(["scan"]) == 0
    out = capsys.readouterr().out
    assert "60: -- -- -- -- -- -- -- -- UU" in out
    line = next(line for line in out.splitlines() if line.startswith("0x68  "))
    assert "the kernel's 'ds3231' driver has claimed the address" in line
    assert "dtoverlay=i2c-rtc,ds3231" in line and "/boot/firmware/config.txt" in line
    assert f"{tmp_path}/1-0068/name says ds3231" in line
    assert "`grep -n ds3231 /boot/firmware/config.txt` finds it" in line


def test_new_i2c_driver_shows_up_in_scan_without_touching_scan(bus, capsys, monkeypatch):
    from pibridge.drivers.i2c._bus import I2CDriver

    class Clock(I2CDriver):
        name = "test_ds3231"
        chip = "DS3231"
        addresses = (0x68,)

    monkeypatch.setitem(registry._registry, "test_ds3231", Clock)
    bus.add(Chip(0x68))
    cli.main(["scan"])
    assert '0x68  could be: DS3231 (driver = "test_ds3231")' in capsys.readouterr().out


def test_drivers_lists_every_driver_with_options_and_units(capsys):
    assert cli.main(["drivers"]) == 0
    out = capsys.readouterr().out
    for name in ("mock", "bme280", "bmp280", "sht3x", "sht4x", "bh1750", "ads1115", "ina219", "digital_input",
                 "contact", "motion", "pulse_counter", "hcsr04", "cpu_temperature", "dht11", "dht22", "am2302",
                 "ds18b20", "ina260", "ina3221", "pcf8574", "pcf8574a", "mcp23017", "max31850"):
        assert f"\n{name}: " in "\n" + out
    assert "temperature [°C], pressure [hPa], humidity [%RH]" in out
    assert "address       int, 0x76: I2C address" in out
    assert "pin          int, required" in out


def test_drivers_json_and_single_driver(capsys):
    assert cli.main(["drivers", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    bme = next(d for d in data if d["name"] == "bme280")
    assert bme["i2c_addresses"] == ["0x76", "0x77"]
    assert {"name": "humidity", "unit": "%RH", "description": "relative humidity"} in bme["quantities"]
    assert cli.main(["drivers", "ds18b20"]) == 0
    assert "4.7 kΩ" in capsys.readouterr().out
    assert cli.main(["drivers", "bme208"]) == 2
    assert "unknown driver 'bme208'" in capsys.readouterr().err


def test_every_driver_documents_wiring_and_declares_canonical_units():
    for name, cls in available().items():
        assert cls.__doc__ and cls.summary, name
        assert cls.provides, name
        for option in cls.options.values():
            assert option.help, name


def test_no_driver_module_imports_hardware_libraries_at_import_time():
    import subprocess

    code = (
        "import sys, pibridge.drivers as d; d.available(); "
        "bad = [m for m in ('gpiozero', 'smbus2', 'adafruit_dht', 'board') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A third-party distribution on sys.path, declaring drivers in the pibridge.drivers group."""
    (tmp_path / "acme_sensors.py").write_text(textwrap.dedent('''
        from pibridge.drivers import Driver
        from pibridge.readings import Quantity

        class Anemometer(Driver):
            name = "acme_wind"
            summary = "ACME wind sensor"
            provides = (Quantity("wind_speed", "m/s"),)

            def quantities(self):
                return list(self.provides)

            def read(self):
                return {"wind_speed": 3.5}
    '''))
    info = tmp_path / "acme_sensors-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sensors\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pibridge.drivers]\nacme_wind = acme_sensors:Anemometer\nacme_broken = acme_missing:Thing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_broken", {})
    monkeypatch.setattr(registry, "_discovered", False)
    yield
    sys.modules.pop("acme_sensors", None)


def test_third_party_driver_through_entry_point(plugin_path):
    driver = create("acme_wind", "roof", {})
    assert driver.read() == {"wind_speed": 3.5}
    assert "mock" in available()
    with pytest.raises(KeyError, match="acme_broken.*failed to load.*acme_missing"):
        driver_class("acme_broken")
