"""Fuzzed config files: whatever a user writes, the loader answers with a Config or a ConfigError.

Three kinds of input: arbitrary text and bytes, the starter config with random
edits, and well-formed TOML documents whose every value may be of any type
(so validation itself, not only the TOML parser, is exercised).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pibridge.bridge.config import Config, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
STARTER = (ROOT / "examples" / "config.toml").read_text(encoding="utf-8")
PATH = Path("/etc/pibridge/config.toml")

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def loads_or_config_error(text: str) -> None:
    try:
        config = parse_config(text, PATH)
    except ConfigError as e:
        assert e.errors and all(err.message for err in e.errors)
        assert all("\n" not in err.describe() for err in e.errors)  # one line per problem
        assert all(err.file == PATH for err in e.errors)
        assert str(e) and "Traceback" not in str(e)
    else:
        assert isinstance(config, Config)


# --- a tiny TOML writer, so documents of any shape can be produced ---------------------------


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(document: dict) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in document.items())


text_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    text_values,
    st.sampled_from(["5s", "1h30m", "7d", "64 MiB", "never", "", "0x76", "mock", "temperature", "1e999 GiB"]),
    st.sampled_from([10**400, -(10**400), 2**64]),  # TOML integers have no size limit in Python's parser
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
)
any_value = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def maybe(good):
    """Mostly a sensible value (so validation gets deep), now and then anything at all."""
    return st.sampled_from(range(10)).flatmap(lambda n: any_value if n == 7 else good)


def section(fields: dict, required: tuple[str, ...] = ()) -> st.SearchStrategy:
    """A table with some of *fields* (always those in *required*, unless fuzzed away) and rarely a stray key."""
    extra = st.sampled_from(range(10)).flatmap(
        lambda n: st.dictionaries(st.text(max_size=12), any_value, max_size=2) if n == 7 else st.just({})
    )
    return st.builds(
        lambda chosen, extra: {**extra, **chosen},
        st.fixed_dictionaries(
            {k: maybe(v) for k, v in fields.items() if k in required},
            optional={k: maybe(v) for k, v in fields.items() if k not in required},
        ),
        extra,
    )


quantities = st.sampled_from(["temperature", "humidity", "pressure", "contact", "counter", "illuminance"])
metric_table = section(
    {
        "name": st.text(max_size=70),
        "drop": st.booleans(),
        "scale": st.floats(-10, 10),
        "offset": st.floats(-10, 10),
        "round": st.integers(-12, 20),
        "threshold": st.floats(-1, 5),
        "heartbeat": st.one_of(st.floats(-1, 600), st.sampled_from(["15m", "1h", "x"])),
    }
)
sensor_table = section(
    {
        "name": st.one_of(st.sampled_from(["greenhouse", "shed", "cellar", "attic"]), st.text(max_size=70)),
        "driver": st.sampled_from(["mock"] * 8 + ["mokc", ""]),
        "interval": st.one_of(st.floats(0.1, 100), st.sampled_from(["5s", "1m", "fast", 0, -1])),
        "enabled": st.booleans(),
        "offline_after": st.integers(0, 10),
        "metrics": st.lists(quantities, min_size=1, max_size=4, unique=True),
        "seed": st.integers(0, 100),
        "min_interval": st.floats(0, 10),
        "fail_every": st.integers(-1, 5),
    },
    required=("name", "driver", "interval", "metrics"),
)


@st.composite
def sensor_with_metric_tables(draw):
    """A sensor whose [sensors.metric.X] tables mostly name quantities it reports."""
    sensor = draw(sensor_table)
    reported = sensor.get("metrics")
    if isinstance(reported, list) and reported and all(isinstance(q, str) for q in reported):
        names = st.sampled_from(range(10)).flatmap(lambda n: quantities if n == 7 else st.sampled_from(reported))
        sensor["metric"] = draw(maybe(st.dictionaries(names, metric_table, min_size=1, max_size=3)))
    return sensor
documents = st.fixed_dictionaries(
    {},
    optional={
        "agent": maybe(
            section(
                {
                    "host": st.sampled_from(["localhost", "pi.local", "mqtts://x", "h:1"]),
                    "provision_port": st.integers(-1, 70000),
                    "api_port": st.integers(-1, 70000),
                    "ca_file": st.text(max_size=30),
                    "client_name": st.text(max_size=70),
                    "timeout": st.floats(-1, 100),
                    "reprovision": st.booleans(),
                }
            )
        ),
        "storage": maybe(
            section(
                {
                    "dir": st.text(max_size=30),
                    "outbox_max_bytes": st.one_of(st.integers(), st.sampled_from(["64 MiB", "1 GiB", "9" * 400])),
                    "outbox_max_age": st.one_of(st.floats(), st.sampled_from(["7d", "never", "1w2d", "d"])),
                    "ack_window": st.floats(-1, 10),
                    "commit_interval": st.floats(-1, 10),
                }
            )
        ),
        "log": maybe(section({"level": st.sampled_from(["info", "DEBUG", "loud"])})),
    },
)
documents = st.builds(
    lambda document, sensors: {**document, "sensors": sensors},
    documents,
    maybe(st.lists(maybe(sensor_with_metric_tables()), min_size=1, max_size=3)),
)


@FUZZ
@given(documents)
def test_any_document_gives_a_config_or_a_config_error(document):
    loads_or_config_error(toml_document(document))


@FUZZ
@given(st.text(max_size=300))
def test_any_text_gives_a_config_or_a_config_error(text):
    loads_or_config_error(text)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(STARTER)), st.integers(0, 8), st.text(max_size=6)), max_size=5))
def test_edited_starter_config_gives_a_config_or_a_config_error(edits):
    text = STARTER
    for position, cut, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + cut:]
    loads_or_config_error(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_in_the_file_give_a_config_or_a_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "config.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as e:
        assert e.file == path and e.errors


def test_the_document_writer_round_trips():
    import tomllib

    document = {"a": [1, 2.5, "x\n\"y\x7f"], "b": {"c": True, "d": dt.datetime(2024, 1, 2, 3, 4, 5)}}
    assert tomllib.loads(toml_document(document)) == document


ODD_VALUES = [
    10**400, -(10**400), 2**63 - 1, -1, 0, 1e308, -1e-308, math.nan, math.inf, -math.inf, True,
    "", " ", "\x00", "x" * 5000, "1e999 GiB", "9" * 400, "never", [], [1, "a"], {}, {"a": {"b": 1}},
    dt.datetime(2024, 1, 1, 12, 0), dt.date(2024, 1, 1), dt.time(12, 0),
]
KEY_PATHS = [
    ("agent", k) for k in ("host", "provision_port", "api_port", "ca_file", "client_name", "timeout", "reprovision")
] + [
    ("storage", k) for k in ("dir", "outbox_max_bytes", "outbox_max_age", "ack_window", "commit_interval")
] + [("log", "level")] + [
    ("sensor", k) for k in ("name", "driver", "interval", "enabled", "offline_after", "metrics", "seed", "metric")
] + [
    ("metric", k) for k in ("name", "drop", "scale", "offset", "round", "threshold", "heartbeat")
]


def test_every_key_with_every_odd_value():
    """Exhaustive over key x value, where the random tests above only sample."""
    for place, key in KEY_PATHS:
        for value in ODD_VALUES:
            sensor = {"name": "greenhouse", "driver": "mock", "interval": 5.0, "metrics": ["temperature"]}
            metric = {"threshold": 0.5}
            document = {"agent": {}, "storage": {}, "log": {}, "sensors": [sensor]}
            target = {"sensor": sensor, "metric": metric}.get(place) or document[place]
            target[key] = value
            sensor["metric"] = sensor.get("metric", {"temperature": metric}) if place != "sensor" else sensor.get(
                "metric", {"temperature": metric}
            )
            loads_or_config_error(toml_document(document))
