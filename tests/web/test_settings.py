"""The [http] config section: off unless written, loopback by default, every mistake named with a fix."""

from pathlib import Path

import pytest

from pibridge.bridge.config import ConfigError, parse_config
from pibridge.web.settings import HttpSettings, parse_listen

BASE = """
[storage]
dir = "/tmp/pibridge-web-settings"

[[sensors]]
name = "greenhouse"
driver = "mock"
interval = 5.0
metrics = ["temperature"]
"""


def config(http: str | None):
    # [http] goes before [[sensors]]: in TOML, keys after a [[sensors]] line belong to that sensor.
    text = BASE if http is None else "[http]\n" + http + "\n" + BASE
    return parse_config(text, Path("/etc/pibridge/config.toml"))


def test_no_http_section_means_no_page():
    assert config(None).http is None


def test_an_empty_section_turns_the_page_on_for_this_machine_only():
    http = config("").http
    assert http == HttpSettings()
    assert (http.host, http.port) == ("127.0.0.1", 8088)
    assert http.loopback_only


def test_all_keys():
    http = config('listen = "0.0.0.0:9100"\nhistory = "30min"\nhistory_points = 100\nmax_connections = 4').http
    assert (http.host, http.port, http.history_seconds, http.history_points, http.max_connections) == (
        "0.0.0.0", 9100, 1800.0, 100, 4)
    assert not http.loopback_only


def test_enabled_false_keeps_the_settings_but_no_page():
    assert config('enabled = false\nlisten = "127.0.0.1:9000"').http is None


@pytest.mark.parametrize("text, host, port", [
    ("127.0.0.1:8088", "127.0.0.1", 8088),
    ("localhost:80", "localhost", 80),
    ("[::1]:8088", "::1", 8088),
    ("[::]:8088", "::", 8088),
    (" pi.local:8000 ", "pi.local", 8000),
])
def test_listen_forms(text, host, port):
    assert parse_listen(text) == (host, port)


@pytest.mark.parametrize("http, key, words", [
    ('listen = "8088"', "http.listen", "is not host:port"),
    ('listen = "127.0.0.1:70000"', "http.listen", "outside 1-65535"),
    ('listen = "[nonsense]:80"', "http.listen", "not an IPv6 address"),
    ("listen = 8088", "http.listen", "must be a string"),
    ('history = "forever"', "http.history", "not a duration"),
    ('history = "10s"', "http.history", "between 1 minute and 24 hours"),
    ("history_points = 5", "http.history_points", "between 10 and 10000"),
    ("max_connections = 1.5", "http.max_connections", "whole number"),
    ('enabled = "yes"', "http.enabled", "true or false"),
    ('listne = "127.0.0.1:8088"', "http.listne", "unknown key in [http]"),
])
def test_mistakes_name_the_key_and_a_fix(http, key, words):
    with pytest.raises(ConfigError) as caught:
        config(http)
    error = caught.value.errors[0]
    assert error.key == key
    assert words in error.message
    assert error.fix
    assert str(error.file) == "/etc/pibridge/config.toml"


def test_a_misspelt_section_name_suggests_http():
    with pytest.raises(ConfigError) as caught:
        parse_config('[htpp]\nlisten = "127.0.0.1:8088"\n' + BASE)
    assert "did you mean" in caught.value.errors[0].fix.lower() and "http" in caught.value.errors[0].fix


def test_every_http_key_is_documented():
    from pibridge.web.settings import KEYS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = doc.split("## `[http]`", 1)[1].split("\n## ", 1)[0]
    for key in KEYS:
        assert f"| `{key}` |" in section, key
