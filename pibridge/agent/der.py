"""The few fields of an X.509 certificate the daemon needs, read with the standard library.

Every start of ``pibridge run`` checks the client certificate on disk: whose
it is (the CommonName, which the agent set to the client ID) and until when
it is valid.  Loading ``cryptography`` only for that costs about 8 MB of
memory on a Pi, so this module reads the certificate's DER encoding (ITU-T
X.690) directly, following the structure of RFC 5280, section 4.1::

    Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    TBSCertificate ::= SEQUENCE {
        version [0] EXPLICIT INTEGER OPTIONAL, serialNumber INTEGER,
        signature AlgorithmIdentifier, issuer Name,
        validity SEQUENCE { notBefore Time, notAfter Time },
        subject Name, ... }
    Name ::= SEQUENCE OF SET OF SEQUENCE { type OBJECT IDENTIFIER, value ANY }

It checks structure, not signatures: whether the certificate belongs to
the key is OpenSSL's job (``ssl.SSLContext.load_cert_chain``), whether the
agent trusts it is the agent's.
"""

from __future__ import annotations

import datetime as _dt
import re
import ssl
from dataclasses import dataclass

_SEQUENCE, _SET, _INTEGER, _OID = 0x30, 0x31, 0x02, 0x06
_VERSION = 0xA0  # [0] EXPLICIT, constructed
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_COMMON_NAME = bytes([0x55, 0x04, 0x03])  # 2.5.4.3

# The string types a CommonName may use (RFC 5280, appendix A.1, X520CommonName)
# and how each is encoded.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x14: "latin-1",  # TeletexString, as OpenSSL and cryptography read it
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)


class CertificateFormatError(ValueError):
    """The bytes are not an X.509 certificate; the message says where the reading stopped."""


@dataclass(frozen=True)
class CertificateFields:
    """What :func:`read_certificate` found: the subject's CommonName (None if it has none) and the validity."""

    common_name: str | None
    not_before: _dt.datetime
    not_after: _dt.datetime


def read_pem_certificate(pem: bytes | str) -> CertificateFields:
    """The fields of the first ``BEGIN CERTIFICATE`` block in *pem*.

    Raises :class:`CertificateFormatError` when there is no such block or it
    does not hold a certificate (a file cut short, a key in the wrong file).
    """
    if isinstance(pem, bytes):
        pem = pem.decode("ascii", "replace")
    block = _PEM_CERTIFICATE.search(pem)
    if block is None:
        raise CertificateFormatError("no complete '-----BEGIN CERTIFICATE-----' block")
    try:
        der = ssl.PEM_cert_to_DER_cert(block.group(0))
    except ValueError as exc:
        raise CertificateFormatError(f"the PEM block is not valid base64: {exc}") from None
    return read_certificate(der)


def read_certificate(der: bytes) -> CertificateFields:
    """The CommonName and validity of the DER-encoded certificate *der*.

    Raises :class:`CertificateFormatError` for anything that does not follow
    the structure above.
    """
    certificate = _Reader(bytes(der), "certificate")
    tbs = certificate.enter(_SEQUENCE, "Certificate").enter(_SEQUENCE, "tbsCertificate")
    certificate.expect_end()
    tbs.skip_optional(_VERSION)
    tbs.skip(_INTEGER, "serialNumber")
    tbs.skip(_SEQUENCE, "signature algorithm")
    tbs.skip(_SEQUENCE, "issuer")
    validity = tbs.enter(_SEQUENCE, "validity")
    not_before = validity.time("notBefore")
    not_after = validity.time("notAfter")
    validity.expect_end()
    subject = tbs.enter(_SEQUENCE, "subject")
    return CertificateFields(_common_name(subject), not_before, not_after)


def _common_name(subject: _Reader) -> str | None:
    while not subject.at_end():
        rdn = subject.enter(_SET, "subject RDN")
        while not rdn.at_end():
            attribute = rdn.enter(_SEQUENCE, "subject attribute")
            oid = attribute.value(_OID, "attribute type")
            tag, value = attribute.any("attribute value")
            if oid != _COMMON_NAME:
                continue
            codec = _STRING_CODECS.get(tag)
            if codec is None:
                raise CertificateFormatError(f"the CommonName has tag 0x{tag:02x}, which is not a string type")
            try:
                return value.decode(codec)
            except UnicodeDecodeError as exc:
                raise CertificateFormatError(f"the CommonName is not valid {codec}: {exc.reason}") from None
    return None


class _Reader:
    """Reads the DER elements of *data* one after another; *where* names it in error messages."""

    def __init__(self, data: bytes, where: str):
        self.data, self.where, self.pos = data, where, 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def expect_end(self) -> None:
        if not self.at_end():
            raise CertificateFormatError(f"{len(self.data) - self.pos} unexpected bytes after the {self.where}")

    def _peek_tag(self) -> int | None:
        return None if self.at_end() else self.data[self.pos]

    def any(self, what: str) -> tuple[int, bytes]:
        """The next element's tag and contents."""
        data, pos = self.data, self.pos
        if pos + 2 > len(data):
            raise CertificateFormatError(f"the {self.where} ends where its {what} should be")
        tag, length = data[pos], data[pos + 1]
        if tag & 0x1F == 0x1F:
            raise CertificateFormatError(f"the {what} has a multi-byte tag, which no certificate field uses")
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4:
                raise CertificateFormatError(f"the {what} has an invalid DER length")
            if pos + count > len(data):
                raise CertificateFormatError(f"the {what}'s length is cut short")
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise CertificateFormatError(
                f"the {what} claims {length} bytes but only {len(data) - pos} follow (a file cut short?)"
            )
        self.pos = pos + length
        return tag, data[pos:pos + length]

    def value(self, tag: int, what: str) -> bytes:
        """The contents of the next element, which must have *tag*."""
        found = self._peek_tag()
        if found != tag:
            seen = "nothing" if found is None else f"tag 0x{found:02x}"
            raise CertificateFormatError(f"expected the {what} (tag 0x{tag:02x}) in the {self.where}, found {seen}")
        return self.any(what)[1]

    def enter(self, tag: int, what: str) -> _Reader:
        return _Reader(self.value(tag, what), what)

    def skip(self, tag: int, what: str) -> None:
        self.value(tag, what)

    def skip_optional(self, tag: int) -> None:
        if self._peek_tag() == tag:
            self.any("optional field")

    def time(self, what: str) -> _dt.datetime:
        """A UTCTime or GeneralizedTime in the form RFC 5280 (4.1.2.5) requires: to the second, in UTC."""
        tag = self._peek_tag()
        if tag not in (_UTC_TIME, _GENERALIZED_TIME):
            seen = "nothing" if tag is None else f"tag 0x{tag:02x}"
            raise CertificateFormatError(f"expected the {what} time in the {self.where}, found {seen}")
        text = self.value(tag, what)
        year_digits = 2 if tag == _UTC_TIME else 4
        digits = text[:-1]
        if len(text) != year_digits + 11 or not text.endswith(b"Z") or not digits.isdigit():
            layout = "YYMMDDHHMMSSZ" if tag == _UTC_TIME else "YYYYMMDDHHMMSSZ"
            raise CertificateFormatError(f"the {what} time {text!r} is not of the form {layout}")
        year = int(digits[:year_digits])
        if tag == _UTC_TIME:
            # RFC 5280: two-digit years 50-99 are 19xx, 00-49 are 20xx.
            year += 1900 if year >= 50 else 2000
        rest = digits[year_digits:]
        try:
            return _dt.datetime(year, *(int(rest[i:i + 2]) for i in range(0, 10, 2)), tzinfo=_dt.timezone.utc)
        except ValueError as exc:
            raise CertificateFormatError(f"the {what} time {text!r} is not a real moment: {exc}") from None
