"""The config loader: every validation rule, and that each error names the file, the sensor and the key.

Sensors with pins and rate limits are described by small drivers defined
here, subclassing :class:`Driver` exactly as a real driver module does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pibridge import drivers
from pibridge.bridge.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    MetricConfig,
    config_path,
    load_config,
    parse_config,
)
from pibridge.drivers import Driver, Option, OptionError
from pibridge.readings import Quantity

CONFIG = Path("/etc/pibridge/config.toml")


class PinnedHygrometer(Driver):
    """A DHT22-like device: one GPIO pin, read at most every 2 seconds."""

    name = "test-hygrometer"
    options = {"pin": Option(int, help="BCM GPIO number of the data pin")}

    def __init__(self, sensor, options=None):
        super().__init__(sensor, options)
        if not 0 <= self.config["pin"] <= 27:
            raise OptionError("pin", f"sensor {sensor!r}: pin {self.config['pin']} is not a GPIO of the header (0-27)")

    def quantities(self):
        return [Quantity("temperature", "°C"), Quantity("humidity", "%RH")]

    def min_interval(self):
        return 2.0

    def resources(self):
        return [f"gpio:{self.config['pin']}"]


class I2cBarometer(Driver):
    """A BME280-like chip on an I2C bus and address."""

    name = "test-barometer"
    options = {"bus": Option(int, 1, "I2C bus number"), "address": Option(int, 0x76, "I2C address")}

    def quantities(self):
        return [Quantity("pressure", "hPa"), Quantity("light", "lx")]

    def resources(self):
        return [f"i2c:{self.config['bus']}:{self.config['address']:#04x}"]


class BrokenDescription(Driver):
    """A driver with a bug in quantities(): the loader must report it, not crash."""

    name = "test-broken"

    def quantities(self):
        raise RuntimeError("oops")


@pytest.fixture(autouse=True)
def test_drivers():
    added = [PinnedHygrometer, I2cBarometer, BrokenDescription]
    drivers.available()  # discover the real drivers first so ours do not shadow them
    for cls in added:
        drivers.register(cls)
    yield
    for cls in added:
        drivers._registry.pop(cls.name, None)


def errors_of(text: str, path: Path | None = CONFIG) -> list[ConfigError]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, path)
    assert str(info.value) == "\n".join(e.describe() for e in info.value.errors)
    return info.value.errors


def the_error(text: str, key: str, sensor: str | None = "greenhouse", path: Path | None = CONFIG) -> ConfigError:
    """The one error about *key*; asserts it names the file, the sensor and the key, and offers a fix."""
    found = [e for e in errors_of(text, path) if e.key == key]
    assert found, f"no error for key {key!r}; got:\n" + "\n".join(e.describe() for e in errors_of(text, path))
    error = found[0]
    line = error.describe()
    assert error.file == path
    assert line.startswith(f"{path}:{error.line}: " if error.line else f"{path}: ")
    if error.line is not None:
        # the line named is the key's own, or the header of the table it is missing from
        text_line = text.splitlines()[error.line - 1]
        leaf = key.rsplit(".", 1)[-1]
        assert leaf in text_line or text_line.lstrip().startswith("["), (error.line, text_line, key)
    assert f"key {key!r}" in line
    assert error.sensor == sensor
    if sensor is not None:
        assert f"sensor {sensor!r}" in line
    assert error.fix and ". Fix: " in line
    return error


def mock(extra: str = "", name: str = "greenhouse", interval: str = "5.0") -> str:
    return f'[[sensors]]\nname = "{name}"\ndriver = "mock"\ninterval = {interval}\n{extra}\n'


# --- a good config -------------------------------------------------------------------------


def test_minimal_config_gets_every_default():
    config = parse_config(mock(), CONFIG)
    assert config.path == CONFIG
    assert config.agent.host == "localhost"
    assert (config.agent.provision_port, config.agent.api_port) == (18883, 18884)
    assert config.agent.ca_file == Path("/var/lib/teamviewer-iot-agent/certs/TeamViewerAuthority.crt")
    assert config.agent.client_name == "pibridge"
    assert config.agent.timeout == 10.0 and config.agent.reprovision is False
    assert config.storage.dir == Path("/var/lib/pibridge")
    assert config.storage.outbox_max_bytes == 64 * 1024 * 1024
    assert config.storage.outbox_max_age == 7 * 86400
    assert (config.storage.ack_window, config.storage.commit_interval) == (2.0, 1.0)
    assert config.storage.offline_commit_interval == 15.0
    assert config.log_level == "info"
    [sensor] = config.sensors
    assert (sensor.name, sensor.driver, sensor.interval, sensor.enabled, sensor.offline_after) == (
        "greenhouse", "mock", 5.0, True, 3,
    )
    assert sensor.metrics == {
        "temperature": MetricConfig("temperature", "temperature"),
        "humidity": MetricConfig("humidity", "humidity"),
    }
    assert [q.name for q in sensor.quantities] == ["temperature", "humidity"]


def test_full_config_is_read_as_written(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        """
[agent]
host = "192.168.1.20"
provision_port = 28883
api_port = 28884
ca_file = "certs/agent-ca.crt"
client_name = "pi-greenhouse"
timeout = "30s"
reprovision = true

[storage]
dir = "state"
outbox_max_bytes = "16 MiB"
outbox_max_age = "1d12h"
ack_window = 0.5
commit_interval = "250ms"
offline_commit_interval = "1m"

[log]
level = "DEBUG"

[[sensors]]
name = "Greenhouse (north)"
driver = "mock"
interval = "1m"
enabled = false
offline_after = 5
metrics = ["temperature", "pressure", "contact"]
seed = 7

[sensors.metric.temperature]
name = "air temperature"
scale = 1.02
offset = -0.4
round = 1
threshold = 0.2
heartbeat = "15m"

[sensors.metric.contact]
drop = true
""",
        encoding="utf-8",
    )
    config = load_config(path)
    agent, storage = config.agent, config.storage
    assert (agent.host, agent.provision_port, agent.api_port) == ("192.168.1.20", 28883, 28884)
    assert agent.ca_file == tmp_path / "certs/agent-ca.crt"  # relative to the config file
    assert (agent.client_name, agent.timeout, agent.reprovision) == ("pi-greenhouse", 30.0, True)
    assert storage.dir == tmp_path / "state"
    assert storage.outbox_max_bytes == 16 * 1024 * 1024
    assert storage.outbox_max_age == 36 * 3600
    assert (storage.ack_window, storage.commit_interval, storage.offline_commit_interval) == (0.5, 0.25, 60.0)
    assert config.log_level == "debug"
    [sensor] = config.sensors
    assert (sensor.name, sensor.interval, sensor.enabled, sensor.offline_after) == ("Greenhouse (north)", 60.0, False, 5)
    assert sensor.options == {"metrics": ["temperature", "pressure", "contact"], "seed": 7}
    assert sensor.metrics["temperature"] == MetricConfig("temperature", "air temperature", False, 1.02, -0.4, 1, 0.2, 900.0)
    assert sensor.metrics["pressure"] == MetricConfig("pressure", "pressure")
    assert sensor.metrics["contact"].drop is True
    assert config.enabled_sensors == []
    driver = sensor.create_driver()
    assert driver.sensor == "Greenhouse (north)" and driver.config["seed"] == 7


def test_never_expiring_outbox_and_plain_numbers():
    config = parse_config('[storage]\noutbox_max_age = "never"\noutbox_max_bytes = 2000000\n' + mock(), CONFIG)
    assert config.storage.outbox_max_age is None
    assert config.storage.outbox_max_bytes == 2_000_000


def test_absolute_and_home_paths_are_not_moved(monkeypatch):
    monkeypatch.setenv("HOME", "/home/pi")
    config = parse_config('[agent]\nca_file = "~/ca.crt"\n[storage]\ndir = "/srv/pibridge"\n' + mock(), CONFIG)
    assert config.agent.ca_file == Path("/home/pi/ca.crt")
    assert config.storage.dir == Path("/srv/pibridge")


def test_home_of_an_unknown_user_is_a_config_error():
    error = the_error('[storage]\ndir = "~nosuchuser-pibridge/state"\n' + mock(), "storage.dir", sensor=None)
    assert "~nosuchuser-pibridge" in str(error) and "full path" in str(error)


# --- where the config comes from -----------------------------------------------------------


def test_config_path_prefers_option_then_environment_then_default(monkeypatch):
    monkeypatch.setenv("PIBRIDGE_CONFIG", "/srv/from-env.toml")
    assert config_path("/srv/explicit.toml") == Path("/srv/explicit.toml")
    assert config_path(None) == Path("/srv/from-env.toml")
    monkeypatch.delenv("PIBRIDGE_CONFIG")
    assert config_path(None) == DEFAULT_CONFIG_PATH == Path("/etc/pibridge/config.toml")


def test_missing_file_says_to_copy_the_example(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == path
    assert str(info.value).startswith(f"{path}: the config file does not exist. Fix: ")
    assert "examples/config.toml" in info.value.fix and "PIBRIDGE_CONFIG" in info.value.fix


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="directory") as info:
        load_config(tmp_path)
    assert info.value.file == tmp_path


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file, so there is no permission error to see")
def test_unreadable_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(mock())
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied") as info:
        load_config(path)
    assert "chmod" in info.value.fix


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[agent]\nhost = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_config(path)
    assert info.value.file == path and "UTF-8" in info.value.fix


def test_a_huge_file_is_not_a_config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(mock() + "# " + "x" * 2_000_000 + "\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB") as info:
        load_config(path)
    assert info.value.file == path and "--config" in info.value.fix
    with pytest.raises(ConfigError, match="larger than"):
        load_config(Path("/dev/zero"))


def test_toml_syntax_error_names_file_and_line():
    [error] = errors_of('[agent]\nhost = localhost\n')
    assert error.file == CONFIG
    assert "not valid TOML" in error.message and "line 2" in error.message
    assert error.fix


# --- sections and their keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    "section, key, value, words",
    [
        ("agent", "host", "17", "must be a string"),
        ("agent", "host", '"mqtts://pi.local"', "not a URL"),
        ("agent", "host", '"pi.local:18884"', "port"),
        ("agent", "host", '""', "empty"),
        ("agent", "provision_port", '"18883"', "must be an integer, not a string"),
        ("agent", "api_port", "70000", "between 1 and 65535"),
        ("agent", "api_port", "true", "must be an integer, not a boolean"),
        ("agent", "ca_file", '""', "empty"),
        ("agent", "ca_file", "5", "must be a string"),
        ("agent", "client_name", '"my pi"', "letters, digits"),
        ("agent", "client_name", '"' + "x" * 65 + '"', "at most 64"),
        ("agent", "timeout", "0", "at least 500 ms"),
        ("agent", "timeout", "1e300", "at most 1 h"),
        ("agent", "timeout", '"1d"', "at most 1 h"),
        ("agent", "timeout", '"soon"', "not a duration"),
        ("agent", "timeout", "nan", "finite"),
        ("agent", "reprovision", '"yes"', "true or false"),
        ("storage", "dir", "[]", "must be a string"),
        ("storage", "outbox_max_bytes", "1000", "between 1 MiB and 1 TiB"),
        ("storage", "outbox_max_bytes", "\"2 TiB\"", "between 1 MiB and 1 TiB"),
        ("storage", "outbox_max_bytes", "\"2000 GiB\"", "between 1 MiB and 1 TiB"),
        ("storage", "outbox_max_bytes", '"lots"', "not a size"),
        ("storage", "outbox_max_bytes", "1.5e9", "must be a number of bytes"),
        ("storage", "outbox_max_age", '"a week"', "not a duration"),
        ("storage", "outbox_max_age", "-1", "at least 1 min"),
        ("storage", "outbox_max_age", '"20000d"', "at most 3650 d"),
        ("storage", "ack_window", "-0.5", "at least 100 ms"),
        ("storage", "ack_window", "1e300", "at most 5 min"),
        ("storage", "commit_interval", "1e300", "at most 1 h"),
        ("storage", "commit_interval", "0.001", "at least 50 ms"),
        ("storage", "commit_interval", "inf", "finite"),
        ("storage", "offline_commit_interval", "1e300", "at most 1 h"),
        ("storage", "offline_commit_interval", "0.001", "at least 50 ms"),
        ("log", "level", '"verbose"', "not a log level"),
        ("log", "level", "2", "must be a string"),
    ],
)
def test_section_key_of_wrong_type_or_range(section, key, value, words):
    error = the_error(f"[{section}]\n{key} = {value}\n" + mock(), f"{section}.{key}", sensor=None)
    assert words in error.message
    assert key in error.fix  # the fix shows the key with a good value


@pytest.mark.parametrize("section", ["agent", "storage", "log"])
def test_unknown_key_in_a_section_suggests_the_right_one(section):
    typo = {"agent": "hots", "storage": "dri", "log": "levle"}[section]
    error = the_error(f"[{section}]\n{typo} = 1\n" + mock(), f"{section}.{typo}", sensor=None)
    assert "unknown key" in error.message
    assert "did you mean" in error.fix


def test_same_port_twice():
    error = the_error("[agent]\nprovision_port = 18884\n" + mock(), "agent.api_port", sensor=None)
    assert "same as provision_port" in error.message


def test_unknown_top_level_key_and_section_given_as_value():
    errors = errors_of('name = "greenhouse"\nagent = "localhost"\n' + mock())
    by_key = {e.key: e for e in errors}
    assert "unknown top-level key" in by_key["name"].message
    assert "below a [[sensors]] line" in by_key["name"].fix
    assert "must be a table" in by_key["agent"].message and "[agent]" in by_key["agent"].fix


def test_no_sensors():
    error = the_error("[agent]\n", "sensors", sensor=None)
    assert "no sensors" in error.message and "[[sensors]]" in error.fix


def test_sensors_written_as_a_single_table():
    error = the_error('[sensors]\nname = "greenhouse"\ndriver = "mock"\ninterval = 5\n', "sensors", sensor=None)
    assert "two brackets" in error.fix


def test_sensors_as_a_list_of_values():
    error = the_error('sensors = ["greenhouse"]\n', "sensors", sensor=None)
    assert "list of tables" in error.message


# --- sensors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, key, words",
    [
        ("enabled = 1", "enabled", "true or false"),
        ("offline_after = 0", "offline_after", "between 1 and 100000"),
        ("offline_after = 10000000000", "offline_after", "between 1 and 100000"),
        ("offline_after = 2.5", "offline_after", "must be an integer"),
        ("intervall = 5", "intervall", "unknown option"),
        ("metrics = [\"temperature\", \"humidty\"]", "metrics", "no quantity 'humidty'"),
        ("fail_every = \"often\"", "fail_every", "must be int"),
        ("metric = 3", "metric", "table"),
    ],
)
def test_sensor_key_problems(extra, key, words):
    error = the_error(mock(extra), key)
    assert words in error.message


def test_unknown_sensor_key_suggests_a_sensor_key_or_driver_option():
    error = the_error(mock("enabeld = false"), "enabeld")
    assert "did you mean 'enabled'" in error.fix
    assert "interval" in error.fix and "metrics" in error.message  # both kinds of key are listed


def test_driver_message_is_not_prefixed_twice_with_the_sensor():
    error = the_error(mock('metrics = ["humidty"]'), "metrics")
    assert error.describe().count("greenhouse") == 1


@pytest.mark.parametrize(
    "interval, words",
    [
        ("0", "at least 10 ms"),
        ("-5", "at least 10 ms"),
        ("0.000001", "at least 10 ms"),
        ("1e300", "at most 1 d"),
        ('"2d"', "at most 1 d"),
        ('"fast"', "not a duration"),
        ("true", "not a boolean"),
    ],
)
def test_bad_interval(interval, words):
    error = the_error(mock(interval=interval), "interval")
    assert words in error.message


def test_missing_interval_and_driver():
    errors = errors_of('[[sensors]]\nname = "greenhouse"\n')
    by_key = {e.key: e for e in errors}
    assert by_key["driver"].message == "is missing" and 'driver = "mock"' in by_key["driver"].fix
    assert by_key["interval"].message == "is missing" and "interval = " in by_key["interval"].fix
    assert all(e.sensor == "greenhouse" for e in errors)


def test_interval_faster_than_the_device_allows():
    text = '[[sensors]]\nname = "greenhouse"\ndriver = "test-hygrometer"\ninterval = 1.0\npin = 4\n'
    error = the_error(text, "interval")
    assert "cannot be read more often than every 2 s" in error.message
    assert "interval = 2 or more" in error.fix
    parse_config(text.replace("interval = 1.0", "interval = 2.0"), CONFIG)


def test_unknown_driver_suggests_the_closest():
    error = the_error(mock().replace('"mock"', '"mokc"'), "driver")
    assert "no driver called 'mokc'" in error.message
    assert "did you mean 'mock'" in error.fix and "test-hygrometer" in error.fix


def test_required_driver_option():
    error = the_error('[[sensors]]\nname = "greenhouse"\ndriver = "test-hygrometer"\ninterval = 5\n', "pin")
    assert "needs option 'pin'" in error.message
    assert "BCM GPIO number" in error.fix


def test_driver_own_range_check_names_the_key():
    error = the_error('[[sensors]]\nname = "greenhouse"\ndriver = "test-hygrometer"\ninterval = 5\npin = 40\n', "pin")
    assert "not a GPIO of the header" in error.message


def test_driver_bug_is_reported_not_raised():
    [error] = errors_of('[[sensors]]\nname = "greenhouse"\ndriver = "test-broken"\ninterval = 5\n')
    assert error.sensor == "greenhouse" and error.file == CONFIG
    assert "RuntimeError: oops" in error.message


def test_driver_option_that_crashes_the_driver_becomes_a_config_error():
    # The mock looks names up in a dict: a table in the list is unhashable.
    [error] = errors_of(mock("metrics = [{ a = 1 }]"))
    assert error.sensor == "greenhouse" and "TypeError" in error.message


@pytest.mark.parametrize(
    "name, words",
    [
        ('""', "must not be empty"),
        ('"   "', "must not be empty"),
        ('" greenhouse"', "start or end with spaces"),
        ('"green\\thouse"', "control characters"),
        ('"' + "g" * 65 + '"', "at most 64"),
        ("42", "must be a string"),
    ],
)
def test_bad_sensor_name(name, words):
    text = f"[[sensors]]\nname = {name}\ndriver = \"mock\"\ninterval = 5\n"
    [error] = [e for e in errors_of(text) if e.key == "name"]
    assert words in error.message
    assert error.sensor is None
    assert error.describe().startswith(f"{CONFIG}:2: sensor #1 (the 1st [[sensors]] table): key 'name': ")


def test_unnamed_sensor_still_gets_its_other_keys_checked():
    errors = errors_of('[[sensors]]\ndriver = "mock"\ninterval = 5\nintervall = 3\n')
    assert {e.key for e in errors} == {"name", "intervall"}
    assert all("sensor #1" in e.describe() for e in errors)


def test_duplicate_sensor_names():
    error = the_error(mock(name="greenhouse") + mock(name="shed") + mock(name="greenhouse"), "name")
    assert "already used by the 1st [[sensors]] table" in error.message


def test_pin_used_twice_names_both_sensors_and_the_key():
    def dht(name, pin, enabled="true"):
        return (f'[[sensors]]\nname = "{name}"\ndriver = "test-hygrometer"\ninterval = 5\n'
                f"pin = {pin}\nenabled = {enabled}\n")

    error = the_error(dht("greenhouse", 4) + dht("shed", 17) + dht("cellar", 4), "pin", sensor="cellar")
    assert "gpio:4 is also used by sensor 'greenhouse'" in error.message
    assert "own pin or address" in error.fix
    # A disabled sensor does not hold its pin.
    parse_config(dht("greenhouse", 4) + dht("cellar", 4, enabled="false"), CONFIG)


def test_pin_conflict_is_found_alongside_other_mistakes():
    text = (
        '[[sensors]]\nname = "greenhouse"\ndriver = "test-hygrometer"\ninterval = 1\npin = 4\n'
        '[[sensors]]\nname = "shed"\ndriver = "test-hygrometer"\ninterval = 5\npin = 4\nintervall = 5\n'
    )
    places = {(e.sensor, e.key) for e in errors_of(text)}
    assert places == {("greenhouse", "interval"), ("shed", "intervall"), ("shed", "pin")}


def test_i2c_address_used_twice():
    def chip(name, address):
        return f'[[sensors]]\nname = "{name}"\ndriver = "test-barometer"\ninterval = 5\naddress = {address}\n'

    error = the_error(chip("greenhouse", "0x76") + chip("shed", "0x76"), "address", sensor="shed")
    assert "i2c:1:0x76" in error.message
    parse_config(chip("greenhouse", "0x76") + chip("shed", "0x77"), CONFIG)


# --- per-metric options --------------------------------------------------------------------


def metric(options: str, quantities: str = '["temperature", "humidity", "contact"]', interval: str = "5.0") -> str:
    return mock(f"metrics = {quantities}\n[sensors.metric.temperature]\n{options}\n", interval=interval)


@pytest.mark.parametrize(
    "options, key, words",
    [
        ("name = 5", "name", "must be a string"),
        ('name = ""', "name", "must not be empty"),
        ('name = "' + "t" * 65 + '"', "name", "at most 64"),
        ('drop = "yes"', "drop", "true or false"),
        ('scale = "2"', "scale", "must be a number"),
        ("scale = 0", "scale", "must not be 0"),
        ("offset = nan", "offset", "finite"),
        ("round = 1.5", "round", "must be an integer"),
        ("round = 20", "round", "between -9 and 15"),
        ("threshold = 0", "threshold", "greater than 0"),
        ("threshold = -1", "threshold", "greater than 0"),
        ('heartbeat = "5m"', "heartbeat", "only applies together with a threshold"),
        ("threshold = 0.5\nheartbeat = 2", "heartbeat", "shorter than the sensor's interval"),
        ("offest = 1", "offest", "unknown key"),
    ],
)
def test_metric_option_problems(options, key, words):
    error = the_error(metric(options), f"metric.temperature.{key}")
    assert words in error.message


def test_numbers_only_options_on_an_on_off_quantity():
    text = mock('metrics = ["contact"]\n[sensors.metric.contact]\nscale = 2\nthreshold = 1\n')
    errors = {e.key: e for e in errors_of(text)}
    assert set(errors) == {"metric.contact.scale", "metric.contact.threshold"}
    assert "on/off quantity" in errors["metric.contact.scale"].message


def test_metric_table_for_a_quantity_the_driver_does_not_report():
    text = mock('metrics = ["temperature", "humidity"]\n[sensors.metric.pressure]\ndrop = true\n')
    error = the_error(text, "metric.pressure")
    assert "does not report 'pressure'" in error.message
    assert "it reports: temperature, humidity" in error.message


def test_two_metrics_with_one_name():
    text = mock('[sensors.metric.temperature]\nname = "climate"\n[sensors.metric.humidity]\nname = "climate"\n')
    error = the_error(text, "metric.humidity.name")
    assert "also used by quantity 'temperature'" in error.message
    # Dropping one of them resolves it.
    parse_config(text + "drop = true\n", CONFIG)


def test_everything_dropped():
    text = mock('[sensors.metric.temperature]\ndrop = true\n[sensors.metric.humidity]\ndrop = true\n')
    error = the_error(text, "metric")
    assert "nothing would be sent" in error.message


def test_metric_given_as_a_value_not_a_table():
    error = the_error(mock("metric.temperature = 3"), "metric.temperature")
    assert "must be a table" in error.message


def test_threshold_with_heartbeat_no_shorter_than_interval_is_fine():
    config = parse_config(metric("threshold = 0.5\nheartbeat = 5"), CONFIG)
    assert config.sensors[0].metrics["temperature"].heartbeat == 5.0


# --- many problems at once -----------------------------------------------------------------


def test_every_problem_is_reported_in_one_go():
    text = (
        "[agent]\napi_port = 0\n[log]\nlevel = 3\n"
        + mock("colour = 1")
        + mock("offline_after = -1", name="shed")
        + mock(name="greenhouse")
    )
    errors = errors_of(text)
    places = {(e.sensor, e.key) for e in errors}
    assert places == {
        (None, "agent.api_port"),
        (None, "log.level"),
        ("greenhouse", "colour"),
        ("shed", "offline_after"),
        ("greenhouse", "name"),
    }
    with pytest.raises(ConfigError) as info:
        parse_config(text, CONFIG)
    assert str(info.value).count("\n") == len(errors) - 1
    assert info.value.key == "agent.api_port"  # the error itself is the first problem


def test_messages_without_a_file():
    [error] = errors_of("[agent]\nhost = 1\n" + mock(), path=None)
    assert error.file is None
    assert error.describe().startswith("line 2: key 'agent.host': must be a string")


# --- with the real drivers -----------------------------------------------------------------


def test_dht22_cannot_be_read_faster_than_every_two_seconds():
    text = '[[sensors]]\nname = "greenhouse"\ndriver = "dht22"\ninterval = 1.5\npin = 4\n'
    error = the_error(text, "interval")
    assert "'dht22' cannot be read more often than every 2 s, but interval = 1.5" in error.message
    parse_config(text.replace("1.5", "2.0"), CONFIG)


def test_two_probes_without_ids_on_one_bus_must_say_which_is_which():
    probe = '[[sensors]]\nname = "{}"\ndriver = "ds18b20"\ninterval = 60\n'
    error = the_error(probe.format("greenhouse") + probe.format("soil"), "device_id", sensor="soil")
    assert "w1:auto is also used by sensor 'greenhouse'" in error.message


def test_bme280_and_bmp280_on_one_address():
    def chip(name, driver):
        return f'[[sensors]]\nname = "{name}"\ndriver = "{driver}"\ninterval = 60\naddress = 0x77\n'

    error = the_error(chip("greenhouse", "bme280") + chip("outside", "bmp280"), "address", sensor="outside")
    assert "i2c:1:0x77 is also used by sensor 'greenhouse'" in error.message


# --- beginners' mistakes -----------------------------------------------------------------


@pytest.mark.parametrize("key, written, meant", [("pin", '"4"', "pin = 4"), ("address", '"0x76"', "address = 0x76")])
def test_a_number_in_quotes_says_remove_the_quotes(key, written, meant):
    driver = "dht22" if key == "pin" else "bme280"
    text = f'[[sensors]]\nname = "greenhouse"\ndriver = "{driver}"\ninterval = 30\n{key} = {written}\n'
    error = the_error(text, key)
    assert f"remove the quotes ({meant})" in error.message
    assert error.line == 5


def test_a_quoted_number_in_a_core_key_says_remove_the_quotes():
    error = the_error("[agent]\napi_port = \"18884\"\n" + mock(), "agent.api_port", sensor=None)
    assert "remove the quotes" in error.message
    error = the_error(mock(interval='"5"'), "interval")
    assert "remove the quotes" in error.message and '"5s"' in error.message


def test_a_driver_name_in_capitals_is_taken_as_meant():
    config = parse_config('[[sensors]]\nname = "greenhouse"\ndriver = "BME280"\ninterval = 30\n', CONFIG)
    assert config.sensors[0].driver == "bme280"
    assert config.sensors[0].create_driver().name == "bme280"


def test_metric_problems_are_reported_together_with_the_sensors_own():
    text = ('[[sensors]]\nname = "greenhouse"\ndriver = "dht22"\ninterval = 30\npin = "4"\n'
            '[sensors.metric.temperature]\noffset = "half a degree"\nrund = 1\n')
    errors = errors_of(text)
    assert {e.key for e in errors} == {"pin", "metric.temperature.offset", "metric.temperature.rund"}
    assert {e.line for e in errors} == {5, 7, 8}


@pytest.mark.parametrize(
    "text, key, line, first",
    [
        ('[agent]\nhost = "a"\ntimeout = 3\nhost = "b"\n', "agent.host", 4, 2),
        ("[storage]\n[storage]\n", "storage", 2, 1),
        ('[[sensors]]\nname = "a"\n[[sensors]]\nname = "b"\nname = "c"\n', "sensors.name", 5, 4),
    ],
)
def test_a_duplicated_toml_key_is_named(text, key, line, first):
    error = the_error(text, key, sensor=None)
    assert f"again at line {line}" in error.message and f"first at line {first}" in error.message
    assert "keep one of them" in error.fix


def test_the_bounds_in_the_docs_are_the_enforced_ones():
    from pibridge.bridge import config as c
    from pibridge.bridge.config_sensors import INTERVAL_BOUNDS, OFFLINE_AFTER_BOUNDS

    docs = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    expected = {
        "timeout": c.TIMEOUT_BOUNDS, "ack_window": c.ACK_WINDOW_BOUNDS,
        "commit_interval": c.COMMIT_INTERVAL_BOUNDS, "outbox_max_age": c.MAX_AGE_BOUNDS,
        "interval": INTERVAL_BOUNDS,
    }
    from pibridge.settings import duration_text

    for key, (low, high) in expected.items():
        assert f"{duration_text(low)} – {duration_text(high)}" in rows[key], rows[key]
    assert f"{OFFLINE_AFTER_BOUNDS[0]} – {OFFLINE_AFTER_BOUNDS[1]:,}" in rows["offline_after"]
