"""A scriptable agent for the client's fault tests: our own CA, a real Mosquitto, a paho "agent".

The simulator (pibridge.sim) plays a correct agent.  These tests need an
agent that misbehaves on purpose (garbage JSON, wrong shapes, answers on
the wrong topic, a certificate from the wrong CA), so they run their own
Mosquitto with three listeners:

* provisioning: TLS, server certificate from :class:`Pki`, no client certificate;
* API: mutual TLS, client certificates signed by the same CA;
* agent: plain MQTT on 127.0.0.1 for :class:`ScriptedAgent`.

:class:`ScriptedAgent` answers each request with whatever the test's
handler returns for it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pibridge.agent.identity import Identity, write_private

from tests.support.ports import free_port


CLIENT_ID = "0123456789abcdef0123456789abcdef"



def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """A CA, a server certificate for localhost, and CSR signing like the agent does it."""

    def __init__(self, directory: Path, name: str = "Test Agent CA"):
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.crt"
        self.server_cert_file = directory / "server.crt"
        self.server_key_file = directory / "server.key"
        self.ca_file.write_bytes(_pem(self.ca_cert))
        self.server_cert_file.write_bytes(_pem(server_cert))
        self.server_key_file.write_bytes(_key_pem(server_key))

    def sign(self, public_key, common_name: str, *, not_before: dt.datetime | None = None,
             not_after: dt.datetime | None = None) -> x509.Certificate:
        now = dt.datetime.now(dt.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.ca_cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(hours=1))
            .not_valid_after(not_after or now + dt.timedelta(days=365))
            .sign(self.ca_key, hashes.SHA256())
        )

    def sign_csr(self, csr_pem: bytes, client_id: str, **validity) -> bytes:
        csr = x509.load_pem_x509_csr(csr_pem)
        return _pem(self.sign(csr.public_key(), client_id, **validity))


class Mosquitto:
    """A Mosquitto process with the provisioning, API and agent listeners of this module."""

    def __init__(self, directory: Path, pki: Pki, api_authorises_certificates: bool = True):
        """With *api_authorises_certificates* False the API listener asks for no client
        certificate and refuses anonymous clients: every CONNECT gets "not authorised"."""
        self.directory = directory
        self.pki = pki
        self.provision_port = free_port()
        self.api_port = free_port()
        self.agent_port = free_port()
        self.config_file = directory / "mosquitto.conf"
        self.log_file = directory / "mosquitto.log"
        self.process: subprocess.Popen | None = None
        tls = (f"cafile {pki.ca_file}\ncertfile {pki.server_cert_file}\nkeyfile {pki.server_key_file}\n"
               "tls_version tlsv1.2\n")
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config_file.write_text(
            f"{user}set_tcp_nodelay true\nper_listener_settings true\nlog_dest file {self.log_file}\nlog_type all\n"
            f"listener {self.provision_port} 127.0.0.1\nallow_anonymous true\n{tls}"
            f"listener {self.api_port} 127.0.0.1\n{tls}"
            + ("allow_anonymous true\nrequire_certificate true\nuse_identity_as_username true\n"
               if api_authorises_certificates else "allow_anonymous false\n")
            + f"listener {self.agent_port} 127.0.0.1\nallow_anonymous true\n"
        )

    def start(self) -> None:
        executable = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
        self.process = subprocess.Popen([executable, "-c", str(self.config_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: all(self._listening(p) for p in (self.provision_port, self.api_port, self.agent_port)),
                   timeout=10, what="mosquitto listeners")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _listening(self, port: int) -> bool:
        if self.process.poll() is not None:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"mosquitto exited: {log[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False


Handler = Callable[[str, bytes], "list[tuple[str, bytes | str]] | None"]


class ScriptedAgent:
    """A paho client on the agent listener that answers requests as a test says.

    ``on(pattern, handler)``: for a request whose topic matches the MQTT
    subscription *pattern*, ``handler(topic, payload)`` returns the
    ``(topic, payload)`` answers to publish.  Every request is recorded in
    :attr:`requests`.
    """

    def __init__(self, broker: Mosquitto):
        self.broker = broker
        self.requests: list[tuple[str, bytes]] = []
        self.handlers: list[tuple[str, Handler]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scripted-agent",
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *a: c.subscribe([("/v1.0/#", 1)])
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message

    def start(self) -> "ScriptedAgent":
        self._ready.clear()
        self.client.connect("127.0.0.1", self.broker.agent_port)
        self.client.loop_start()
        assert self._ready.wait(5), "scripted agent did not subscribe"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, pattern: str, handler: Handler) -> None:
        with self._lock:
            self.handlers.insert(0, (pattern, handler))

    def requests_on(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.requests if t.endswith(suffix)]

    def _on_message(self, client, userdata, message) -> None:
        topic, payload = message.topic, bytes(message.payload)
        if topic.endswith("/inbox") or topic.endswith("/livedata"):
            return
        with self._lock:
            self.requests.append((topic, payload))
            handlers = list(self.handlers)
        for pattern, handler in handlers:
            if mqtt.topic_matches_sub(pattern, topic):
                for answer_topic, answer in handler(topic, payload) or []:
                    client.publish(answer_topic, answer, qos=1)
                return


class CsrSigner:
    """Answers CSRs on the provisioning topic like the agent (for :class:`ScriptedAgent` setups)."""

    def __init__(self, broker: Mosquitto, pki: Pki, client_id: str = "0123456789abcdef0123456789abcdef"):
        self.pki = pki
        self.client_id = client_id
        self.csrs: list[bytes] = []
        self.answer: Callable[[bytes, str], list[tuple[str, bytes | str]]] | None = None
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="scripted-signer",
                                  protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *a: c.subscribe([("/v1.0/createClient", 1)])
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.agent_port)
        self.client.loop_start()
        assert self._ready.wait(5), "CSR signer did not subscribe"

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, message) -> None:
        import hashlib

        csr = bytes(message.payload)
        self.csrs.append(csr)
        digest = hashlib.sha256(csr).hexdigest()
        if self.answer is not None:
            answers = self.answer(csr, digest)
        else:
            answers = [(f"/certBack/{digest}", self.pki.sign_csr(csr, self.client_id))]
        for topic, payload in answers:
            client.publish(topic, payload, qos=1)


def issue_identity(pki: Pki, directory: Path, client_id: str = CLIENT_ID, **validity) -> Identity:
    """Write a key and a certificate signed by *pki* as provisioning would."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.sign(key.public_key(), client_id, **validity)
    write_private(directory / "client.key", _key_pem(key))
    write_private(directory / "client.crt", _pem(cert))
    return Identity(client_id, directory / "client.key", directory / "client.crt", cert.not_valid_after_utc)


def answer(topic_suffix: str, body) -> Handler:
    """A handler answering every request with *body* (JSON-encoded unless bytes) on request topic + suffix."""
    payload = body if isinstance(body, bytes) else json.dumps(body)

    def handler(topic: str, request: bytes):
        return [(topic + topic_suffix, payload)]

    return handler
