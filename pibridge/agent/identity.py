"""The client identity: a private key and the certificate the agent signed for it.

The agent only talks to clients holding a certificate it signed.  Getting one
("provisioning") works like this (API reference, section 4.1):

1. make a private key (RSA-2048 by default, or EC P-256) and a certificate
   signing request (CSR) whose CommonName is the client name;
2. connect to the agent's provisioning port (18883) over TLS, checking the
   agent's certificate against its CA file; no client certificate is needed;
3. publish the PEM CSR to ``/v1.0/createClient`` and wait on
   ``/certBack/<sha256 of the CSR>`` (or ``.../error`` if the agent refuses);
4. save the signed certificate.  The agent has replaced the CommonName by
   the *client ID*, a 32-hex-digit string used in every API topic.

:func:`provision` does all of this once: when the directory already holds a
valid key and certificate, it returns them without talking to the agent.
Files are written atomically (temporary file, then rename) so a crash never
leaves half a key; the key is readable by its owner only (0600) and the
directory is 0700.

Only provisioning needs ``cryptography`` (to make the key and the CSR), so
it is imported there.  :func:`load_identity`, which every start of the
daemon runs, checks the files with the standard library: OpenSSL (through
:mod:`ssl`) says whether key and certificate belong together, and
:mod:`pibridge.agent.der` reads the client ID and validity.  That keeps
about 8 MB off the daemon's memory on a Pi.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pibridge.agent import der, topics
from pibridge.agent.errors import (
    AgentConnectionLost,
    AgentError,
    AgentTimeout,
    ProtocolError,
    ProvisioningError,
)

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

log = logging.getLogger(__name__)

#: File names inside the identity directory.
KEY_FILE = "client.key"
CERT_FILE = "client.crt"

#: Key types :func:`provision` can make.
KEY_TYPES = ("rsa", "ec")

_NAME_CHARS = re.compile(r"[A-Za-z0-9.*\-,@'_]")
_MAX_CERT_BYTES = 64 * 1024

# What OpenSSL says when a readable key is not the certificate's: the same key
# type with other values, or another key type (then it finds no certificate for it).
_MISMATCH_REASONS = {"KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"}


@dataclass(frozen=True)
class Identity:
    """A provisioned client: its ID (the certificate's CommonName) and its files."""

    client_id: str
    key_file: Path
    cert_file: Path
    not_after: _dt.datetime


def validate_client_name(name: str) -> str:
    """Return *name* if the agent accepts it as a client name, else raise ProvisioningError.

    The agent allows letters, digits and ``. * - , @ ' _`` (section 4.1);
    the error names the first character it would refuse.
    """
    if not isinstance(name, str) or not name:
        raise ProvisioningError("the client name is empty; use letters, digits and . * - , @ ' _")
    for position, char in enumerate(name):
        if not _NAME_CHARS.fullmatch(char):
            raise ProvisioningError(
                f"the client name {name!r} contains {char!r} at position {position + 1}; "
                "only letters, digits and . * - , @ ' _ are allowed"
            )
    return name


def generate_key(key_type: str = "rsa") -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A new private key: RSA-2048 (``"rsa"``) or EC P-256 (``"ec"``)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ProvisioningError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")


def make_csr(key, client_name: str) -> bytes:
    """The PEM certificate signing request for *key* with CommonName *client_name*."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    validate_client_name(client_name)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_hash(csr_pem: bytes) -> str:
    """The ``:hash`` of the answer topic: lowercase hex SHA-256 of the CSR exactly as published."""
    return hashlib.sha256(csr_pem).hexdigest()


def write_private(path: Path, data: bytes) -> None:
    """Write *data* to *path* atomically with mode 0600.

    The bytes go to a temporary file in the same directory, are flushed to
    disk, then renamed over *path*: a reader sees the old file or the new
    one, never a partial one.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _prepare_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise ProvisioningError(
            f"cannot create the identity directory {directory}: {exc.strerror}; "
            "choose a writable directory with --dir or [storage] dir"
        ) from None


def _common_name(cert: x509.Certificate) -> str | None:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _public_der(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _validity_problem(fields: der.CertificateFields) -> str | None:
    """Why the certificate cannot be used now (expired or not yet valid), or None."""
    now = _dt.datetime.now(_dt.timezone.utc)
    if fields.not_after <= now:
        return f"the certificate expired on {fields.not_after:%Y-%m-%d %H:%M} UTC"
    if fields.not_before > now + _dt.timedelta(minutes=5):
        return f"the certificate is not valid before {fields.not_before:%Y-%m-%d %H:%M} UTC"
    return None


class _UnreadableKey(Exception):
    """OpenSSL cannot load the key file at all; the message says why."""


def _key_is_not_the_certificates(key_file: Path, cert_file: Path) -> bool:
    """Whether OpenSSL finds that *key_file* does not belong to *cert_file*.

    Raises :class:`_UnreadableKey` when the key cannot be loaded at all.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        # An encrypted key must fail here, not make OpenSSL ask for its password on the terminal.
        context.load_cert_chain(str(cert_file), str(key_file), password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason in _MISMATCH_REASONS:
            return True
        detail = f" ({exc.reason})" if exc.reason else ""
        raise _UnreadableKey(f"{key_file.name} is not an unencrypted PEM private key{detail}") from None
    return False


def load_identity(directory: Path) -> Identity | None:
    """The identity stored in *directory*, or None (with a log line saying why) if there is no usable one."""
    directory = Path(directory)
    key_file, cert_file = directory / KEY_FILE, directory / CERT_FILE
    if not key_file.exists() and not cert_file.exists():
        # Said once per directory: while the agent is away, provisioning is retried for hours.
        _log_once(("no identity", directory), "no client identity in %s yet", directory)
        return None
    try:
        key_file.stat()  # a missing key is reported as missing, not as an OpenSSL error
        fields = der.read_pem_certificate(cert_file.read_bytes())
        mismatch = _key_is_not_the_certificates(key_file, cert_file)
    except FileNotFoundError as exc:
        log.warning("client identity in %s is incomplete: %s is missing", directory, exc.filename)
        return None
    except der.CertificateFormatError as exc:
        log.warning("client identity in %s is unreadable: %s is not a certificate: %s", directory, CERT_FILE, exc)
        return None
    except _UnreadableKey as exc:
        log.warning("client identity in %s is unreadable: %s", directory, exc)
        return None
    except OSError as exc:
        log.warning("client identity in %s cannot be read: %s", directory, exc)
        return None
    problem = _validity_problem(fields)
    if not problem and mismatch:
        problem = "the certificate's public key does not match the private key"
    if not problem and not fields.common_name:
        problem = "the certificate has no CommonName (client ID)"
    if problem:
        log.warning("client identity in %s is not usable: %s", directory, problem)
        return None
    return Identity(fields.common_name, key_file, cert_file, fields.not_after)


def remove_identity(identity: Identity) -> None:
    """Delete the certificate and key of *identity* (after the agent deleted the client)."""
    for path in (identity.cert_file, identity.key_file):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def tls_context(ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """A client TLS context that checks the agent against *ca_file* (TLS 1.2 or newer).

    With *cert_file* and *key_file* it also presents the client certificate
    (mutual TLS, API port); without them it is the provisioning context.
    """
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except FileNotFoundError:
        raise ProvisioningError(
            f"the agent CA file {ca_file} does not exist: is the TeamViewer IoT Agent installed? "
            "(`pibridge check --agent` tells); otherwise set ca_file to the agent's TeamViewerAuthority.crt"
        ) from None
    except ssl.SSLError as exc:
        raise ProvisioningError(f"the agent CA file {ca_file} is not a PEM certificate: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ProvisioningError(
                f"cannot load the client certificate {cert_file} with key {key_file}: {exc}; "
                "run `pibridge provision` again"
            ) from None
    return context


def describe_tls_failure(exc: BaseException, host: str, port: int, ca_file: Path) -> str:
    """A sentence for the user about why a TLS connection to the agent failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the agent at {host}:{port} presented a certificate that {ca_file} does not vouch for "
            f"({exc.verify_message}); check ca_file points at the agent's CA"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with the agent at {host}:{port} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on {host}:{port}; is the agent running?"
    if isinstance(exc, TimeoutError):
        return f"{host}:{port} did not answer in time"
    if isinstance(exc, OSError):
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"
    return f"connection to {host}:{port} failed: {exc}"


class _CertificateRequest:
    """One CSR exchange on the provisioning port; the paho callbacks run in paho's thread."""

    def __init__(self, host: str, port: int, ca_file: Path, csr_pem: bytes, timeout: float,
                 context: ssl.SSLContext):
        import paho.mqtt.client as mqtt

        self._mqtt_module = mqtt
        self.host, self.port, self.ca_file = host, port, ca_file
        self.csr_pem = csr_pem
        self.route = topics.cert_back(csr_hash(csr_pem))
        self.timeout = timeout
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.result: bytes | BaseException | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self.client.suppress_exceptions = True
        self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _finish(self, result) -> None:
        if not self.done.is_set():
            self.result = result
            self.done.set()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._finish(ProvisioningError(
                f"the agent at {self.host}:{self.port} refused the provisioning connection: {reason_code}"
            ))
            return
        client.subscribe([(self.route.answer, 1), (self.route.error, 1)])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            self._finish(ProvisioningError(f"the agent refused the subscription to {self.route.answer}"))
            return
        self.subscribed.set()
        client.publish(self.route.request, self.csr_pem, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.route.error:
            self._finish(_parse_error(message.payload, message.topic))
        elif message.topic == self.route.answer:
            self._finish(bytes(message.payload))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._finish(AgentConnectionLost(
            f"the agent at {self.host}:{self.port} closed the provisioning connection ({reason_code})"
        ))

    def run(self) -> bytes:
        try:
            self.client.connect(self.host, self.port, keepalive=max(10, int(self.timeout) + 5))
        except (OSError, ValueError) as exc:
            raise ProvisioningError(describe_tls_failure(exc, self.host, self.port, self.ca_file)) from None
        self.client.loop_start()
        try:
            if not self.done.wait(self.timeout):
                stage = "an answer to the CSR" if self.subscribed.is_set() else "the connection"
                raise AgentTimeout(
                    f"no certificate from the agent at {self.host}:{self.port} within {self.timeout:g} s "
                    f"(waiting for {stage} on {self.route.answer})"
                )
        finally:
            self.client.disconnect()
            self.client.loop_stop()
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def _parse_error(payload: bytes, topic: str) -> AgentError | ProtocolError:
    from pibridge.agent.answers import error_answer

    try:
        return error_answer(payload, topic)
    except ProtocolError as exc:
        return exc


def _parse_certificate(pem: bytes, key) -> x509.Certificate:
    from cryptography import x509

    if len(pem) > _MAX_CERT_BYTES:
        raise ProtocolError(f"the agent's certificate answer is {len(pem)} bytes, more than a certificate can be")
    text = pem.strip()
    # The reference's example answers plain PEM; tolerate it wrapped in a JSON string.
    if text.startswith(b'"') and text.endswith(b'"'):
        import json

        try:
            text = json.loads(text).encode("ascii")
        except (ValueError, UnicodeEncodeError):
            pass
    try:
        cert = x509.load_pem_x509_certificate(text)
    except ValueError as exc:
        raise ProtocolError(f"the agent answered the CSR with something that is not a PEM certificate: {exc}") from None
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise ProtocolError("the agent sent back a certificate for a different key")
    if not _common_name(cert):
        raise ProtocolError("the agent's certificate has no CommonName, so it carries no client ID")
    return cert


def provision(
    directory: Path,
    *,
    host: str,
    port: int,
    ca_file: Path,
    client_name: str,
    timeout: float = 30.0,
    key_type: str = "rsa",
) -> Identity:
    """Return the client identity stored in *directory*, asking the agent for one if needed.

    An existing valid key and certificate are reused as they are.  A missing,
    expired or mismatched pair is replaced by a new key and a certificate
    from the agent at *host*:*port* (the provisioning port).

    Raises :class:`ProvisioningError` (bad name, unreachable agent, untrusted
    agent certificate, unwritable directory), :class:`AgentError` (the agent
    refused the CSR, with its error code), :class:`AgentTimeout` or
    :class:`ProtocolError` (the answer was not a certificate for our key).
    """
    validate_client_name(client_name)
    if key_type not in KEY_TYPES:
        raise ProvisioningError(f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}")
    directory = Path(directory)
    existing = load_identity(directory)
    if existing is not None:
        log.info("reusing client identity %s from %s", existing.client_id, directory)
        return existing
    from cryptography.hazmat.primitives import serialization

    # The CA first: without it no answer could be trusted, so no key is worth making yet.
    context = tls_context(Path(ca_file))
    _prepare_directory(directory)
    key, csr_pem = _pending_request(directory, key_type, client_name)
    _log_once(("request", directory, csr_hash(csr_pem)), "requesting a client certificate for %r from %s:%d",
              client_name, host, port)
    answer = _CertificateRequest(host, port, Path(ca_file), csr_pem, timeout, context).run()
    cert = _parse_certificate(answer, key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        write_private(directory / KEY_FILE, key_pem)
        write_private(directory / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise ProvisioningError(f"cannot save the client identity in {directory}: {exc.strerror or exc}") from None
    with _pending_lock:
        _pending.pop((directory, key_type), None)
    identity = Identity(_common_name(cert), directory / KEY_FILE, directory / CERT_FILE, cert.not_valid_after_utc)
    log.info("provisioned client %s (certificate valid until %s)", identity.client_id, identity.not_after)
    return identity


#: (directory, key type) -> (key, name, CSR) made for a request the agent has not answered yet.
#: An RSA key takes a Pi Zero seconds of CPU; while the agent is away it is made once, not per attempt.
_pending: dict[tuple[Path, str], tuple[object, str, bytes]] = {}
_pending_lock = threading.Lock()
_said: set[tuple] = set()


def _pending_request(directory: Path, key_type: str, client_name: str) -> tuple[object, bytes]:
    """The key and CSR to send: the ones of an earlier unanswered attempt, else new ones."""
    with _pending_lock:
        kept = _pending.get((directory, key_type))
        if kept is not None and kept[1] == client_name:
            return kept[0], kept[2]
        key = generate_key(key_type)
        csr_pem = make_csr(key, client_name)
        _pending[(directory, key_type)] = (key, client_name, csr_pem)
        return key, csr_pem


def _log_once(what: tuple, message: str, *args) -> None:
    """INFO the first time *what* happens in this process, DEBUG every later time."""
    with _pending_lock:
        first = what not in _said
        _said.add(what)
    log.log(logging.INFO if first else logging.DEBUG, message, *args)
