"""A config reload without the daemon: what it sees as changed, what it leaves for a restart, and how
delivery takes new routes over an open connection (against the simulator)."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

from pibridge.bridge.config import parse_config
from pibridge.bridge.delivery import LIVE
from pibridge.bridge.reconcile import reconcile
from pibridge.bridge.reload import LIVE_KEYS, diff_configs, running_config, what_changed
from pibridge.readings import UNITS, Reading

from test_delivery import rig_factory, wait_for  # noqa: F401  (the fixture)

PATH = Path("/etc/pibridge/config.toml")

BASE = """
[agent]
host = "localhost"
[storage]
dir = "/var/lib/pibridge"
[log]
level = "info"

[[sensors]]
name = "greenhouse"
driver = "mock"
interval = 5.0
metrics = ["temperature", "humidity"]

[[sensors]]
name = "cellar"
driver = "mock"
interval = 10.0
metrics = ["pressure"]
"""


def config(text: str = BASE):
    return parse_config(text, PATH)


def test_the_same_file_changes_nothing():
    diff = diff_configs(config(), config())
    assert not diff.sensors_changed
    assert sorted(diff.unchanged) == ["cellar", "greenhouse"]
    assert diff.log_level is None and not diff.live and not diff.restart


def test_sensors_added_removed_and_changed():
    text = BASE.replace('name = "cellar"', 'name = "attic"').replace("interval = 5.0", "interval = 2.0")
    diff = diff_configs(config(), config(text))
    assert [s.name for s in diff.added] == ["attic"]
    assert [s.name for s in diff.removed] == ["cellar"]
    assert [(old.interval, new.interval) for old, new in diff.changed] == [(5.0, 2.0)]
    assert diff.unchanged == []


def test_a_disabled_sensor_counts_as_removed_and_enabling_it_as_added():
    disabled = BASE.replace('metrics = ["pressure"]', 'metrics = ["pressure"]\nenabled = false')
    assert [s.name for s in diff_configs(config(), config(disabled)).removed] == ["cellar"]
    assert [s.name for s in diff_configs(config(disabled), config()).added] == ["cellar"]


def test_the_order_of_the_tables_is_no_change():
    first, second = BASE.split("[[sensors]]")[1:]
    swapped = BASE.split("[[sensors]]")[0] + "[[sensors]]" + second + "\n[[sensors]]" + first
    diff = diff_configs(config(), config(swapped))
    assert not diff.sensors_changed


def test_every_metric_setting_is_a_change_and_named():
    settings = {"name": '"air temperature"', "drop": "true", "scale": "1.5", "offset": "-0.4", "round": "1",
                "threshold": "0.5"}
    for key, value in settings.items():
        text = BASE.replace('metrics = ["temperature", "humidity"]',
                            f'metrics = ["temperature", "humidity"]\n[sensors.metric.temperature]\n{key} = {value}')
        diff = diff_configs(config(), config(text))
        assert [new.name for _, new in diff.changed] == ["greenhouse"], key
        assert what_changed(*diff.changed[0]) == [f"metric.temperature.{key}"]


def test_driver_options_and_quantities_are_a_change():
    text = BASE.replace('metrics = ["pressure"]', 'metrics = ["pressure", "temperature"]\nseed = 3')
    [(old, new)] = diff_configs(config(), config(text)).changed
    assert what_changed(old, new) == ["options"]


def test_every_field_of_the_sensor_dataclasses_is_compared():
    """The diff is over whole dataclass values, so a field added to them later is covered too."""
    running = config()
    greenhouse = running.sensors[0]
    metric = greenhouse.metrics["temperature"]
    for f in dataclasses.fields(metric):
        if f.name == "quantity":
            continue
        other = dataclasses.replace(metric, **{f.name: _different(getattr(metric, f.name))})
        changed = dataclasses.replace(greenhouse, metrics={**greenhouse.metrics, "temperature": other})
        new = dataclasses.replace(running, sensors=[changed, running.sensors[1]])
        assert [n.name for _, n in diff_configs(running, new).changed] == ["greenhouse"], f.name
    for f in dataclasses.fields(greenhouse):
        if f.name in ("name", "enabled"):
            continue
        changed = dataclasses.replace(greenhouse, **{f.name: _different(getattr(greenhouse, f.name))})
        new = dataclasses.replace(running, sensors=[changed, running.sensors[1]])
        assert [n.name for _, n in diff_configs(running, new).changed] == ["greenhouse"], f.name


def _different(value):
    """Some other value of the same kind, whatever the field holds (an unknown kind: a stranger)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, dict):
        return {**value, "extra": 1}
    if isinstance(value, (tuple, list)):
        return type(value)([*value, object()])
    return object()


def test_log_level():
    diff = diff_configs(config(), config(BASE.replace('level = "info"', 'level = "debug"')))
    assert diff.log_level == "debug"


def test_agent_and_storage_keys_that_need_a_restart_are_named_and_kept():
    text = BASE.replace('host = "localhost"', 'host = "10.0.0.2"\napi_port = 1884\nclient_name = "pi2"'
                        '\nca_file = "/tmp/ca.crt"\nprovision_port = 1883')
    text = text.replace('dir = "/var/lib/pibridge"', 'dir = "/srv/pibridge"')
    running, new = config(), config(text)
    diff = diff_configs(running, new)
    assert sorted(r.key for r in diff.restart) == [
        "[agent] api_port", "[agent] ca_file", "[agent] client_name", "[agent] host", "[agent] provision_port",
        "[storage] dir"]
    host = next(r for r in diff.restart if r.key == "[agent] host")
    assert host.describe() == "[agent] host = '10.0.0.2' (running with 'localhost')"
    assert not diff.live
    after = running_config(running, new)
    assert after.agent == running.agent and after.storage == running.storage


def test_live_storage_and_agent_keys_apply():
    text = BASE.replace('dir = "/var/lib/pibridge"', 'dir = "/var/lib/pibridge"\nack_window = 0.5\n'
                        'outbox_max_bytes = "2 MiB"\noutbox_max_age = "never"\ncommit_interval = 3.0')
    text = text.replace('host = "localhost"', 'host = "localhost"\nreprovision = true\ntimeout = 4.0')
    running, new = config(), config(text)
    diff = diff_configs(running, new)
    assert diff.live == {("storage", "ack_window"): 0.5, ("storage", "outbox_max_bytes"): 2 * 2**20,
                         ("storage", "outbox_max_age"): None, ("storage", "commit_interval"): 3.0,
                         ("agent", "reprovision"): True}
    assert [r.key for r in diff.restart] == ["[agent] timeout"]
    after = running_config(running, new)
    assert after.agent.reprovision is True and after.agent.timeout == running.agent.timeout
    assert after.storage.ack_window == 0.5 and after.storage.outbox_max_age is None
    assert set(LIVE_KEYS) == {"agent", "storage"}


def _stored(rig) -> dict[str, list[int]]:
    names = {s["sensor_id"]: s["name"] for s in rig.sim.store.sensors(rig.client.client_id)}
    out = collections.defaultdict(list)
    for row in rig.sim.store.values(rig.client.client_id):
        out[names[row["sensor_id"]]].append(row["timestamp_ms"])
    return out


def _submit(rig, sensor, count):
    stamps = []
    for _ in range(count):
        rig.next_ts += 10
        stamps.append(rig.next_ts)
        rig.delivery.submit(Reading(sensor, rig.next_ts, {"temperature": 20.0}))
    return stamps


def test_a_reroute_takes_a_new_sensor_on_the_open_connection_without_sending_anything_twice(rig_factory):
    rig = rig_factory(confirm=True)
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    before = _submit(rig, "a", 40)
    reconcile(rig.client, rig.registry, [("c", {"temperature": UNITS["°C"].definition("temperature")})])
    rig.delivery.reroute(rig.registry.routes())
    added = _submit(rig, "c", 40)
    after = _submit(rig, "a", 40)
    wait_for(lambda: len(_stored(rig)["a"]) >= 80 and len(_stored(rig)["c"]) >= 40, 10, "every reading")
    stored = _stored(rig)
    assert stored["a"] == before + after and stored["c"] == added  # once each, in order
    assert rig.delivery.mode is LIVE and rig.delivery.spilled == 0 and rig.delivery.unroutable == 0
    assert rig.outbox.stats().depth == 0


def test_held_sensors_wait_in_the_outbox_until_the_next_attach(rig_factory):
    rig = rig_factory()
    wait_for(lambda: rig.delivery.mode is LIVE, 5, "live mode")
    rig.delivery.reroute(rig.registry.routes(), hold={"b"})
    held = _submit(rig, "b", 20)
    live = _submit(rig, "a", 20)
    wait_for(lambda: len(_stored(rig)["a"]) == 20, 10, "sensor a delivered")
    wait_for(lambda: rig.outbox.stats().depth == 20, 5, "sensor b kept in the outbox")
    # Another reroute does not release it: only a full set-up (attach) does.
    rig.delivery.reroute(rig.registry.routes())
    more = _submit(rig, "b", 5)
    wait_for(lambda: rig.outbox.stats().depth == 25, 5, "sensor b still kept")
    assert _stored(rig)["b"] == [] and _stored(rig)["a"] == live
    rig.delivery.attach(rig.client, rig.registry.routes())
    wait_for(lambda: len(_stored(rig)["b"]) == 25, 10, "sensor b delivered after the attach")
    assert _stored(rig)["b"] == held + more
    assert rig.delivery.unroutable == 0


def test_an_in_process_reload_replaces_only_what_changed_and_keeps_the_peers_look_up(tmp_path, monkeypatch):
    """A Bridge without an agent: the re-timed sensor gets a new reader, the sensor compensating with
    its values keeps its own reader and thread and still finds it; a removed one is gone from the look-up."""
    from pibridge import drivers
    from pibridge.bridge.config import load_config
    from pibridge.bridge.daemon import Bridge
    from test_peers import RecordingGasSensor
    from tests.support.waiting import wait_until

    drivers.available()
    monkeypatch.setitem(drivers._registry, RecordingGasSensor.name, RecordingGasSensor)
    path = tmp_path / "config.toml"

    def write(climate_interval: float, spare: bool) -> None:
        text = (f'[storage]\ndir = "{tmp_path / "storage"}"\n\n[[sensors]]\nname = "climate"\ndriver = "mock"\n'
                f'interval = {climate_interval}\nmetrics = ["temperature", "humidity"]\nseed = 7\n\n'
                '[[sensors]]\nname = "gas"\ndriver = "test-gas"\ninterval = 0.1\ncompensate_from = "climate"\n')
        if spare:
            text += '\n[[sensors]]\nname = "spare"\ndriver = "mock"\ninterval = 0.1\n'
        path.write_text(text)

    write(0.1, spare=True)
    bridge = Bridge(load_config(path))
    bridge.start()
    try:
        readers = {r.name: r for r in bridge.readers}
        wait_until(lambda: readers["climate"].health.reads and bridge.latest("spare"), 10, "first reads")
        write(0.2, spare=False)
        assert bridge.reload()
        after = {r.name: r for r in bridge.readers}
        assert sorted(after) == ["climate", "gas"]
        assert after["gas"] is readers["gas"] and not after["gas"].ended  # never stopped, its device still open
        assert after["climate"] is not readers["climate"] and readers["climate"].ended  # closed when it stopped
        assert after["climate"] is not readers["climate"] and after["climate"].interval == 0.2
        assert after["climate"].health.reads >= readers["climate"].health.reads > 0  # counts carry on
        assert bridge.latest("spare") is None
        seen = len(readers["gas"].driver.seen)
        reads = after["climate"].health.reads
        wait_until(lambda: after["climate"].health.reads > reads and len(readers["gas"].driver.seen) > seen + 2,
                   10, "both sensors reading after the reload")
        assert bridge.latest("climate") is not None
        assert all(s != {"temperature": 25.0, "humidity": 50.0} for s in readers["gas"].driver.seen[seen:])
    finally:
        bridge.close()
