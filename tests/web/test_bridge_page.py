"""The daemon's page against a real simulator: JSON API, /healthz, /metrics checked against what the agent stored,
and bad clients that never get in the way of delivery."""

from __future__ import annotations

import socket
import threading

import pytest

from prometheus_client.parser import text_string_to_metric_families

from pibridge.bridge.status import collect
from pibridge.web.server import MAX_HEAD
from tests.support.waiting import wait_until


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_status_is_what_pibridge_status_json_prints_and_sensors_carry_units(bridge_page):
    page = bridge_page()
    status = page.json("/api/status")
    page.bridge.write_state()
    from_files = collect(page.bridge.storage)
    assert status.keys() == from_files.keys()
    assert status["state"].keys() >= from_files["state"].keys()
    assert status["outbox"].keys() >= from_files["outbox"].keys()
    assert status["running"] is True
    assert status["state"]["client_id"] == page.bridge.client_id
    assert status["state"]["agent"]["connected"] is True

    wait_until(lambda: all(m["last_value"] is not None for s in page.json("/api/sensors") for m in s["metrics"]),
               what="a value of every metric")
    sensors = {s["name"]: s for s in page.json("/api/sensors")}
    assert list(sensors) == ["greenhouse", "door"]
    greenhouse = {m["name"]: m for m in sensors["greenhouse"]["metrics"]}
    assert greenhouse["temperature"]["unit"] == "°C"
    assert greenhouse["temperature"]["value_unit"] == "SI.Temperature.CELSIUS"
    assert greenhouse["humidity"]["unit"] == "%"
    assert sensors["door"]["metrics"][0]["value_type"] == "bool"
    assert isinstance(sensors["door"]["metrics"][0]["last_value"], bool)
    assert sensors["greenhouse"]["online"] is True and sensors["greenhouse"]["reads"] > 0


def test_history_returns_only_newer_points(bridge_page):
    page = bridge_page()
    first = page.json("/api/history?after=0")
    assert first["window_s"] == 3600
    assert first["points"]["greenhouse"]["temperature"]
    wait_until(lambda: page.json(f"/api/history?after={first['sequence']}")["points"], what="new points")
    later = page.json(f"/api/history?after={first['sequence']}")
    newest_before = first["points"]["greenhouse"]["temperature"][-1][0]
    assert all(ts > newest_before for ts, _ in later["points"].get("greenhouse", {}).get("temperature", []))
    assert page.get("/api/history?after=x")[0] == 400


def test_healthz_follows_the_agent(bridge_page):
    page = bridge_page()
    assert page.get("/healthz")[:2] == (200, b"ok\n")
    page.sim.stop_broker()
    wait_until(lambda: page.get("/healthz")[0] == 503, what="/healthz 503")
    assert b"agent not connected" in page.get("/healthz")[1]
    page.sim.start_broker()
    wait_until(lambda: page.get("/healthz")[0] == 200, timeout=20, what="/healthz 200 again")


def test_metrics_counters_match_what_the_simulator_stored(bridge_page):
    page = bridge_page()
    bridge = page.bridge
    wait_until(lambda: bridge.delivery.delivered >= 10, what="10 readings delivered")
    for reader in bridge.readers:  # no new readings: the counters can settle
        reader.stop()
    for reader in bridge.readers:
        reader.join(5)
    wait_until(lambda: bridge.outbox.stats().depth == 0 and bridge.delivery.in_flight == 0
               and page.stored_readings() == bridge.delivery.delivered, timeout=15,
               what="every reading delivered and stored")
    metrics = samples(page.get("/metrics")[1].decode())
    store = page.sim.store
    client = bridge.client_id
    readings, _ = store.received(client)
    assert metrics[("pibridge_readings_pushed_total", ())] == readings
    assert metrics[("pibridge_agent_connected", ())] == 1
    assert metrics[("pibridge_outbox_readings", ())] == 0
    assert metrics[("pibridge_readings_dropped_total", (("cause", "max_bytes"),))] == 0
    routes = bridge.registry.routes()
    for reader in bridge.readers:
        sensor_id = routes[reader.name].sensor_id
        stored_rows = store.values(client, sensor_id)
        stored_readings = len({row["timestamp_ms"] for row in stored_rows})
        assert metrics[("pibridge_readings_read_total", (("sensor", reader.name),))] == stored_readings
        assert metrics[("pibridge_sensor_read_errors_total", (("sensor", reader.name),))] == 0
    temperature_id = routes["greenhouse"].metric_ids["temperature"]
    stored_last = store.metric(client, routes["greenhouse"].sensor_id, temperature_id)["last_value"]
    assert metrics[("pibridge_sensor_celsius", (("metric", "temperature"), ("sensor", "greenhouse")))] == stored_last
    humidity_id = routes["greenhouse"].metric_ids["humidity"]
    stored_humidity = store.metric(client, routes["greenhouse"].sensor_id, humidity_id)["last_value"]
    assert metrics[("pibridge_sensor_ratio", (("metric", "humidity"), ("sensor", "greenhouse")))] == \
        pytest.approx(stored_humidity / 100, rel=1e-12)
    assert metrics[("process_resident_memory_bytes", ())] > 1_000_000


def test_bad_clients_never_disturb_delivery(bridge_page):
    page = bridge_page(max_connections=4)
    bridge = page.bridge
    port = int(page.url.rsplit(":", 1)[1].strip("/"))
    before = page.stored_readings()
    # Three of the four slots held by slowloris clients, and a stream of oversized and wrong requests.
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    for s in held:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
    answers = []

    def flood():
        for request in [b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (4 * MAX_HEAD) + b"\r\n\r\n",
                        b"POST /api/status HTTP/1.0\r\n\r\n", b"GET /../../etc/passwd HTTP/1.0\r\n\r\n"] * 20:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(request)
                    answers.append(s.recv(64))
            except OSError as exc:
                answers.append(repr(exc).encode())

    flooders = [threading.Thread(target=flood) for _ in range(3)]
    for t in flooders:
        t.start()
    try:
        wait_until(lambda: page.stored_readings() >= before + 20, timeout=15,
                   what="20 more readings stored while the page is under attack")
        for t in flooders:
            t.join(30)
        assert bridge.connected and bridge.delivery.mode == "live"
        assert bridge.outbox.stats().dropped == 0
        codes = {int(a.split(b" ")[1]) if a.startswith(b"HTTP/1.0 ") else a for a in answers}
        assert len(answers) == 180 and codes <= {431, 405, 404, 503}, codes
        assert codes & {431, 405, 404}, "no bad request reached the handler"
    finally:
        for s in held:
            s.close()
    # Once the slow clients are gone the page answers again.
    wait_until(lambda: page.get("/healthz")[0] == 200, what="the page answers again")
    assert page.get("/nothing")[0] == 404
    status, body, headers = page.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_a_taken_port_is_logged_and_the_bridge_delivers_without_its_page(sim, tmp_path, caplog):
    from pibridge.bridge.config import parse_config
    from pibridge.bridge.daemon import Bridge

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = (f'[agent]\nhost = "127.0.0.1"\nprovision_port = {sim.provision_port}\napi_port = {sim.api_port}\n'
                f'ca_file = "{sim.ca_file}"\n\n[storage]\ndir = "{tmp_path}"\n\n'
                f'[http]\nlisten = "127.0.0.1:{port}"\n\n'
                '[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = 0.25\nmetrics = ["temperature"]\n')
        bridge = Bridge(parse_config(text))
        stop = threading.Event()
        bridge.start()
        thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_until(lambda: bridge.delivery.delivered >= 3, timeout=20, what="readings delivered")
            assert bridge.page.url is None
            assert any(f"cannot listen on 127.0.0.1:{port}" in r.getMessage() and r.levelname == "ERROR"
                       for r in caplog.records)
        finally:
            stop.set()
            bridge.wake()
            thread.join(10)
            bridge.close()


def test_the_page_tells_the_truth_before_the_agent_was_ever_reached(tmp_path):
    """No agent at all (nothing listens): the page still answers, and says so."""
    import json
    import urllib.error
    import urllib.request

    from pibridge.bridge.config import parse_config
    from pibridge.bridge.daemon import Bridge
    from tests.support.sim import free_port

    (tmp_path / "ca.crt").write_text("not needed: nothing answers\n")
    port = free_port()
    text = (f'[agent]\nhost = "127.0.0.1"\nprovision_port = {free_port()}\napi_port = {free_port()}\n'
            f'ca_file = "{tmp_path / "ca.crt"}"\n\n[storage]\ndir = "{tmp_path / "storage"}"\n\n'
            f'[http]\nlisten = "127.0.0.1:{port}"\n\n'
            '[[sensors]]\nname = "greenhouse"\ndriver = "mock"\ninterval = 0.25\nmetrics = ["temperature"]\n')
    bridge = Bridge(parse_config(text))
    stop = threading.Event()
    bridge.start()
    thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def get(path):
        try:
            with urllib.request.urlopen(base + path, timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    try:
        wait_until(lambda: json.loads(get("/api/status")[1])["outbox"]["depth"] >= 3, timeout=20,
                   what="readings waiting in the outbox")
        state = json.loads(get("/api/status")[1])["state"]
        assert state["client_id"] is None and state["agent"]["connected"] is False
        assert state["agent"]["problem"] and "certificate" in state["agent"]["problem"]
        status, body = get("/healthz")
        assert status == 503 and body.startswith(b"agent not connected: cannot get a client certificate")
        metrics = samples(get("/metrics")[1].decode())
        assert metrics[("pibridge_agent_connected", ())] == 0
        assert metrics[("pibridge_outbox_readings", ())] >= 3
        assert metrics[("pibridge_readings_pushed_total", ())] == 0
        assert json.loads(get("/api/sensors")[1])[0]["metrics"][0]["last_value"] is not None
    finally:
        stop.set()
        bridge.wake()
        thread.join(10)
        bridge.close()
