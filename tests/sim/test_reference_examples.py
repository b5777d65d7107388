"""The Mosquitto command-line examples of the API reference, run as subprocesses against the simulator.

Each example is the reference's ``mosquitto_pub`` / ``mosquitto_sub`` line
with the simulator's port and CA instead of 18883/18884 and
TeamViewerAuthority.crt, and the IDs the simulator handed out instead of the
reference's.  The answers are the reference's documented "Success Response"s,
in every dialect of the simulator; plain answers are JSON strings (as the
reference prints them) or bare text, as the simulator is told.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading

import pytest

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("mosquitto_pub", "mosquitto_sub", "openssl", "stdbuf")),
    reason="needs mosquitto_pub, mosquitto_sub (apt install mosquitto-clients), openssl and stdbuf")


#: mosquitto_sub's debug lines must reach us as they happen, not when its stdout buffer fills.
_LINE_BUFFERED = ["stdbuf", "-oL"]


class Cli:
    """Runs the reference's command lines in one working directory (csr.pem, privkey.pem, clientCert.crt)."""

    def __init__(self, sim, workdir):
        self.sim = sim
        self.cwd = workdir

    def tls(self, with_cert: bool) -> list[str]:
        args = ["--cafile", str(self.sim.ca_file)]
        if with_cert:
            args = ["--cert", "clientCert.crt", "--key", "privkey.pem"] + args
        return args

    def sub_then_pub(self, port: int, sub_topic: str, pub: list[str], with_cert: bool = True) -> bytes:
        """Start ``mosquitto_sub -t sub_topic``, wait for its SUBACK, run ``mosquitto_pub``, return the message."""
        sub = subprocess.Popen(
            [*_LINE_BUFFERED, "mosquitto_sub", "-h", "localhost", "-p", str(port), *self.tls(with_cert), "-t", sub_topic,
             "-C", "1", "-W", "10", "-d"],
            cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines: list[bytes] = []
        subscribed = threading.Event()

        def read():
            for line in sub.stdout:
                lines.append(line)
                if b"received SUBACK" in line:
                    subscribed.set()
            subscribed.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert subscribed.wait(10) and sub.poll() is None, b"".join(lines) + sub.stderr.read()
        self.pub(port, pub, with_cert)
        sub.wait(15)
        reader.join(5)
        return _payload(lines)

    def pub(self, port: int, args: list[str], with_cert: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), *self.tls(with_cert), *args],
                              cwd=self.cwd, capture_output=True, timeout=15)
        return done


def _payload(debug_lines: list[bytes]) -> bytes:
    """The message body from ``mosquitto_sub -d`` output: the lines after 'received PUBLISH', before DISCONNECT."""
    start = next(i for i, line in enumerate(debug_lines) if b"received PUBLISH" in line) + 1
    body = []
    for line in debug_lines[start:]:
        if line.startswith(b"Client ") and b"sending DISCONNECT" in line:
            break
        body.append(line)
    return b"".join(body).rstrip(b"\n")


@pytest.mark.parametrize("dialect, text_answers", [
    ("reference", "json"), ("reference", "bare"), ("vendor", "json"), ("both", "bare")])
def test_the_reference_examples_get_the_documented_answers(sim_factory, tmp_path, dialect, text_answers):
    sim = sim_factory(dialect=dialect, text_answers=text_answers)
    cli = Cli(sim, tmp_path)
    prov, api = sim.provision_port, sim.api_port

    # 4.1 step 1: a CSR (the reference's openssl line, with the subject given instead of prompted).
    subprocess.run(["openssl", "req", "-nodes", "-new", "-newkey", "rsa:2048", "-sha256", "-out", "csr.pem",
                    "-keyout", "privkey.pem", "-subj", "/C=DE/O=Example/CN=cli-client"],
                   cwd=tmp_path, check=True, capture_output=True)
    digest = subprocess.run(["openssl", "dgst", "-sha256", "csr.pem"], cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout.split("= ")[-1].strip()
    # 4.1 step 2: publish the CSR on the provisioning port, read the certificate from /certBack/<hash>.
    cert = cli.sub_then_pub(prov, f"/certBack/{digest}", ["-t", "/v1.0/createClient", "-f", "csr.pem"],
                            with_cert=False)
    assert cert.startswith(b"-----BEGIN CERTIFICATE-----") and cert.endswith(b"-----END CERTIFICATE-----")
    (tmp_path / "clientCert.crt").write_bytes(cert + b"\n")
    # 4.1 step 3: the reference's pipeline that extracts the client ID.
    client_id = subprocess.run(
        "openssl x509 -noout -subject -in clientCert.crt -nameopt multiline | grep commonName "
        "| sed -r 's/commonName/ /g' | sed -r 's/=/ /g' | xargs | tr -d \" \\t\\n\\r\"",
        shell=True, cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert re.fullmatch(r"[0-9a-f]{32}", client_id), client_id
    base = f"/v1.0/{client_id}"

    def call(sub_topic: str, pub_topic: str, message: str):
        raw = cli.sub_then_pub(api, base + sub_topic, ["-t", base + pub_topic, "-m", message])
        if text_answers == "bare" and not raw.startswith((b"{", b"[")):
            return raw.decode()
        return json.loads(raw)

    # 4.2 ping
    assert call("/ping/info/inbox", "/ping", '{ "request" : "Some Message" }') == {"answer": "Some Message"}
    # 4.3 update
    assert call("/update/info/inbox", "/update", '{ "name" : "New client name" }') == \
        "Client name was successfully updated."
    # 5.2.1 sensor create
    created = call("/sensor/inbox", "/sensor/create", '{ "name" : "SensorName" }')
    assert created["name"] == "SensorName" and re.fullmatch(r"[0-9a-f]{32}", created["sensorId"])
    sensor = created["sensorId"]
    # 5.3.1 metric create
    metrics = call(f"/sensor/{sensor}/metric/inbox", f"/sensor/{sensor}/metric/create",
                   '{"metrics" : [{"matchingId" : "1", "valueUnit": "NoSI.Dimensionless.PERCENT",  "name" : '
                   '"CPUUsage" },{"matchingId" : "2","valueUnit": "NoSI.Dimensionless.PERCENT", "name" :"CPUIdle" }, '
                   '{"matchingId" : "3", "valueType" : "integer" , "valueAnnotation": "goods per minute", '
                   '"name" : "ShopFloor1"}]}')
    assert [m["matchingId"] for m in metrics] == ["1", "2", "3"]
    usage, idle, shop = (m["metricId"] for m in metrics)
    # 5.2.2 list
    listing = call("/inventory/inbox", "/sensor/list", "{}")
    assert listing == [{"metrics": [{"link": f"{base}/sensor/{sensor}/metric/{m}/inventory", "metricId": m}
                                    for m in (usage, idle, shop)],
                        "name": "SensorName", "sensorId": sensor, "store": True}]
    # 5.3.2 describe (the example publishes to .../describe and listens on .../inventory/inbox)
    described = call(f"/sensor/{sensor}/metric/{usage}/inventory/inbox", f"/sensor/{sensor}/metric/{usage}/describe",
                     "{}")
    assert described == {"lastUpdated": 9223372036854775, "metricId": usage, "name": "CPUUsage", "value": 0.0,
                         "valueUnit": "NoSI.Dimensionless.PERCENT"}
    # 5.3.3 metric update
    assert call(f"/sensor/{sensor}/metric/update/info/inbox", f"/sensor/{sensor}/metric/update",
                '{ "metrics": [ {"metricId" : "' + shop + '", "name" : "metric new name", '
                '"valueAnnotation": "new description of measurement" } ] }') == \
        "All metrics were successfully modified."
    # 5.1 push (to the example's sensor "weather", which does not exist yet)
    assert call("/sensor/weather/info/inbox", "/sensor/weather/metric/pushValues",
                '{ "metrics": [ {"value" : 21.5, "metricId" : "temp" }, {"value" : 21.5, "metricId" : "humidity" } ]'
                ' , "timestamp": 1590394246545}') == "Sensor was updated."
    assert [(v["sensor_id"], v["metric_id"], v["value"], v["timestamp_ms"]) for v in sim.store.values(client_id)] == \
        [("weather", "temp", 21.5, 1590394246545), ("weather", "humidity", 21.5, 1590394246545)]
    # 5.3.4 metric delete
    assert call(f"/sensor/{sensor}/metric/delete/info/inbox", f"/sensor/{sensor}/metric/delete",
                '{"metrics": [{"metricId" : "' + usage + '" },{"metricId" : "' + idle + '" }] }') == \
        "All metrics were successfully deleted."
    # 5.2.3 sensor update
    assert call(f"/sensor/{sensor}/update/info/inbox", f"/sensor/{sensor}/update", '{ "name" : "SensorName" }') == \
        "Sensor was changed."
    # 5.2.4 sensor delete
    assert call(f"/sensor/{sensor}/delete/info/inbox", f"/sensor/{sensor}/delete", "{}") == "Sensor was deleted."
    assert [s["sensor_id"] for s in sim.store.sensors(client_id)] == ["weather"]
    # 4.4 delete: no answer; afterwards the certificate no longer gets a connection.
    assert cli.pub(api, ["-t", f"{base}/delete", "-m", "{}"]).returncode == 0
    refused = None
    for _ in range(50):
        refused = cli.pub(api, ["-t", f"{base}/ping", "-m", "{}"])
        if refused.returncode != 0:
            break
    assert refused.returncode != 0, "a deleted client's certificate must be refused"
    assert not sim.store.is_active(client_id)
