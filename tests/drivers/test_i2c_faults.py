"""The same bad-hardware cases for every I2C driver: missing chip, errno 121 and errno 5 mid-read."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, ReadFailed, create
from tests.support.chips.ina260 import INA260Chip
from tests.support.chips.ina3221 import INA3221Chip
from tests.support.hardware_chips import ADS1115Chip, BH1750Chip, BoschChip, INA219Chip, SHT3xChip, SHT4xChip

CASES = {
    "bme280": (lambda: BoschChip(0x77, chip_id=0x60), {"address": 0x77}),
    "bmp280": (lambda: BoschChip(0x76, chip_id=0x58), {}),
    "sht3x": (lambda: SHT3xChip(0x45), {"address": 0x45}),
    "sht4x": (lambda: SHT4xChip(0x44), {"precision": "low"}),
    "bh1750": (lambda: BH1750Chip(0x23), {"resolution": "low"}),
    "ads1115": (lambda: ADS1115Chip(0x4B), {"address": 0x4B, "channels": ["A0"], "data_rate": 860}),
    "ina219": (lambda: INA219Chip(0x4F, shunt_raw=100, bus_raw=1000), {"address": 0x4F}),
    "ina260": (lambda: INA260Chip(0x45, current_raw=800, bus_raw=4000), {"address": 0x45, "averages": 1}),
    "ina3221": (lambda: INA3221Chip(0x43, shunt_raw=(250, 0, 0), bus_raw=(625, 0, 0)), {"address": 0x43, "averages": 1}),
}


@pytest.fixture(params=sorted(CASES))
def case(request, buses):
    make_chip, options = CASES[request.param]
    bus = buses.bus(2)
    return request.param, bus, make_chip, {"bus": 2, **options}


def test_missing_chip_names_bus_address_and_i2cdetect(case):
    name, bus, make_chip, options = case
    address = make_chip().address
    driver = create(name, "porch", options)
    with pytest.raises(DeviceNotFound) as info:
        driver.open()
    message = str(info.value)
    assert "'porch'" in message and f"0x{address:02x} on I2C bus 2" in message and "i2cdetect -y 2" in message
    driver.close()


@pytest.mark.parametrize("code", [errno.EREMOTEIO, errno.EIO])
def test_io_error_mid_read_is_read_failed_and_the_next_read_works(case, code):
    name, bus, make_chip, options = case
    chip = bus.add(make_chip())
    driver = create(name, "porch", options)
    driver.open()
    try:
        good = driver.read()
        bus.fail(code)
        with pytest.raises(ReadFailed) as info:
            driver.read()
        assert f"errno {code}" in str(info.value) and f"0x{chip.address:02x}" in str(info.value)
        assert driver.read() == good
    finally:
        driver.close()
    assert bus.closed


def test_chip_unplugged_at_open_then_plugged_in(case):
    name, bus, make_chip, options = case
    chip = bus.add(make_chip())
    chip.present = False
    driver = create(name, "porch", options)
    with pytest.raises(DeviceNotFound):
        driver.open()
    chip.present = True
    driver.open()
    assert set(driver.read()) == {q.name for q in driver.quantities()}
    driver.close()


def test_address_held_by_a_kernel_driver_says_ebusy_and_names_the_overlay(case, monkeypatch, tmp_path):
    from pibridge.drivers.i2c import _bus as _i2c

    name, bus, make_chip, options = case
    chip = bus.add(make_chip())
    monkeypatch.setattr(_i2c, "SYSFS_DEVICES", tmp_path)  # no name file: the driver is not known
    bus.fail(errno.EBUSY, times=20)
    driver = create(name, "porch", options)
    with pytest.raises(DeviceNotFound) as info:
        driver.open()
    message = str(info.value)
    assert f"0x{chip.address:02x} on I2C bus 2 is busy (errno 16)" in message
    assert "i2cdetect -y 2` shows UU" in message and f"2-{chip.address:04x}" in message
    assert "dtoverlay=i2c-sensor," in message and "/boot/firmware/config.txt" in message
