"""SHT3x, SHT4x, BH1750, ADS1115 and INA219 against register emulators of the chips."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers._crc import sensirion_crc8
from tests.support.hardware_chips import (
    ADS1115Chip,
    BH1750Chip,
    INA219Chip,
    SHT3xChip,
    SHT4xChip,
)


def opened(name, options=None, sensor="probe"):
    driver = create(name, sensor, options or {})
    driver.open()
    return driver


# --- Sensirion ---------------------------------------------------------------------------------


def test_sensirion_crc_datasheet_example():
    # SHT3x datasheet section 4.12 (checksum calculation), example: CRC of 0xBEEF is 0x92.
    assert sensirion_crc8(b"\xbe\xef") == 0x92


@pytest.mark.parametrize(
    "t_raw, rh_raw, temperature, humidity",
    [
        # SHT3x datasheet section 4.13: T = -45 + 175 * S_T / (2^16 - 1), RH = 100 * S_RH / (2^16 - 1)
        (0x6666, 0x8000, 25.0, 50.0),
        (0x0000, 0x0000, -45.0, 0.0),
        (0xFFFF, 0xFFFF, 130.0, 100.0),
    ],
)
def test_sht3x_conversion(bus, t_raw, rh_raw, temperature, humidity):
    bus.add(SHT3xChip(0x44, t_raw=t_raw, rh_raw=rh_raw))
    driver = opened("sht3x")
    if not -40 <= temperature <= 125:
        with pytest.raises(ValueRejected, match="outside the chip's range"):
            driver.read()
    else:
        assert driver.read() == {"temperature": temperature, "humidity": humidity}
    driver.close()


def test_sht3x_waits_for_the_measurement(bus):
    chip = bus.add(SHT3xChip(0x45))
    driver = opened("sht3x", {"address": 0x45, "repeatability": "low"})
    assert driver.read()["temperature"] == 25.0  # the emulator NACKs a read before 4.5 ms
    assert chip.commands[-1] == bytes([0x24, 0x16])
    driver.close()


def test_sht3x_crc_mismatch_is_read_failed(bus):
    chip = bus.add(SHT3xChip(0x44))
    driver = opened("sht3x", sensor="attic")
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed) as info:
        driver.read()
    assert "CRC mismatch" in str(info.value) and "attic" in str(info.value) and "0x44" in str(info.value)
    chip.corrupt_crc = False
    assert driver.read()["humidity"] == 50.0
    driver.close()


def test_sht3x_on_an_sht4x_address_is_not_found(bus):
    bus.add(SHT4xChip(0x44))
    with pytest.raises(DeviceNotFound, match="0x44"):
        opened("sht3x")


@pytest.mark.parametrize(
    "rh_raw, humidity",
    [
        # SHT4x datasheet, "Conversion of Signal Output": RH = -6 + 125 * S_RH / (2^16 - 1), cropped to 0..100 %RH
        (0x6666, 44.0),
        (0x0000, 0.0),
        (0xFFFF, 100.0),
    ],
)
def test_sht4x_conversion(bus, rh_raw, humidity):
    bus.add(SHT4xChip(0x44, t_raw=0x6666, rh_raw=rh_raw))
    driver = opened("sht4x")
    assert driver.read() == {"temperature": 25.0, "humidity": humidity}
    assert driver.serial_number == 0x0F5A3C11
    driver.close()


def test_sht4x_crc_mismatch_and_io_error(bus):
    chip = bus.add(SHT4xChip(0x46))
    driver = opened("sht4x", {"address": 0x46, "precision": "low"})
    chip.corrupt_crc = True
    with pytest.raises(ReadFailed, match="CRC mismatch"):
        driver.read()
    chip.corrupt_crc = False
    bus.fail(errno.EIO)
    with pytest.raises(ReadFailed, match="errno 5"):
        driver.read()
    assert driver.read()["temperature"] == 25.0
    driver.close()


def test_sht4x_unplugged_mid_run(bus):
    chip = bus.add(SHT4xChip(0x44))
    driver = opened("sht4x")
    chip.present = False
    with pytest.raises(ReadFailed, match="errno 121.*i2cdetect"):
        driver.read()
    driver.close()


# --- BH1750 ------------------------------------------------------------------------------------


def test_bh1750_datasheet_example(bus):
    # BH1750FVI datasheet, "Measurement sequence example": high byte 1000_0011, low byte 1001_0000
    # in H-resolution mode = (2^15 + 2^9 + 2^8 + 2^7 + 2^4) / 1.2 = 28067 lx.
    chip = bus.add(BH1750Chip(0x23, counts=0b1000_0011_1001_0000))
    driver = opened("bh1750")
    assert driver.read()["illuminance"] == pytest.approx(28067, abs=0.5)
    assert chip.commands[:2] == [b"\x01", b"\x07"] and chip.commands[-1] == b"\x20"
    driver.close()


def test_bh1750_low_resolution_and_saturation(bus):
    chip = bus.add(BH1750Chip(0x5C, counts=1200))
    driver = opened("bh1750", {"address": 0x5C, "resolution": "low"})
    assert driver.read()["illuminance"] == pytest.approx(1000, abs=4)
    chip.counts = 0xFFFF
    with pytest.raises(ValueRejected, match="saturated"):
        driver.read()
    driver.close()


def test_bh1750_missing(bus):
    with pytest.raises(DeviceNotFound, match="0x23 on I2C bus 1"):
        opened("bh1750")


# --- ADS1115 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gain, lsb",
    # ADS1115 datasheet table 3, full-scale range and LSB size.
    [(2 / 3, 187.5e-6), (1, 125e-6), (2, 62.5e-6), (4, 31.25e-6), (8, 15.625e-6), (16, 7.8125e-6)],
)
def test_ads1115_full_scale_table(bus, gain, lsb):
    chip = bus.add(ADS1115Chip(0x48, inputs=(1000 * lsb, -250 * lsb, 0.0, 0.0)))
    driver = opened("ads1115", {"gain": gain, "channels": ["A0", "A1"], "data_rate": 860})
    values = driver.read()
    driver.close()
    assert values["a0"] == pytest.approx(1000 * lsb, rel=1e-9)
    assert values["a1"] == pytest.approx(-250 * lsb, rel=1e-9)
    assert chip.conversions == 2


def test_ads1115_config_word_and_differential_names(bus):
    chip = bus.add(ADS1115Chip(0x49, inputs=(3.3, 1.2, 2.0, 0.5)))
    driver = opened("ads1115", {"address": 0x49, "channels": {"battery": "A0", "bridge": "a2-a3"}})
    values = driver.read()
    driver.close()
    assert [q.name for q in driver.quantities()] == ["battery", "bridge"]
    assert values["battery"] == pytest.approx(3.3, abs=125e-6)
    assert values["bridge"] == pytest.approx(1.5, abs=125e-6)
    # OS=1, MUX=100 (AIN0/GND), PGA=001 (±4.096 V), MODE=1, DR=100 (128 SPS), COMP_QUE=11: 0xC383
    assert chip.written[0] == (0x01, 0xC383)
    assert chip.written[1] == (0x01, 0xB383)  # MUX=011 (AIN2-AIN3)


def test_ads1115_saturated_input_is_rejected(bus):
    bus.add(ADS1115Chip(0x48, inputs=(5.0, 0, 0, 0)))
    driver = opened("ads1115", {"channels": ["A0"], "gain": 2})
    with pytest.raises(ValueRejected, match="smaller gain"):
        driver.read()
    driver.close()


def test_ads1115_bad_channel_and_gain():
    with pytest.raises(OptionError, match="A4"):
        create("ads1115", "adc", {"channels": ["A4"]})
    with pytest.raises(OptionError) as info:
        create("ads1115", "adc", {"gain": 3})
    assert info.value.key == "gain"


def test_ads1115_io_error_mid_read(bus):
    bus.add(ADS1115Chip(0x48))
    driver = opened("ads1115", {"channels": ["A0"]})
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed, match="0x48 on I2C bus 1"):
        driver.read()
    driver.close()


# --- INA219 ------------------------------------------------------------------------------------


def test_ina219_datasheet_example(bus):
    # INA219 datasheet (SBOS448) section 8.5, table "Configure/Measure/Calculate Example":
    # 10 A load, 12 V, R_shunt = 2 mΩ, 40 mV shunt range, 16 V bus range:
    # config 019Fh, calibration 20480 (5000h), shunt 07D0h = 20 mV, bus 0BB3h = 11.98 V,
    # current 2710h = 10.0 A, power 1766h = 119.8 W.
    chip = bus.add(INA219Chip(0x40, shunt_raw=0x07D0, bus_raw=0x0BB3))
    driver = opened("ina219", {"shunt_ohms": 0.002, "max_current": 20.0, "bus_voltage_range": 16})
    values = driver.read()
    driver.close()
    assert chip.config == 0x019F and chip.calibration == 0x5000
    assert values == {"voltage": 11.98, "current": 10.0, "power": 119.8, "shunt_voltage": 20.0}


def test_ina219_odd_calibration_is_written_with_bit_0_clear(bus):
    # SBOS448 Figure 27, note 1: bit 0 of the calibration register is void and reads 0, as the
    # stand-in does.  shunt_ohms = 0.099, max_current = 3.2 A: Current_LSB = 100 µA (equation 2
    # rounded up), Cal = trunc(0.04096 / (100 µA x 0.099 Ω)) = 4137 (equation 1), odd; the chip can
    # only hold 4136.  9.9 mV across the shunt (990 x 10 µV) is 100 mA; the current register is
    # trunc(990 x 4136 / 4096) = 999 (equation 3), one step of 0.04096 / (4136 x 0.099) A each.
    chip = bus.add(INA219Chip(0x40, shunt_raw=990, bus_raw=1250))
    driver = opened("ina219", {"shunt_ohms": 0.099, "max_current": 3.2})
    values = driver.read()
    driver.close()
    assert chip.calibration == 4136
    assert [value for pointer, value in chip.written if pointer == 0x05] == [4136]  # no recalibration loop
    assert values["current"] == pytest.approx(999 * 0.04096 / (4136 * 0.099), abs=1e-6)
    assert values["current"] == pytest.approx(0.1, abs=0.0001)  # within one step of the truth
    assert values["shunt_voltage"] == 9.9


def test_ina219_recalibrates_after_a_brown_out(bus):
    chip = bus.add(INA219Chip(0x41, shunt_raw=500, bus_raw=1250))  # 5 mV, 5 V
    driver = opened("ina219", {"address": 0x41})
    first = driver.read()
    assert first["current"] == pytest.approx(0.05)  # 5 mV / 0.1 Ω
    chip.write(bytes([0x00, 0x80, 0x00]))  # the chip resets: calibration back to 0
    assert driver.read() == first
    driver.close()


def test_ina219_overflow_is_rejected(bus):
    chip = bus.add(INA219Chip(0x40, shunt_raw=100, bus_raw=1000))
    driver = opened("ina219")
    chip.overflow = True
    with pytest.raises(ValueRejected, match="max_current"):
        driver.read()
    driver.close()


def test_ina219_impossible_shunt_settings():
    with pytest.raises(OptionError, match="320 mV") as info:
        create("ina219", "power", {"shunt_ohms": 0.1, "max_current": 10.0})
    assert info.value.key == "max_current"


def test_ina219_other_chip_at_the_address(bus):
    bus.add(ADS1115Chip(0x48))
    with pytest.raises(DeviceNotFound, match="not an INA219"):
        opened("ina219", {"address": 0x48})
