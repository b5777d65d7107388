"""The standard-library certificate reader, checked against certificates ``cryptography`` makes and reads."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.agent.der import CertificateFormatError, read_certificate, read_pem_certificate

UTC = dt.timezone.utc
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLIENT_ID = "0123456789abcdef0123456789abcdef"


def _name(*rdns) -> x509.Name:
    """A Name from RDNs, each a list of (oid, value) pairs (more than one pair: a multi-valued RDN)."""
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(o, v) for o, v in rdn]) for rdn in rdns])


def make_cert(subject: x509.Name | None = None, *, key=EC_KEY, not_before=None, not_after=None,
              extensions: bool = True) -> x509.Certificate:
    now = dt.datetime.now(UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject if subject is not None else _name([(NameOID.COMMON_NAME, CLIENT_ID)]))
        .issuer_name(_name([(NameOID.COUNTRY_NAME, "DE")], [(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
    )
    if extensions:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("pi.example")]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
    return builder.sign(key, hashes.SHA256())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# A DER writer and splitter of our own (X.690, section 8.1), to make certificates cryptography will not.


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def split(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        tag, first = data[pos], data[pos + 1]
        pos += 2
        if first & 0x80:
            count = first & 0x7F
            first, pos = int.from_bytes(data[pos:pos + count], "big"), pos + count
        out.append((tag, data[pos:pos + first]))
        pos += first
    return out


def rebuild(cert_der: bytes, change_tbs) -> bytes:
    """*cert_der* with its tbsCertificate's fields replaced by ``change_tbs(fields)`` (signature kept, now wrong)."""
    [(_, body)] = split(cert_der)
    (tbs_tag, tbs), *rest = split(body)
    fields = change_tbs(split(tbs))
    new_tbs = tlv(tbs_tag, b"".join(tlv(t, c) for t, c in fields))
    return tlv(0x30, new_tbs + b"".join(tlv(t, c) for t, c in rest))


def with_subject(cert_der: bytes, subject: bytes) -> bytes:
    def change(fields):
        index = 5 if fields[0][0] == 0xA0 else 4
        return fields[:index] + [(0x30, subject)] + fields[index + 1:]

    return rebuild(cert_der, change)


# ---------------------------------------------------------------- agreement with cryptography


@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY], ids=["ec", "rsa"])
@pytest.mark.parametrize("extensions", [True, False], ids=["extensions", "no-extensions"])
def test_common_name_and_validity_match_cryptography(key, extensions):
    cert = make_cert(key=key, extensions=extensions)
    fields = read_certificate(der(cert))
    assert fields.common_name == CLIENT_ID
    assert fields.not_after == cert.not_valid_after_utc and fields.not_after.tzinfo is not None
    assert fields.not_before == cert.not_valid_before_utc
    assert read_pem_certificate(pem(cert)) == fields


@pytest.mark.parametrize("moment, tag", [
    (dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC), b"\x17\x0d491231235959Z"),
    (dt.datetime(2050, 1, 1, 0, 0, 0, tzinfo=UTC), b"\x18\x0f20500101000000Z"),
    (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), b"\x18\x0f99991231235959Z"),
], ids=["utctime-2049", "generalizedtime-2050", "generalizedtime-9999"])
def test_not_after_in_utctime_and_generalizedtime(moment, tag):
    cert = der(make_cert(not_after=moment))
    assert tag in cert, "cryptography encoded the date differently from RFC 5280 4.1.2.5"
    assert read_certificate(cert).not_after == moment


@pytest.mark.parametrize("moment, tag", [
    (dt.datetime(1950, 1, 1, 0, 0, 0, tzinfo=UTC), b"\x17\x0d500101000000Z"),
    (dt.datetime(1999, 6, 30, 12, 0, 0, tzinfo=UTC), b"\x17\x0d990630120000Z"),
], ids=["utctime-1950", "utctime-1999"])
def test_two_digit_years_from_50_are_the_1900s(moment, tag):
    cert = der(make_cert(not_before=moment))
    assert tag in cert
    assert read_certificate(cert).not_before == moment


def test_generalizedtime_before_1950():
    # cryptography writes no date before 1950, so the validity is put in by hand.
    def change(fields):
        index = 4 if fields[0][0] == 0xA0 else 3
        validity = tlv(0x18, b"19491231235959Z") + tlv(0x18, b"20500101000000Z")
        return fields[:index] + [(0x30, validity)] + fields[index + 1:]

    fields = read_certificate(rebuild(der(make_cert()), change))
    assert fields.not_before == dt.datetime(1949, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert fields.not_after == dt.datetime(2050, 1, 1, tzinfo=UTC)


def test_certificate_without_the_version_field_is_read():
    original = der(make_cert(extensions=False))
    v1 = rebuild(original, lambda fields: [f for f in fields if f[0] != 0xA0])
    assert x509.load_der_x509_certificate(v1).version is x509.Version.v1
    assert split(split(v1)[0][1])[0][1][0] == 0x02, "the serial number should now come first"
    fields = read_certificate(v1)
    assert fields.common_name == CLIENT_ID and fields.not_after == read_certificate(original).not_after


def test_multi_valued_rdn_holding_the_common_name():
    subject = _name([(NameOID.COUNTRY_NAME, "DE")],
                    [(NameOID.ORGANIZATION_NAME, "Greenhouse"), (NameOID.COMMON_NAME, CLIENT_ID),
                     (NameOID.ORGANIZATIONAL_UNIT_NAME, "Sensors")])
    cert = make_cert(subject)
    assert any(len(rdn) == 3 for rdn in cert.subject.rdns)
    assert read_certificate(der(cert)).common_name == CLIENT_ID


def test_the_first_of_two_common_names_counts_as_cryptography_reads_it():
    cert = make_cert(_name([(NameOID.COMMON_NAME, "first")], [(NameOID.COMMON_NAME, "second")]))
    expected = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert read_certificate(der(cert)).common_name == expected == "first"


def test_subject_without_common_name_reads_as_none():
    cert = make_cert(_name([(NameOID.ORGANIZATION_NAME, "Greenhouse")]))
    assert read_certificate(der(cert)).common_name is None


def test_empty_subject_reads_as_none():
    assert read_certificate(der(make_cert(x509.Name([])))).common_name is None


@pytest.mark.parametrize("tag, encoded, text", [
    (0x13, b"pi-1", "pi-1"),  # PrintableString
    (0x16, b"pi@home", "pi@home"),  # IA5String
    (0x14, b"pi-kitchen", "pi-kitchen"),  # TeletexString
    (0x1E, "Küche".encode("utf-16-be"), "Küche"),  # BMPString
    (0x1C, "Küche".encode("utf-32-be"), "Küche"),  # UniversalString
])
def test_common_name_in_every_directory_string_type(tag, encoded, text):
    subject = tlv(0x31, tlv(0x30, tlv(0x06, b"\x55\x04\x03") + tlv(tag, encoded)))
    cert = with_subject(der(make_cert()), subject)
    assert x509.load_der_x509_certificate(cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == text
    assert read_certificate(cert).common_name == text


def _within_64_utf8_bytes(text: str) -> str:
    """X.509's upper bound on a CommonName (RFC 5280 ub-common-name) as cryptography applies it:
    64 bytes of UTF-8, not 64 characters."""
    return text.encode("utf-8")[:64].decode("utf-8", "ignore")


@settings(max_examples=40, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=64)
    .map(_within_64_utf8_bytes),
    st.datetimes(min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(9999, 12, 31)),
)
def test_any_name_and_date_read_as_cryptography_reads_them(name, moment):
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    cert = make_cert(_name([(NameOID.COMMON_NAME, name)]), not_before=dt.datetime(1950, 1, 1, tzinfo=UTC),
                     not_after=moment)
    fields = read_certificate(der(cert))
    assert fields.common_name == cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert fields.not_after == cert.not_valid_after_utc


# ---------------------------------------------------------------- what is not a certificate


def test_every_truncation_is_a_format_error():
    cert = der(make_cert(extensions=False))
    for length in range(len(cert)):
        with pytest.raises(CertificateFormatError):
            read_certificate(cert[:length])


SAMPLE = der(make_cert())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_damaged_certificate_is_read_or_refused_never_a_crash(data):
    cert = bytearray(SAMPLE)
    for _ in range(data.draw(st.integers(1, 4))):
        cert[data.draw(st.integers(0, len(cert) - 1))] = data.draw(st.integers(0, 255))
    try:
        fields = read_certificate(bytes(cert))
    except CertificateFormatError as exc:
        assert str(exc)
    else:
        assert fields.not_after.tzinfo is not None


@given(st.binary(max_size=200))
def test_random_bytes_are_a_format_error(junk):
    with pytest.raises(CertificateFormatError):
        read_certificate(junk)


def test_bytes_after_the_certificate_are_refused():
    with pytest.raises(CertificateFormatError, match="unexpected bytes after"):
        read_certificate(der(make_cert()) + b"\x00\x00")


def test_a_private_key_is_not_a_certificate():
    key_der = EC_KEY.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    with pytest.raises(CertificateFormatError, match="expected"):
        read_certificate(key_der)


def test_indefinite_length_is_not_der():
    with pytest.raises(CertificateFormatError, match="invalid DER length"):
        read_certificate(b"\x30\x80" + der(make_cert())[2:] + b"\x00\x00")


@pytest.mark.parametrize("bad_time", [b"2501011200Z", b"250101120000", b"25013112000Z0", b"251301120000Z"])
def test_a_malformed_time_is_a_format_error_naming_it(bad_time):
    def change(fields):
        index = 4 if fields[0][0] == 0xA0 else 3
        return fields[:index] + [(0x30, tlv(0x17, bad_time) + tlv(0x17, b"491231235959Z"))] + fields[index + 1:]

    cert = rebuild(der(make_cert()), change)
    with pytest.raises(CertificateFormatError, match="notBefore"):
        read_certificate(cert)


def test_a_common_name_that_is_not_a_string_is_refused():
    subject = tlv(0x31, tlv(0x30, tlv(0x06, b"\x55\x04\x03") + tlv(0x02, b"\x01")))
    with pytest.raises(CertificateFormatError, match="CommonName"):
        read_certificate(with_subject(der(make_cert()), subject))


def test_pem_without_a_certificate_block_is_refused():
    with pytest.raises(CertificateFormatError, match="no complete"):
        read_pem_certificate(b"just some text\n")


def test_half_a_pem_file_is_refused():
    text = pem(make_cert())
    with pytest.raises(CertificateFormatError, match="no complete"):
        read_pem_certificate(text[: len(text) // 2])


def test_pem_with_a_damaged_body_is_refused():
    lines = pem(make_cert()).splitlines()
    lines[3] = b"!!!!" + lines[3][4:]
    with pytest.raises(CertificateFormatError):
        read_pem_certificate(b"\n".join(lines))


def test_pem_block_is_found_after_other_text_and_stdlib_agrees():
    cert = make_cert()
    text = b"Subject: CN=" + CLIENT_ID.encode() + b"\n" + pem(cert)
    assert read_pem_certificate(text).common_name == CLIENT_ID
    assert ssl.PEM_cert_to_DER_cert(pem(cert).decode()) == der(cert)
