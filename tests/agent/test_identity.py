"""Keys, CSRs, client names, identity files and provisioning against our own CA and Mosquitto."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import stat
import string

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from pibridge.agent import identity as ident
from pibridge.agent.errors import AgentError, AgentTimeout, ErrorCode, ProtocolError, ProvisioningError
from pibridge.agent.identity import (
    csr_hash,
    generate_key,
    load_identity,
    make_csr,
    provision,
    validate_client_name,
    write_private,
)
from support.agent_broker import CLIENT_ID, Pki, issue_identity

ALLOWED = string.ascii_letters + string.digits + ".*-,@'_"


# ---------------------------------------------------------------- client names


@given(st.text(alphabet=ALLOWED, min_size=1, max_size=64))
def test_names_of_allowed_characters_pass(name):
    assert validate_client_name(name) == name


@given(st.text(alphabet=ALLOWED, max_size=10), st.characters().filter(lambda c: c not in ALLOWED),
       st.text(alphabet=ALLOWED, max_size=10))
def test_a_name_with_any_other_character_is_refused_naming_it(before, bad, after):
    with pytest.raises(ProvisioningError) as err:
        validate_client_name(before + bad + after)
    assert repr(bad) in str(err.value)
    assert f"position {len(before) + 1}" in str(err.value)


@pytest.mark.parametrize("name", ["", None])
def test_empty_name_is_refused(name):
    with pytest.raises(ProvisioningError, match="empty"):
        validate_client_name(name)


# ---------------------------------------------------------------- keys and CSRs


def test_rsa_is_the_default_key_and_is_2048_bits():
    key = generate_key()
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048


def test_ec_key_is_p256():
    key = generate_key("ec")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_unknown_key_type_is_refused():
    with pytest.raises(ProvisioningError, match="unknown key type 'dsa'"):
        generate_key("dsa")


def test_csr_is_pem_signed_by_the_key_with_the_name_as_common_name():
    key = generate_key("ec")
    pem = make_csr(key, "pi-kitchen@home")
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    csr = x509.load_pem_x509_csr(pem)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pi-kitchen@home"
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    assert csr_hash(pem) == hashlib.sha256(pem).hexdigest() and csr_hash(pem).islower()


# ---------------------------------------------------------------- atomic private files


def test_private_file_is_0600_with_the_content(tmp_path):
    path = tmp_path / "secret"
    write_private(path, b"key material")
    assert path.read_bytes() == b"key material"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_crash_before_the_rename_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "client.key"
    write_private(path, b"old key")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ident.os, "replace", crash)
    with pytest.raises(OSError):
        write_private(path, b"new key")
    assert path.read_bytes() == b"old key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key"]


def test_a_crash_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "client.key"
    write_private(path, b"old key")

    def crash(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ident.os, "fsync", crash)
    with pytest.raises(OSError):
        write_private(path, b"new key")
    assert path.read_bytes() == b"old key"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key"]


# ---------------------------------------------------------------- loading identities


def test_no_identity_yet(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    assert load_identity(tmp_path / "nothing") is None
    assert "no client identity" in caplog.text


def test_valid_identity_is_loaded_with_the_common_name_as_client_id(pki, tmp_path):
    issued = issue_identity(pki, tmp_path)
    loaded = load_identity(tmp_path)
    assert loaded == issued and loaded.client_id == CLIENT_ID


def test_expired_certificate_is_not_usable(pki, tmp_path, caplog):
    now = dt.datetime.now(dt.timezone.utc)
    issue_identity(pki, tmp_path, not_before=now - dt.timedelta(days=2), not_after=now - dt.timedelta(days=1))
    assert load_identity(tmp_path) is None
    assert "expired" in caplog.text


def test_certificate_of_another_key_is_not_usable(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    other = tmp_path / "other"
    issue_identity(pki, other)
    os.replace(other / "client.key", tmp_path / "client.key")
    assert load_identity(tmp_path) is None
    assert "does not match the private key" in caplog.text


def test_half_an_identity_is_not_usable(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    (tmp_path / "client.crt").unlink()
    assert load_identity(tmp_path) is None
    assert "incomplete" in caplog.text and "client.crt" in caplog.text


def test_garbage_in_the_key_file_is_not_usable(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    (tmp_path / "client.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnonsense\n")
    assert load_identity(tmp_path) is None
    assert "unreadable" in caplog.text


def test_garbage_in_the_certificate_file_is_not_usable(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    (tmp_path / "client.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    assert load_identity(tmp_path) is None
    assert "unreadable" in caplog.text and "client.crt is not a certificate" in caplog.text


def test_a_half_written_certificate_is_not_usable(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    cert = (tmp_path / "client.crt").read_bytes()
    (tmp_path / "client.crt").write_bytes(cert[: len(cert) // 2])
    assert load_identity(tmp_path) is None
    assert "unreadable" in caplog.text and "client.crt" in caplog.text


def test_a_missing_key_is_named(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    (tmp_path / "client.key").unlink()
    assert load_identity(tmp_path) is None
    assert "incomplete" in caplog.text and "client.key is missing" in caplog.text


def test_a_key_of_another_type_does_not_match(pki, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "client.key").write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert load_identity(tmp_path) is None
    assert "does not match the private key" in caplog.text


def test_an_encrypted_key_is_unreadable_without_asking_for_a_password(pki, tmp_path, caplog):
    issued = issue_identity(pki, tmp_path)
    key = serialization.load_pem_private_key(issued.key_file.read_bytes(), password=None)
    issued.key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    assert load_identity(tmp_path) is None
    assert "unreadable: client.key is not an unencrypted PEM private key" in caplog.text


def test_a_certificate_from_the_future_is_not_usable(pki, tmp_path, caplog):
    now = dt.datetime.now(dt.timezone.utc)
    issue_identity(pki, tmp_path, not_before=now + dt.timedelta(days=1), not_after=now + dt.timedelta(days=2))
    assert load_identity(tmp_path) is None
    assert "is not valid before" in caplog.text


def test_a_certificate_without_common_name_is_not_usable(pki, tmp_path, caplog):
    issued = issue_identity(pki, tmp_path)
    key = serialization.load_pem_private_key(issued.key_file.read_bytes(), password=None)
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Greenhouse")]))
        .issuer_name(pki.ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(pki.ca_key, hashes.SHA256())
    )
    issued.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert load_identity(tmp_path) is None
    assert "no CommonName" in caplog.text


def test_loaded_expiry_is_the_certificates(pki, tmp_path):
    issued = issue_identity(pki, tmp_path, not_after=dt.datetime(2061, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc))
    loaded = load_identity(tmp_path)
    assert loaded.not_after == x509.load_pem_x509_certificate(issued.cert_file.read_bytes()).not_valid_after_utc
    assert loaded.not_after == dt.datetime(2061, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------- provisioning over MQTT


def _provision(broker, pki, directory, **kwargs):
    kwargs.setdefault("client_name", "pi-1")
    kwargs.setdefault("timeout", 5)
    return provision(directory, host="localhost", port=broker.provision_port, ca_file=pki.ca_file, **kwargs)


def test_provisioning_saves_key_and_certificate_with_safe_modes(broker, pki, signer, tmp_path):
    directory = tmp_path / "identity"
    identity = _provision(broker, pki, directory, client_name="pi.kitchen_1")
    assert identity.client_id == CLIENT_ID
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(identity.key_file.stat().st_mode) == 0o600
    assert load_identity(directory) == identity
    [csr_pem] = signer.csrs
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pi.kitchen_1"
    assert isinstance(csr.public_key(), rsa.RSAPublicKey)


def test_provisioning_tightens_an_existing_directory(broker, pki, signer, tmp_path):
    directory = tmp_path / "identity"
    directory.mkdir(mode=0o755)
    _provision(broker, pki, directory, key_type="ec")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_provisioning_twice_reuses_the_identity(broker, pki, signer, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    first = _provision(broker, pki, tmp_path, key_type="ec")
    key_bytes = first.key_file.read_bytes()
    second = _provision(broker, pki, tmp_path, key_type="ec")
    assert second == first and first.key_file.read_bytes() == key_bytes
    assert len(signer.csrs) == 1
    assert "reusing client identity" in caplog.text


def test_expired_identity_is_replaced_saying_why(broker, pki, signer, tmp_path, caplog):
    now = dt.datetime.now(dt.timezone.utc)
    old = issue_identity(pki, tmp_path, client_id="ffffffffffffffffffffffffffffffff",
                         not_before=now - dt.timedelta(days=2), not_after=now - dt.timedelta(days=1))
    old_key = old.key_file.read_bytes()
    new = _provision(broker, pki, tmp_path, key_type="ec")
    assert new.client_id == CLIENT_ID and new.not_after > now
    assert new.key_file.read_bytes() != old_key
    assert "expired" in caplog.text and len(signer.csrs) == 1


def test_mismatched_identity_is_replaced_saying_why(broker, pki, signer, tmp_path, caplog):
    issue_identity(pki, tmp_path)
    issue_identity(pki, tmp_path / "other")
    os.replace(tmp_path / "other" / "client.key", tmp_path / "client.key")
    new = _provision(broker, pki, tmp_path, key_type="ec")
    assert load_identity(tmp_path) == new
    assert "does not match the private key" in caplog.text and len(signer.csrs) == 1


def test_invalid_name_is_refused_before_anything_is_sent(broker, pki, signer, tmp_path):
    with pytest.raises(ProvisioningError, match="' '"):
        _provision(broker, pki, tmp_path / "identity", client_name="kitchen pi")
    assert signer.csrs == [] and not (tmp_path / "identity").exists()


def test_agent_refusal_is_an_agent_error_with_its_code(broker, pki, signer, tmp_path):
    signer.answer = lambda csr, digest: [(f"/certBack/{digest}/error", json.dumps(
        {"errorMessage": "Client name is not valid.", "errorcode": 25}))]
    with pytest.raises(AgentError) as err:
        _provision(broker, pki, tmp_path, key_type="ec")
    assert err.value.code is ErrorCode.INVALID_CLIENT_NAME
    assert err.value.message == "Client name is not valid."
    assert not (tmp_path / "client.key").exists()


def test_answer_that_is_not_a_certificate_is_a_protocol_error(broker, pki, signer, tmp_path):
    signer.answer = lambda csr, digest: [(f"/certBack/{digest}", b"certificate? what certificate")]
    with pytest.raises(ProtocolError, match="not a PEM certificate"):
        _provision(broker, pki, tmp_path, key_type="ec")
    assert not (tmp_path / "client.key").exists()


def test_certificate_for_another_key_is_a_protocol_error(broker, pki, signer, tmp_path):
    stranger = ec.generate_private_key(ec.SECP256R1())
    signer.answer = lambda csr, digest: [(f"/certBack/{digest}", pki.sign(stranger.public_key(), CLIENT_ID)
                                          .public_bytes(serialization.Encoding.PEM))]
    with pytest.raises(ProtocolError, match="different key"):
        _provision(broker, pki, tmp_path, key_type="ec")


def test_certificate_wrapped_in_a_json_string_is_accepted(broker, pki, signer, tmp_path):
    signer.answer = lambda csr, digest: [(f"/certBack/{digest}", json.dumps(pki.sign_csr(csr, CLIENT_ID).decode()))]
    assert _provision(broker, pki, tmp_path, key_type="ec").client_id == CLIENT_ID


def test_silent_agent_is_a_timeout(broker, pki, signer, tmp_path):
    signer.answer = lambda csr, digest: []
    with pytest.raises(AgentTimeout, match="no certificate"):
        _provision(broker, pki, tmp_path, key_type="ec", timeout=0.5)


def test_agent_with_a_certificate_from_another_ca_is_refused(broker, pki, signer, tmp_path):
    stranger_ca = Pki(tmp_path / "stranger", name="Somebody Else's CA")
    with pytest.raises(ProvisioningError, match="does not vouch for"):
        provision(tmp_path / "identity", host="localhost", port=broker.provision_port,
                  ca_file=stranger_ca.ca_file, client_name="pi", timeout=5, key_type="ec")
    assert signer.csrs == []


def test_nobody_listening_is_a_clear_error(pki, tmp_path):
    from support.agent_broker import free_port

    port = free_port()
    with pytest.raises(ProvisioningError, match=f"nothing listens on localhost:{port}"):
        provision(tmp_path, host="localhost", port=port, ca_file=pki.ca_file, client_name="pi", key_type="ec")


def test_missing_ca_file_is_a_clear_error(broker, tmp_path):
    with pytest.raises(ProvisioningError, match="does not exist"):
        provision(tmp_path, host="localhost", port=broker.provision_port, ca_file=tmp_path / "nope.crt",
                  client_name="pi", key_type="ec")


def test_unusable_directory_is_a_clear_error(broker, pki, signer, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ProvisioningError, match="cannot create the identity directory"):
        _provision(broker, pki, blocker / "identity", key_type="ec")


# ---------------------------------------------------------------- TLS settings


def test_tls_contexts_verify_the_agent_and_refuse_old_protocols(pki, tmp_path):
    import ssl

    issued = issue_identity(pki, tmp_path)
    for context in (ident.tls_context(pki.ca_file), ident.tls_context(pki.ca_file, issued.cert_file, issued.key_file)):
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
