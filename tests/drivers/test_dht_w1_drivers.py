"""DHT11/DHT22 with a stand-in for the adafruit device; DS18B20 against a fake sysfs tree."""

import pytest

from pibridge.drivers import DeviceNotFound, OptionError, ReadFailed, ValueRejected, create, driver_class
from pibridge.drivers.gpio import dht as dht_module
from pibridge.drivers.gpio.dht import DHT
from tests.support.hardware_dht import CHECKSUM, NOT_FOUND, SHORT_BUFFER, DHTFactory, FakeDHT, frame, line_pulses
from tests.support.hardware_w1 import W1Tree, maxim_crc8, scratchpad, w1_slave_text

# --- DHT ---------------------------------------------------------------------------------------


@pytest.fixture
def dht(monkeypatch):
    """Install a FakeDHT with the given script as the device every DHT driver builds."""
    # Tests hold the fake's "library" delay at 20 ms, so a retry must wait just longer.
    monkeypatch.setattr(DHT, "retry_delay", 0.03)

    def install(script):
        factory = DHTFactory(FakeDHT(script, hold=0.02))
        monkeypatch.setattr(dht_module, "make_device", factory)
        return factory

    return install


def test_minimum_intervals_follow_the_datasheets():
    assert create("dht11", "s", {"pin": 4}).min_interval() == 1.0
    assert create("dht22", "s", {"pin": 4}).min_interval() == 2.0
    assert create("am2302", "s", {"pin": 4}).min_interval() == 2.0


def test_dht22_reading_and_pin_released_on_close(dht):
    factory = dht([(21.4, 48.2)])
    driver = create("dht22", "hall", {"pin": 4})
    driver.open()
    assert driver.read() == {"temperature": 21.4, "humidity": 48.2}
    assert factory.calls == [("DHT22", 4, True)]
    assert factory.device.measurements == 1  # temperature and humidity come from one measurement
    driver.close()
    assert factory.device.exited
    driver.close()


def test_am2302_is_a_dht22_and_dht11_asks_for_a_dht11(dht):
    factory = dht([(20.0, 40.0)])
    create("am2302", "a", {"pin": 17, "use_pulseio": False}).open()
    create("dht11", "b", {"pin": 18}).open()
    assert factory.calls == [("DHT22", 17, False), ("DHT11", 18, True)]


def test_checksum_and_short_buffer_errors_are_retried(dht):
    factory = dht([CHECKSUM, SHORT_BUFFER, (22.0, 50.0)])
    driver = create("dht22", "hall", {"pin": 4, "attempts": 3})
    driver.open()
    assert driver.read() == {"temperature": 22.0, "humidity": 50.0}
    assert factory.device.measurements == 3  # each retry waited out the library's hold time
    driver.close()


def test_retries_are_bounded_and_the_error_says_what_to_check(dht):
    factory = dht([CHECKSUM])
    driver = create("dht22", "hall", {"pin": 4, "attempts": 2})
    driver.open()
    with pytest.raises(ReadFailed) as info:
        driver.read()
    message = str(info.value)
    assert "GPIO4" in message and "hall" in message and "Checksum did not validate" in message
    assert "pull-up" in message and "2 attempts" in message
    assert factory.device.measurements == 2
    driver.close()


def test_sensor_not_found_is_device_not_found(dht):
    dht([NOT_FOUND])
    driver = create("dht11", "shed", {"pin": 27, "attempts": 2})
    driver.open()
    with pytest.raises(DeviceNotFound, match="GPIO27.*pull-up"):
        driver.read()
    driver.close()


@pytest.mark.parametrize(
    "model, values",
    [("dht22", (-120.5, 40.0)), ("dht11", (75.0, 40.0)), ("dht22", (0, 0)), ("dht22", (None, None))],
)
def test_impossible_values_are_rejected(dht, model, values):
    dht([values])
    driver = create(model, "x", {"pin": 4, "attempts": 2})
    driver.open()
    with pytest.raises((ValueRejected, ReadFailed)) as info:
        driver.read()
    if values[0] is not None:
        assert info.type is ValueRejected
    driver.close()


def test_one_bad_frame_then_a_good_one(dht):
    dht([(3276.7, 40.0), (19.5, 60.1)])
    driver = create("dht22", "x", {"pin": 4})
    driver.open()
    assert driver.read() == {"temperature": 19.5, "humidity": 60.1}
    driver.close()


def test_library_failure_at_open_is_device_not_found(monkeypatch):
    def broken(model, pin, use_pulseio, who):
        raise NotImplementedError("Board not supported")

    monkeypatch.setattr(dht_module, "make_device", broken)
    with pytest.raises(DeviceNotFound, match="GPIO4.*Board not supported"):
        create("dht22", "x", {"pin": 4}).open()


@pytest.fixture
def dht_line(monkeypatch):
    """adafruit_dht's own DHT11 decoding, fed the pulse train of a frame in place of the GPIO line."""
    import adafruit_dht

    def install(data):
        monkeypatch.setattr(adafruit_dht.DHTBase, "_get_pulses_bitbang", lambda self: line_pulses(data))
        return adafruit_dht

    return install


@pytest.mark.parametrize(
    "data, temperature, humidity",
    [
        # DHT11 datasheet (Aosong), "data format" example: 0011 0101 0000 0000 0001 1000 0000 0000
        # 0100 1101 = 35h 00h 18h 00h, checksum 4Dh: 53 %RH, 24 °C.
        (frame(0x35, 0x00, 0x18, 0x00, 0x4D), 24.0, 53),
        # Aosong's current DHT11 datasheet gives the rule, not a worked frame, for negative values:
        # tenths in the low nibble of byte 4, bit 7 of byte 4 set below 0 °C.  Both frames here are
        # built by that rule: -5.3 °C (05h 83h) and -0.8 °C (00h 88h, where only the bit says minus).
        (frame(0x35, 0x00, 0x05, 0x83), -5.3, 53),
        (frame(0x50, 0x00, 0x00, 0x88), -0.8, 80),
        (frame(0x28, 0x00, 0x16, 0x04), 22.4, 40),
    ],
)
def test_dht11_frames_decode_with_their_sign(dht_line, data, temperature, humidity):
    library = dht_line(data)
    device = dht_module.signed_dht11_class()(object(), use_pulseio=False)
    assert device.temperature == pytest.approx(temperature)
    assert device.humidity == humidity
    # Why the subclass exists: the library alone loses the sign bit of byte 4.
    assert library.DHT11(object(), use_pulseio=False).temperature == pytest.approx(abs(temperature))


def test_dht11_frame_with_a_bad_checksum_is_still_refused_by_the_library(dht_line):
    dht_line(frame(0x35, 0x00, 0x05, 0x83, checksum=0x00))
    device = dht_module.signed_dht11_class()(object(), use_pulseio=False)
    with pytest.raises(RuntimeError, match="Checksum"):
        device.temperature


def test_dht11_driver_reports_temperatures_below_zero(dht):
    dht([(-5.3, 53.0)])
    driver = create("dht11", "shed", {"pin": 4})
    driver.open()
    assert driver.read() == {"temperature": -5.3, "humidity": 53.0}
    driver.close()


# --- DS18B20 -----------------------------------------------------------------------------------

KERNEL_SAMPLE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
#: DS18B20 datasheet, memory map: power-up state of the scratchpad, 0550h (+85 °C), TH 4Bh, TL 46h, config 7Fh.
POWER_ON = bytes.fromhex("5005" "4b46" "7fff" "0c10")


@pytest.fixture
def w1(tmp_path):
    return W1Tree(tmp_path / "devices")


def probe(w1, device_id=""):
    driver = create("ds18b20", "tank", {"device_id": device_id, "sysfs_root": str(w1.root)})
    driver.open()
    return driver


def test_reads_the_kernel_format(w1):
    w1.add("28-0316a2790d2e", KERNEL_SAMPLE)
    driver = probe(w1, "28-0316a2790d2e")
    assert driver.read() == {"temperature": 23.125}
    assert driver.resources() == ["w1:28-0316a2790d2e"]


def test_several_probes_on_one_bus(w1):
    w1.add("28-000000000001", w1_slave_text(scratchpad(-10125)))
    w1.add("28-000000000002", w1_slave_text(scratchpad(56500)))
    assert probe(w1, "28-000000000001").read() == {"temperature": -10.125}
    assert probe(w1, "28-000000000002").read() == {"temperature": 56.5}
    with pytest.raises(DeviceNotFound, match="28-000000000001, 28-000000000002"):
        probe(w1)


def test_single_probe_needs_no_id(w1):
    w1.add("28-0316a2790d2e", KERNEL_SAMPLE)
    assert probe(w1).read() == {"temperature": 23.125}


def test_crc_no_is_read_failed(w1):
    w1.add("28-0316a2790d2e", KERNEL_SAMPLE.replace("YES", "NO"))
    with pytest.raises(ReadFailed, match="CRC mismatch.*pull-up"):
        probe(w1).read()


def test_scratchpad_crc_is_checked_too(w1):
    bad = "72 01 4b 46 7f ff 0e 10 58"
    w1.add("28-0316a2790d2e", f"{bad} : crc=58 YES\n{bad} t=23125\n")
    with pytest.raises(ReadFailed, match="fails its CRC"):
        probe(w1).read()


def test_power_on_85_degrees_is_rejected(w1):
    pad = POWER_ON + bytes([maxim_crc8(POWER_ON)])
    w1.add("28-0316a2790d2e", w1_slave_text(pad))
    with pytest.raises(ValueRejected, match="85 °C is the DS18B20's power-on value"):
        probe(w1).read()


def test_all_zero_scratchpad_passes_the_crc_but_is_refused(w1):
    zeros = "00 00 00 00 00 00 00 00 00"
    w1.add("28-0316a2790d2e", f"{zeros} : crc=00 YES\n{zeros} t=0\n")
    with pytest.raises(ReadFailed, match="all zeros"):
        probe(w1).read()


def test_probe_unplugged_mid_run(w1):
    w1.add("28-0316a2790d2e", KERNEL_SAMPLE)
    driver = probe(w1)
    w1.remove("28-0316a2790d2e")
    with pytest.raises(DeviceNotFound, match="left the 1-Wire bus"):
        driver.read()


def test_missing_probe_lists_what_is_there(w1):
    w1.add("28-000000000001", KERNEL_SAMPLE)
    with pytest.raises(DeviceNotFound, match="listed: 28-000000000001"):
        probe(w1, "28-0316a2790d2e")


def test_no_w1_bus_says_how_to_enable_it(tmp_path):
    driver = create("ds18b20", "tank", {"sysfs_root": str(tmp_path / "absent")})
    with pytest.raises(DeviceNotFound, match="dtoverlay=w1-gpio"):
        driver.open()


def test_garbage_file_is_read_failed(w1):
    w1.add("28-0316a2790d2e", "\x00\x00\n")
    with pytest.raises(ReadFailed, match="unexpected"):
        probe(w1).read()


def test_device_id_is_checked():
    with pytest.raises(OptionError) as info:
        create("ds18b20", "x", {"device_id": "0316a2790d2e"})
    assert info.value.key == "device_id"
    assert driver_class("ds18b20").retries == 2


def test_on_a_machine_without_a_pi_header_the_dht_driver_says_so(monkeypatch, tmp_path, capfd):
    from pibridge.drivers.gpio import _pins

    laptop = tmp_path / "model"
    laptop.write_bytes(b"Standard PC (Q35 + ICH9, 2009)\x00")
    monkeypatch.setattr(_pins, "MODEL_FILES", (laptop,))
    with pytest.raises(DeviceNotFound, match=r"no GPIO header here \(this is 'Standard PC .*'\); .*driver = \"mock\""):
        create("dht22", "x", {"pin": 4}).open()
    monkeypatch.setattr(_pins, "MODEL_FILES", (tmp_path / "absent",))
    with pytest.raises(DeviceNotFound, match="this is not a Raspberry Pi"):
        create("dht11", "x", {"pin": 4}).open()
    out, err = capfd.readouterr()
    assert "GENERIC_X86" not in out + err  # Blinka was never imported to print it


def test_on_a_pi_the_model_check_lets_the_library_try(monkeypatch, tmp_path):
    from pibridge.drivers.gpio import _pins

    pi = tmp_path / "model"
    pi.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    monkeypatch.setattr(_pins, "MODEL_FILES", (pi,))
    _pins.require_raspberry_pi("x")  # no exception: the library decides from here on
