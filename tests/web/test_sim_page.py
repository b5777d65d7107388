"""The simulator's page: what the agent stored, by API and /metrics; `pibridge sim --http` as a real process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from pibridge.web.server import WebServer
from pibridge.web.sim_view import SimView
from tests.bridge.daemon_support import env
from tests.support.sim import free_port
from tests.support.waiting import wait_until


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post(url: str, headers: dict) -> int:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_values_metrics_and_the_cut_match_the_store(bridge_page):
    running = bridge_page()
    web = WebServer(SimView(running.sim, cut_seconds=60), "127.0.0.1", 0).start()
    try:
        base = web.url.rstrip("/")
        wait_until(lambda: running.stored_readings() >= 5, what="5 readings stored")
        agent = json.loads(get(base + "/api/agent")[1])
        client = next(c for c in agent["clients"] if c["client_id"] == running.bridge.client_id)
        sensors = {s["name"]: s for s in client["sensors"]}
        assert {m["name"]: m["unit"] for m in sensors["greenhouse"]["metrics"]} == {"temperature": "°C",
                                                                                    "humidity": "%"}
        newest = json.loads(get(base + "/api/values")[1])
        assert newest["values"] and not newest["more"]
        ids = [v[0] for v in newest["values"]]
        assert ids == sorted(ids)
        later = json.loads(get(f"{base}/api/values?after={ids[-2]}")[1])
        assert later["values"][0][0] == ids[-1]
        assert get(base + "/api/values?after=soon")[0] == 400

        running.bridge.readers[0].stop()
        running.bridge.readers[1].stop()
        for reader in running.bridge.readers:
            reader.join(5)
        store = running.sim.store
        wait_until(lambda: running.bridge.outbox.stats().depth == 0 and running.bridge.delivery.in_flight == 0,
                   what="everything delivered")
        counts = {(r["sensor_id"], r["metric_id"]): r["count"] for r in store.value_counts()}
        scraped = {}
        for family in text_string_to_metric_families(get(base + "/metrics")[1].decode()):
            for s in family.samples:
                if s.name == "pibridge_sim_values_received_total":
                    scraped[(s.labels["sensor_id"], s.labels["metric_id"])] = s.value
        assert scraped == counts
        assert sum(scraped.values()) == len(store.values(running.bridge.client_id))

        assert get(base + "/healthz")[0] == 200
        assert post(base + "/api/cut-agent", {}) == 403
        assert running.sim.broker_running
        assert post(base + "/api/cut-agent", {"X-Pibridge": "1"}) == 200
        wait_until(lambda: not running.sim.broker_running, what="the broker to stop")
        assert post(base + "/api/cut-agent", {"X-Pibridge": "1"}) == 409
        wait_until(lambda: get(base + "/healthz")[0] == 503, what="/healthz 503")
        running.sim.start_broker()
    finally:
        web.stop()


def test_pibridge_sim_http_serves_the_page_until_sigterm(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pibridge.cli", "sim", "--state-dir", str(tmp_path), "--provision-port",
         str(free_port()), "--api-port", str(free_port()), "--http", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        for line in proc.stdout:
            if "page of what the agent received at" in line:
                break
        assert line.strip().endswith(f"http://127.0.0.1:{port}/"), line
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"What the agent received" in page
        wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, what="/healthz 200")
        assert json.loads(get(f"http://127.0.0.1:{port}/api/agent")[1])["clients"] == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_http_address_is_refused_by_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pibridge.cli", "sim", "--state-dir", str(tmp_path),
                             "--http", "8089"], capture_output=True, text=True, env=env(), timeout=30)
    assert result.returncode == 2
    assert "--http: '8089' is not host:port" in result.stderr
