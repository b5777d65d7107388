"""Who may do what: ACL isolation between clients, the provisioning listener's limits, and revocation."""

from __future__ import annotations

import socket
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from pibridge.sim.broker import AGENT_USER
from pibridge.sim.pki import Authority
from pibridge.sim.simulator import certificate_names
from tests.support.mqtt_client import Mqtt, make_key, provision


def test_a_client_cannot_read_another_clients_topics(shared_sim, client_factory):
    alice, bob = client_factory(shared_sim, "alice"), client_factory(shared_sim, "bob")
    bob.mqtt.subscribe(f"{alice.base}/#", "/v1.0/+/#", "#")
    sensor = alice.create_sensor("kitchen")
    kind, _ = alice.push(sensor, {"temp": 21.5})
    assert kind == "answer"
    assert alice.mqtt.count(f"{alice.base}/sensor/{sensor}/livedata") == 1
    # Bob's wildcard subscriptions saw nothing of Alice's answers or live data.
    assert bob.mqtt.quiet(f"{alice.base}/#", 0.3)
    assert not any(t.startswith(alice.base) for t in bob.mqtt.messages)


def test_a_client_cannot_act_for_another_client(shared_sim, client_factory):
    alice, bob = client_factory(shared_sim, "alice"), client_factory(shared_sim, "bob")
    bob.mqtt.publish(f"{alice.base}/sensor/create", {"name": "planted by bob"})
    bob.mqtt.publish(f"{alice.base}/sensor/intruder/metric/pushValues", {"metrics": [{"metricId": "x", "value": 1}]})
    bob.mqtt.publish(f"{alice.base}/delete", {})
    # Bob's own next request is answered, so the broker has long handled his earlier ones.
    kind, _ = bob.call("/ping", {"request": "after"}, "/ping/info/inbox", "/ping/error/inbox")
    assert kind == "answer"
    assert shared_sim.store.sensors(alice.id) == []
    assert shared_sim.store.values(alice.id) == []
    assert shared_sim.store.is_active(alice.id)


def test_an_anonymous_provisioning_client_sees_only_certificate_answers(shared_sim, client, tmp_path):
    snoop = Mqtt(shared_sim.host, shared_sim.provision_port, shared_sim.ca_file).connect()
    try:
        snoop.subscribe("#", "/v1.0/#")
        snoop.publish(f"{client.base}/sensor/create", {"name": "anonymous"})
        kind, _ = client.call("/sensor/create", {"name": "mine"}, "/sensor/inbox", "/sensor/error/inbox")
        assert kind == "answer"
        assert snoop.quiet("/v1.0/#", 0.3)
        assert snoop.messages == {}
        assert [s["name"] for s in shared_sim.store.sensors(client.id)] == ["mine"]
    finally:
        snoop.close()


def test_the_api_port_needs_a_client_certificate(shared_sim):
    anonymous = Mqtt(shared_sim.host, shared_sim.api_port, shared_sim.ca_file)
    with pytest.raises(Exception):
        anonymous.connect(timeout=2)


def test_a_certificate_from_another_authority_is_refused(shared_sim, tmp_path):
    stranger = Authority(tmp_path / "other-ca")
    stranger.ensure([])
    key = make_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])).sign(key, hashes.SHA256())
    signed = stranger.sign_csr(csr.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "s.crt").write_bytes(signed.certificate_pem)
    (tmp_path / "s.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    with pytest.raises(Exception):
        Mqtt(shared_sim.host, shared_sim.api_port, shared_sim.ca_file, tmp_path / "s.crt", tmp_path / "s.key").connect(2)


def test_the_signed_certificate_names_the_new_client_id_and_keeps_the_rest(shared_sim, tmp_path):
    ident = provision(shared_sim.host, shared_sim.provision_port, shared_sim.ca_file, tmp_path, "kitchen-pi")
    cert = x509.load_pem_x509_certificate(ident.cert.read_bytes())
    assert len(ident.client_id) == 32 and int(ident.client_id, 16) >= 0
    assert ident.client_id != "kitchen-pi"
    ca = x509.load_pem_x509_certificate(shared_sim.ca_file.read_bytes())
    assert cert.issuer == ca.subject
    assert {"client_id": ident.client_id, "name": "kitchen-pi", "revoked": False}.items() <= \
        next(c for c in shared_sim.store.clients() if c["client_id"] == ident.client_id).items()


# -- revocation (section 4.4: "The client authorization certificate will be invalid after this call.") ----


def _can_connect(sim, identity) -> bool:
    probe = Mqtt(sim.host, sim.api_port, sim.ca_file, identity.cert, identity.key)
    try:
        probe.connect(timeout=2)
    except Exception:
        return False
    probe.close()
    return True


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_deleted_client_can_neither_connect_nor_act(sim, client_factory):
    doomed, other = client_factory(sim, "doomed"), client_factory(sim, "other")
    sensor = doomed.create_sensor("s")
    doomed.push(sensor, {"m": 1.0})
    doomed.mqtt.publish(f"{doomed.base}/delete", {})
    assert _wait_until(lambda: not sim.store.is_active(doomed.id), 5)
    assert sim.store.sensors(doomed.id) == []
    assert len(sim.store.values(doomed.id)) == 1, "what arrived stays on record"
    # A new TLS session is refused (the CRL, re-read on SIGHUP) ...
    assert _wait_until(lambda: not _can_connect(sim, doomed.identity), 5)
    # ... and the connection it still had can do nothing: no answer, nothing stored.
    doomed.mqtt.publish(f"{doomed.base}/sensor/create", {"name": "zombie"})
    doomed.mqtt.publish(f"{doomed.base}/sensor/{sensor}/metric/pushValues", {"metrics": [{"metricId": "m", "value": 2}]})
    kind, _ = other.call("/ping", {"request": "still here"}, "/ping/info/inbox", "/ping/error/inbox")
    assert kind == "answer"
    assert doomed.mqtt.quiet(f"{doomed.base}/#", 0.3)
    assert sim.store.sensors(doomed.id) == [] and len(sim.store.values(doomed.id)) == 1
    # Other clients are untouched.
    assert _can_connect(sim, other.identity)


def test_revocation_survives_a_restart(sim_factory, client_factory, tmp_path):
    state = tmp_path / "state"
    first = sim_factory(state)
    doomed = client_factory(first, "doomed")
    doomed.mqtt.publish(f"{doomed.base}/delete", {})
    assert _wait_until(lambda: not first.store.is_active(doomed.id), 5)
    doomed.close()
    first.stop()
    second = sim_factory(state)
    assert not _can_connect(second, doomed.identity)
    assert [c["revoked"] for c in second.store.clients()] == [True]


@pytest.mark.parametrize("who", ["client", "agent"])
def test_no_one_can_log_in_as_a_client_or_the_agent_on_the_provisioning_port(shared_sim, client, who):
    username = client.id if who == "client" else AGENT_USER
    impostor = Mqtt(shared_sim.host, shared_sim.provision_port, shared_sim.ca_file, username=username,
                    password="guess")
    with pytest.raises(ConnectionError):
        impostor.connect(timeout=2)


def test_the_server_certificate_is_renewed_when_the_host_changes(tmp_path):
    first = Authority(tmp_path / "ca", hosts=("localhost", "127.0.0.1"))
    first.ensure([])
    before = first.server_cert_file.read_bytes()
    same = Authority(tmp_path / "ca", hosts=("localhost", "127.0.0.1"))
    same.ensure([])
    assert same.server_cert_file.read_bytes() == before
    wider = Authority(tmp_path / "ca", hosts=("localhost", "127.0.0.1", "192.168.1.50"))
    wider.ensure([])
    cert = x509.load_pem_x509_certificate(wider.server_cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "192.168.1.50" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert wider.ca_file.read_bytes() == first.ca_file.read_bytes(), "the CA itself stays"


def test_listening_everywhere_puts_the_machine_name_into_the_certificate():
    assert certificate_names("192.168.1.50") == ("localhost", "127.0.0.1", "192.168.1.50")
    everywhere = certificate_names("0.0.0.0")
    assert everywhere[:2] == ("localhost", "127.0.0.1") and socket.gethostname() in everywhere
