"""The simulator's certificate authority: a CA, the broker's server certificate, client certificates and a CRL.

Everything lives in the state directory so a restarted simulator keeps
trusting the clients it signed before:

``ca.crt`` / ``ca.key``
    The CA a client must trust (``--cafile``).  The key is mode 0600 and
    stays with the simulator; Mosquitto never reads it.
``server.crt`` / ``server.key``
    What Mosquitto presents on both TLS listeners, valid for ``localhost``,
    ``127.0.0.1`` and the host the simulator listens on.
``crl.pem``
    The revoked client certificates (deleted clients), which Mosquitto
    checks on the API listener.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pibridge.agent.errors import ErrorCode

#: Characters the reference allows in a client name (section 4.1, step 1).
CLIENT_NAME = re.compile(r"[a-zA-Z0-9.*\-,@'_]+")

CA_NAME = "pibridge simulator authority"
#: Client certificates live as long as the reference's example (one year).
CLIENT_VALIDITY = datetime.timedelta(days=365)
AUTHORITY_VALIDITY = datetime.timedelta(days=3650)


class CsrRejected(Exception):
    """A certificate signing request the agent refuses, with the reference's error code."""

    def __init__(self, code: ErrorCode, detail: str):
        self.code = code
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class SignedClient:
    """The result of signing a CSR: the new client ID, the name it asked for, and the PEM certificate."""

    client_id: str
    name: str
    serial: int
    certificate_pem: bytes


def new_id() -> str:
    """A fresh 32-hex-digit identifier, the shape the agent uses for clients, sensors and metrics."""
    return secrets.token_hex(16)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically so a reader (Mosquitto on SIGHUP) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class Authority:
    """The CA of one state directory.  Created on first use, reused afterwards.

    Thread-safety: signing and CRL writes are called from the simulator's
    request worker only; the paths are read-only facts.
    """

    def __init__(self, state_dir: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")):
        self.state_dir = Path(state_dir)
        self.ca_file = self.state_dir / "ca.crt"
        self.ca_key_file = self.state_dir / "ca.key"
        self.server_cert_file = self.state_dir / "server.crt"
        self.server_key_file = self.state_dir / "server.key"
        self.crl_file = self.state_dir / "crl.pem"
        self._hosts = tuple(dict.fromkeys(hosts))
        self._ca_key = None
        self._ca_cert = None

    # -- setup -------------------------------------------------------------

    def ensure(self, revoked_serials: list[int] = ()) -> None:
        """Create the CA and the server certificate if missing, and write the CRL."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.ca_file.exists() and self.ca_key_file.exists():
            self._ca_key = serialization.load_pem_private_key(self.ca_key_file.read_bytes(), None)
            self._ca_cert = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        else:
            self._create_ca()
        if not self._server_cert_fits():
            self._create_server_cert()
        self.write_crl(revoked_serials)

    def _create_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + AUTHORITY_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        pem_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(self.ca_key_file, pem_key, 0o600)
        _write(self.ca_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        self._ca_key, self._ca_cert = key, cert

    def _server_cert_fits(self) -> bool:
        """True if the server certificate exists, is signed by this CA and names every host."""
        if not (self.server_cert_file.exists() and self.server_key_file.exists()):
            return False
        cert = x509.load_pem_x509_certificate(self.server_cert_file.read_bytes())
        if cert.issuer != self._ca_cert.subject:
            return False
        try:
            self._ca_cert.public_key().verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        except InvalidSignature:
            return False
        # not_valid_after_utc is cryptography >= 42; older releases give a naive UTC time.
        expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(
            tzinfo=datetime.timezone.utc)
        if expires < _now() + datetime.timedelta(days=30):
            return False
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {str(n) for n in names.get_values_for_type(x509.DNSName)}
        have |= {str(n) for n in names.get_values_for_type(x509.IPAddress)}
        return all(h in have for h in self._hosts)

    def _create_server_cert(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for host in self._hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + AUTHORITY_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        pem_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Mosquitto may run as its own user: the server key must be readable
        # by it (see Broker.prepare_permissions), the CA key never is.
        _write(self.server_key_file, pem_key, 0o600)
        _write(self.server_cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    # -- signing -----------------------------------------------------------

    def sign_csr(self, payload: bytes) -> SignedClient:
        """Sign a PEM CSR as the agent does: the CommonName becomes a fresh client ID.

        Raises :class:`CsrRejected` with code 21 (empty), 20 (not a valid
        CSR), 22 (no CommonName) or 25 (a name with characters the
        reference does not allow).
        """
        if not payload.strip():
            raise CsrRejected(ErrorCode.CERTIFICATE_IS_EMPTY_ERROR, "the published message is empty")
        try:
            csr = x509.load_pem_x509_csr(payload.strip())
        except ValueError as exc:
            raise CsrRejected(ErrorCode.CERTIFICATE_FORMAT_ERROR, f"not a PEM certificate signing request ({exc})")
        if not csr.is_signature_valid:
            raise CsrRejected(ErrorCode.CERTIFICATE_FORMAT_ERROR, "the request's signature does not match its key")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise CsrRejected(ErrorCode.CERTIFICATE_WITHOUT_COMMON_NAME, "the subject has no CommonName")
        name = names[0].value
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if not CLIENT_NAME.fullmatch(name):
            raise CsrRejected(
                ErrorCode.INVALID_CLIENT_NAME,
                f"client name {name!r} may only contain a-z, A-Z, 0-9 and . * - , @ ' _",
            )
        client_id = new_id()
        subject = x509.Name(
            [a for a in csr.subject if a.oid != NameOID.COMMON_NAME]
            + [x509.NameAttribute(NameOID.COMMON_NAME, client_id)]
        )
        now = _now()
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + CLIENT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        return SignedClient(client_id, name, serial, cert.public_bytes(serialization.Encoding.PEM))

    def write_crl(self, revoked_serials) -> None:
        """Write the CRL Mosquitto checks on the API listener (an empty CRL is valid too)."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._ca_cert.subject)
            .last_update(now - datetime.timedelta(minutes=5))
            .next_update(now + AUTHORITY_VALIDITY)
        )
        for serial in revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial)).revocation_date(now).build()
            )
        crl = builder.sign(self._ca_key, hashes.SHA256())
        _write(self.crl_file, crl.public_bytes(serialization.Encoding.PEM), 0o644)
