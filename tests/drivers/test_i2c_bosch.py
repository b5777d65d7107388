"""BME280 / BMP280 against a register emulator of the chip."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from tests.support.hardware_chips import TYPICAL_H, BoschChip


def opened(name, options=None):
    driver = create(name, "weather", options or {})
    driver.open()
    return driver


def humidity_double(adc_h, t_fine, H1, H2, H3, H4, H5, H6):
    """BME280 datasheet section 8.1, floating-point humidity compensation (independent of the
    driver, which uses the 32-bit integer formula of section 4.2.3)."""
    var_h = t_fine - 76800.0
    var_h = (adc_h - (H4 * 64.0 + H5 / 16384.0 * var_h)) * (
        H2 / 65536.0 * (1.0 + H6 / 67108864.0 * var_h * (1.0 + H3 / 67108864.0 * var_h))
    )
    var_h = var_h * (1.0 - H1 * var_h / 524288.0)
    return min(max(var_h, 0.0), 100.0)


def test_bme280_known_answer_from_the_datasheet_example(bus):
    # BMP280 datasheet section 3.12 (same formulas as BME280 section 4.2.3):
    # adc_T = 519888, adc_P = 415148 with its trimming values give 25.08 °C and 100653.27 Pa.
    chip = bus.add(BoschChip(0x76, chip_id=0x60, adc_h=30000))
    driver = opened("bme280")
    values = driver.read()
    driver.close()
    assert values["temperature"] == 25.08
    assert values["pressure"] == pytest.approx(1006.5327, abs=0.0005)
    t_fine = 128422  # datasheet: t_fine for adc_T = 519888
    assert values["humidity"] == pytest.approx(humidity_double(30000, t_fine, **TYPICAL_H), abs=0.01)
    assert chip.measurements == 1


def test_bmp280_has_no_humidity(bus):
    bus.add(BoschChip(0x77, chip_id=0x58))
    driver = opened("bmp280", {"address": 0x77})
    assert [q.name for q in driver.quantities()] == ["temperature", "pressure"]
    values = driver.read()
    driver.close()
    assert values == {"temperature": 25.08, "pressure": pytest.approx(1006.5327, abs=0.0005)}


def test_uses_forced_mode_and_sleeps_between_reads(bus):
    chip = bus.add(BoschChip(0x76))
    driver = opened("bme280", {"oversampling": 4})
    driver.read()
    driver.read()
    driver.close()
    ctrl_meas = [v for reg, v in chip.writes if reg == 0xF4]
    assert ctrl_meas == [0b011_011_01, 0b011_011_01]  # osrs_t = osrs_p = x4, mode = forced
    assert chip.registers[0xF4] & 0x03 == 0  # back in sleep mode
    assert chip.measurements == 2


def test_humidity_survives_a_brown_out(bus):
    chip = bus.add(BoschChip(0x76))
    driver = opened("bme280")
    first = driver.read()
    chip.brown_out()  # ctrl_hum back to 0: a driver that wrote it only once gets "skipped" humidity
    assert driver.read()["humidity"] == first["humidity"]
    driver.close()


def test_missing_chip_names_bus_address_and_i2cdetect(bus):
    driver = create("bme280", "weather", {})
    with pytest.raises(DeviceNotFound) as info:
        driver.open()
    message = str(info.value)
    assert "0x76" in message and "bus 1" in message and "i2cdetect -y 1" in message and "weather" in message


def test_missing_bus_says_how_to_enable_i2c(buses):
    driver = create("bme280", "weather", {"bus": 1})
    del buses.buses[1]
    with pytest.raises(DeviceNotFound, match="raspi-config"):
        driver.open()


def test_bmp280_wired_as_bme280_is_named(bus):
    bus.add(BoschChip(0x76, chip_id=0x58))
    with pytest.raises(DeviceNotFound, match='driver = "bmp280"'):
        opened("bme280")


def test_remote_io_error_mid_read_is_read_failed(bus):
    bus.add(BoschChip(0x76))
    driver = opened("bme280")
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed) as info:
        driver.read()
    assert "errno 121" in str(info.value) and "0x76" in str(info.value)
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read()["temperature"] == 25.08
    driver.close()


def test_impossible_temperature_is_rejected(bus):
    # An adc_T far outside what any calibration maps to -40..85 °C (a corrupted transfer).
    bus.add(BoschChip(0x76, adc_t=0xFFFF0))
    driver = opened("bme280")
    with pytest.raises(ValueRejected, match="outside the chip's range"):
        driver.read()
    driver.close()


def test_blank_calibration_is_refused(bus):
    bus.add(BoschChip(0x76, calibration=dict(T1=0, T2=0, T3=0, P1=0, P2=0, P3=0, P4=0, P5=0, P6=0, P7=0, P8=0, P9=0)))
    with pytest.raises(DeviceNotFound, match="calibration"):
        opened("bme280")


def test_options_are_checked():
    with pytest.raises(OptionError) as info:
        create("bme280", "w", {"address": 0x40})
    assert info.value.key == "address" and "0x76 or 0x77" in str(info.value)
    with pytest.raises(OptionError):
        create("bme280", "w", {"oversampling": 3})


def test_resources_name_bus_and_address():
    assert create("bme280", "w", {"bus": 0, "address": 0x77}).resources() == ["i2c:0:0x77"]
