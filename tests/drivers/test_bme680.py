"""BME680 / BME688 against a register-level stand-in (BME680 datasheet BST-BME680-DS001)."""

import errno

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create
from pibridge.drivers.i2c import _bus, bme680
from pibridge.drivers.i2c._bme68x import Calibration68x, gas_wait
from tests.support.chips.bme680 import REAL_CALIBRATION, BME680Chip
from tests.support.virtual_clock import install


@pytest.fixture
def clock(monkeypatch):
    return install(monkeypatch, bme680, _bus)


def opened(options=None):
    driver = create("bme680", "lounge", options or {})
    driver.open()
    return driver


def _div(a, b):
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def integer_compensation(adc_t, adc_p, adc_h, c):
    """The datasheet's integer code, sections 3.3.1 (temperature, 0.01 °C), 3.3.2 (pressure, Pa)
    and 3.3.3 (humidity, 0.001 %RH): written here independently of the driver, which uses the
    floating-point form of Bosch's BME68x Sensor API."""
    var1 = (adc_t >> 3) - (c["t1"] << 1)
    var2 = (var1 * c["t2"]) >> 11
    var3 = ((((var1 >> 1) * (var1 >> 1)) >> 12) * (c["t3"] << 4)) >> 14
    t_fine = var2 + var3
    temp = ((t_fine * 5) + 128) >> 8

    var1 = (t_fine >> 1) - 64000
    var2 = ((((var1 >> 2) * (var1 >> 2)) >> 11) * c["p6"]) >> 2
    var2 = var2 + ((var1 * c["p5"]) << 1)
    var2 = (var2 >> 2) + (c["p4"] << 16)
    var1 = (((((var1 >> 2) * (var1 >> 2)) >> 13) * (c["p3"] << 5)) >> 3) + ((c["p2"] * var1) >> 1)
    var1 = var1 >> 18
    var1 = ((32768 + var1) * c["p1"]) >> 15
    press = 1048576 - adc_p
    press = (press - (var2 >> 12)) * 3125
    press = (press // var1) << 1 if press >= (1 << 30) else (press << 1) // var1
    var1 = (c["p9"] * (((press >> 3) * (press >> 3)) >> 13)) >> 12
    var2 = ((press >> 2) * c["p8"]) >> 13
    var3 = ((press >> 8) * (press >> 8) * (press >> 8) * c["p10"]) >> 17
    press = press + ((var1 + var2 + var3 + (c["p7"] << 7)) >> 4)

    ts = ((t_fine * 5) + 128) >> 8
    var1 = (adc_h - c["h1"] * 16) - (_div(ts * c["h3"], 100) >> 1)
    var2 = (c["h2"] * (_div(ts * c["h4"], 100) + _div((ts * _div(ts * c["h5"], 100)) >> 6, 100) + (1 << 14))) >> 10
    var3 = var1 * var2
    var4 = ((c["h6"] << 7) + _div(ts * c["h7"], 100)) >> 4
    var5 = ((var3 >> 14) * (var3 >> 14)) >> 10
    var6 = (var4 * var5) >> 1
    hum = min(max((((var3 + var6) >> 10) * 1000) >> 12, 0), 100000)
    return temp / 100.0, press / 100.0, hum / 1000.0


@pytest.mark.parametrize("adc_t, adc_p, adc_h", [(500000, 340000, 24000), (470000, 300000, 21000), (530000, 410000, 27000)])
def test_float_compensation_agrees_with_the_datasheet_integer_code(bus, clock, adc_t, adc_p, adc_h):
    bus.add(BME680Chip(clock=clock, adc_t=adc_t, adc_p=adc_p, adc_h=adc_h))
    driver = opened()
    values = driver.read()
    driver.close()
    temperature, pressure, humidity = integer_compensation(adc_t, adc_p, adc_h, REAL_CALIBRATION)
    assert values["temperature"] == pytest.approx(temperature, abs=0.011)
    # The integer code truncates on the way (var1 >> 18 above all) and lands a few Pa below the
    # floating-point result: the wrclark/bme680 README shows 99708 Pa against 99711.8 Pa on a real chip.
    assert values["pressure"] == pytest.approx(pressure, abs=0.1)
    assert values["humidity"] == pytest.approx(humidity, abs=0.05)
    assert 15 < values["temperature"] < 40 and 850 < values["pressure"] < 1100 and 20 < values["humidity"] < 90


def test_gas_resistance_known_answers_of_the_bosch_api():
    """Reference values of Bosch's BME68x Sensor API for gas_res_adc = 1023, gas_range = 13,
    range_switching_error = 0 (as reproduced in diozero's BME68xTest): 704.999878 Ω on the BME680
    ("low" variant, with the range constants of datasheet section 3.4.1) and 5684.846191 Ω on the
    BME688 ("high" variant)."""
    calibration = Calibration68x(**REAL_CALIBRATION)
    assert calibration.gas_low(1023, 13) == pytest.approx(704.999878, abs=1e-3)
    assert Calibration68x.gas_high(1023, 13) == pytest.approx(5684.846191, abs=1e-3)


def test_heater_set_point_known_answer_of_the_bosch_api():
    """Same source: par_g1 = 0, par_g2 = -5686, par_g3 = 18, res_heat_range = 1, res_heat_val = 39,
    ambient 25 °C and a 320 °C target give res_heat = 129 with the floating-point formula
    (datasheet section 3.3.5)."""
    assert Calibration68x(**REAL_CALIBRATION).res_heat(320, 25) == 129


@pytest.mark.parametrize(
    "ms, register",
    [
        (100, 0x59),  # the datasheet's quick-start example: 0x59 selects 100 ms
        (150, 0x65), (63, 0x3F), (64, 0x50), (4031, 0xFE), (4032, 0xFF), (5000, 0xFF),  # BME68x Sensor API
    ],
)
def test_gas_wait_encoding(ms, register):
    assert gas_wait(ms) == register


def test_range_switching_error_is_a_signed_nibble():
    # Datasheet: range_switching_error is register 0x04 bits 7:4, signed.
    def parsed(byte):
        return Calibration68x.parse([1] * 23, [1] * 14, [0, 0, 0, 0, byte]).range_switching_error

    assert (parsed(0x10), parsed(0xF0), parsed(0x8F), parsed(0x70)) == (1, -1, -8, 7)


def test_bme680_reads_gas_through_its_low_circuit(bus, clock):
    chip = bus.add(BME680Chip(clock=clock, variant=0x00, gas_adc=1023, gas_range=13))
    driver = opened()
    values = driver.read()
    assert values["gas_resistance"] == pytest.approx(705.0, abs=0.05)
    assert chip.registers[0x71] == 0x10  # run_gas_l, heater set-point 0
    assert chip.registers[0x64] == gas_wait(150)
    assert chip.registers[0x5A] == Calibration68x(**REAL_CALIBRATION).res_heat(320, 25)  # first read: 25 °C
    driver.close()


def test_bme688_reads_gas_through_its_high_circuit(bus, clock):
    chip = bus.add(BME680Chip(clock=clock, variant=0x01, gas_adc=1023, gas_range=13))
    driver = opened()
    assert driver.read()["gas_resistance"] == pytest.approx(5684.8, abs=0.05)
    assert chip.registers[0x71] == 0x20 and driver.variant_name == "BME688"
    driver.close()


def test_the_heater_set_point_follows_the_measured_temperature(bus, clock):
    chip = bus.add(BME680Chip(clock=clock, adc_t=530000))  # about 35 °C
    driver = opened({"heater_temperature": 300})
    first = driver.read()
    driver.read()
    written = [v for reg, v in chip.writes if reg == 0x5A]
    cal = Calibration68x(**REAL_CALIBRATION)
    assert written == [cal.res_heat(300, 25.0), cal.res_heat(300, first["temperature"])]
    assert written[0] != written[1]
    driver.close()


def test_gas_off_keeps_the_heater_off(bus, clock):
    chip = bus.add(BME680Chip(clock=clock))
    driver = opened({"gas": False})
    assert [q.name for q in driver.quantities()] == ["temperature", "pressure", "humidity"]
    assert set(driver.read()) == {"temperature", "pressure", "humidity"}
    assert chip.registers[0x70] & 0x08 and chip.registers[0x71] == 0
    driver.close()


def test_a_heater_that_did_not_reach_its_target_is_reported(bus, clock):
    bus.add(BME680Chip(clock=clock))
    driver = opened({"heater_duration": 10})  # the stand-in needs 20 ms to heat up
    with pytest.raises(ValueRejected, match="heat_stab = 0.*raise heater_duration"):
        driver.read()
    driver.close()


def test_an_invalid_gas_measurement_is_a_failed_read(bus, clock):
    chip = bus.add(BME680Chip(clock=clock, variant=0x01))
    driver = opened()
    driver.variant = 0x00  # a driver that picked the wrong gas circuit gets gas_valid = 0
    with pytest.raises(ReadFailed, match="gas_valid = 0"):
        driver.read()
    assert chip.measurements == 1
    driver.close()


def test_bme280_at_the_address_is_named(bus, clock):
    bus.add(BME680Chip(clock=clock, chip_id=0x60))
    with pytest.raises(DeviceNotFound, match='BME280.*driver = "bme280"'):
        opened()


def test_unknown_variant_is_refused(bus, clock):
    bus.add(BME680Chip(clock=clock, variant=0x07))
    with pytest.raises(DeviceNotFound, match="variant register 0xF0 reads 0x07"):
        opened()


def test_blank_calibration_is_refused(bus, clock):
    chip = bus.add(BME680Chip(clock=clock))
    chip.on_read = lambda register: 0x61 if register == 0xD0 else 0x00
    with pytest.raises(DeviceNotFound, match="calibration"):
        opened()


def test_missing_chip(bus, clock):
    with pytest.raises(DeviceNotFound, match="0x76 on I2C bus 1"):
        opened()


def test_io_error_mid_read_and_recovery(bus, clock):
    bus.add(BME680Chip(clock=clock))
    driver = opened()
    good = driver.read()
    bus.fail(errno.EREMOTEIO)
    with pytest.raises(ReadFailed, match="errno 121"):
        driver.read()
    assert driver.read() == good
    driver.close()


def test_a_brown_out_gives_the_skipped_value_and_a_clear_error(bus, clock):
    chip = bus.add(BME680Chip(clock=clock))
    driver = opened()
    chip.brown_out()
    chip.registers[0x1D] = 0x80  # the status reads "new data" but the registers hold 0x80000
    chip.on_write = lambda register, value: None  # and the chip ignores the trigger
    with pytest.raises(ReadFailed, match="measurement skipped"):
        driver.read()
    driver.close()


def test_impossible_temperature_is_rejected(bus, clock):
    bus.add(BME680Chip(clock=clock, adc_t=0xFFFF0))
    driver = opened()
    with pytest.raises(ValueRejected, match="outside the chip's range"):
        driver.read()
    driver.close()


@pytest.mark.parametrize(
    "options, key",
    [({"heater_temperature": 450}, "heater_temperature"), ({"heater_duration": 0}, "heater_duration"),
     ({"oversampling": 3}, "oversampling"), ({"address": 0x75}, "address")],
)
def test_options_are_checked(options, key):
    with pytest.raises(OptionError) as info:
        create("bme680", "lounge", options)
    assert info.value.key == key
