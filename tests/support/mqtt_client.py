"""A minimal MQTT test client for the simulator's tests: TLS paho with a provisioned certificate.

Deliberately independent of pibridge.agent (the production client): the
simulator is tested against the reference, not against our own client.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_csr(key, common_name: str | None = "tester", extra=()) -> bytes:
    attrs = list(extra)
    if common_name is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _no_delay(client, userdata, sock) -> None:
    """paho writes a packet in pieces; with Nagle on, each request would wait ~40 ms for a delayed ACK."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Mqtt:
    """A connected paho client that records every message per topic; wait with :meth:`expect`."""

    def __init__(self, host: str, port: int, ca_file: Path, cert: Path | None = None, key: Path | None = None,
                 client_id: str = "", clean_session: bool = True, username: str | None = None,
                 password: str | None = None):
        self.messages: dict[str, list[bytes]] = {}
        self.qos: dict[str, list[int]] = {}
        self._cond = threading.Condition()
        self.connected = threading.Event()
        self.connect_result = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean_session, protocol=mqtt.MQTTv311)
        self.client.tls_set(str(ca_file), str(cert) if cert else None, str(key) if key else None)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_socket_open = _no_delay
        # Short waits between reconnects: outage tests see the return sooner, close() is not held up.
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self.client.on_disconnect = self._on_disconnect
        self._settled = threading.Event()
        self.host, self.port = host, port

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connect_result = reason_code
        if not reason_code.is_failure:
            self.connected.set()
        self._settled.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.connect_result = self.connect_result or reason_code
        self._settled.set()

    def _on_message(self, client, userdata, message):
        with self._cond:
            self.messages.setdefault(message.topic, []).append(bytes(message.payload))
            self.qos.setdefault(message.topic, []).append(message.qos)
            self._cond.notify_all()

    def connect(self, timeout: float = 5.0) -> "Mqtt":
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self._settled.wait(timeout)
        if not self.connected.is_set():
            self.close()
            raise ConnectionError(f"no CONNACK from {self.host}:{self.port} within {timeout} s ({self.connect_result})")
        return self

    def subscribe(self, *topics: str, timeout: float = 5.0) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        if not done.wait(timeout):
            raise TimeoutError(f"no SUBACK for {topics}")

    def publish(self, topic: str, payload, timeout: float = 5.0) -> None:
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)

    def expect(self, topic: str, timeout: float = 5.0, count: int = 1) -> bytes:
        """Wait for the *count*-th message on *topic* and return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages.get(topic, [])) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"nothing on {topic} within {timeout} s; got topics {sorted(self.messages)}")
                self._cond.wait(left)
            return self.messages[topic][count - 1]

    def expect_json(self, topic: str, timeout: float = 5.0, count: int = 1):
        return json.loads(self.expect(topic, timeout, count))

    def count(self, topic: str) -> int:
        with self._cond:
            return len(self.messages.get(topic, []))

    def request(self, topic: str, payload, answer: str | None, error: str | None,
                timeout: float = 5.0) -> tuple[str, object]:
        """Publish and wait for the next message on the answer or the error topic.

        Returns ("answer", decoded JSON or raw bytes) or ("error", decoded JSON).
        The client must already be subscribed to both (e.g. to ``/v1.0/<id>/#``).
        """
        watched = {t: self.count(t) for t in (answer, error) if t}
        self.publish(topic, payload)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, before in watched.items():
                    if len(self.messages.get(t, [])) > before:
                        raw = self.messages[t][before]
                        kind = "answer" if t == answer else "error"
                        try:
                            return kind, json.loads(raw)
                        except ValueError:
                            return kind, raw
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer on {answer} or {error} within {timeout} s")
                self._cond.wait(left)

    def quiet(self, topic: str, seconds: float) -> bool:
        """True if nothing new arrives on *topic* (a prefix ending in '#' matches sub-topics) for *seconds*."""
        def seen() -> int:
            if topic.endswith("#"):
                return sum(len(v) for k, v in self.messages.items() if k.startswith(topic[:-1]))
            return len(self.messages.get(topic, []))

        deadline = time.monotonic() + seconds
        with self._cond:
            before = seen()
            while (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
                if seen() != before:
                    return False
            return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Identity:
    client_id: str
    cert: Path
    key: Path


def provision(host: str, port: int, ca_file: Path, directory: Path, name: str = "tester",
              timeout: float = 5.0) -> Identity:
    """Get a client certificate from the simulator's provisioning listener, the way section 4.1 describes."""
    directory.mkdir(parents=True, exist_ok=True)
    key = make_key()
    csr = make_csr(key, name)
    digest = hashlib.sha256(csr).hexdigest()
    client = Mqtt(host, port, ca_file).connect(timeout)
    try:
        client.subscribe(f"/certBack/{digest}", f"/certBack/{digest}/error")
        client.publish("/v1.0/createClient", csr)
        cert_pem = client.expect(f"/certBack/{digest}", timeout)
    finally:
        client.close()
    cert = x509.load_pem_x509_certificate(cert_pem)
    client_id = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    cert_path = directory / f"{client_id}.crt"
    key_path = directory / f"{client_id}.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    return Identity(client_id, cert_path, key_path)
