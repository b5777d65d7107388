"""What ``pibridge check`` finds out about the agent before ``run`` would: the CA file and the two ports.

A first run on a Pi trips over the same few things: the agent is not
installed (no CA file), the CA file is not readable by the service user, the
agent is not running (nothing listens), the ports are swapped in the config,
or ``ca_file`` names another CA.  Each check here returns a :class:`Finding`
that says which of these it is and what to do, instead of the
"Unspecified error" a failed MQTT connection gives.

The port probe speaks just enough MQTT to tell the two agent ports apart: the
provisioning port (18883) completes TLS without a client certificate and
answers an MQTT CONNECT; the API port (18884) refuses a client that has no
certificate.  It sends nothing but a CONNECT and a DISCONNECT.
"""

from __future__ import annotations

import os
import pwd
import socket
import ssl
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from pibridge.agent import der
from pibridge.agent.identity import Identity, ProvisioningError, tls_context
from pibridge.bridge.config import AgentConfig

#: The user install.sh creates; the daemon reads the CA file as this user.
SERVICE_USER = "pibridge"

AGENT_PACKAGE_HINT = (
    "install the TeamViewer IoT Agent (on 64-bit Raspberry Pi OS it is an armhf package: "
    "sudo dpkg --add-architecture armhf first), or set ca_file in [agent] to the agent's CA"
)


@dataclass(frozen=True)
class Finding:
    """One thing checked: ``ok``, what was checked, what was found and, when not ok, the fix."""

    ok: bool
    subject: str
    message: str
    fix: str = ""

    def describe(self) -> str:
        text = f"{self.subject}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


def check_ca_file(path: Path, service_user: str = SERVICE_USER) -> Finding:
    """Whether *path* exists, is readable by *service_user* (or by us, where no such user exists)
    and holds a PEM certificate."""
    subject = f"agent CA file {path}"
    try:
        info = path.stat()
    except FileNotFoundError:
        return Finding(False, subject, "does not exist, so the agent cannot be verified", AGENT_PACKAGE_HINT)
    except PermissionError:
        return Finding(False, subject, "cannot be looked at (a directory on its path is closed to this user)",
                       f"run check as the service user (sudo -u {service_user} pibridge check) or as root")
    if stat.S_ISDIR(info.st_mode):
        return Finding(False, subject, "is a directory, not a certificate file",
                       f"set ca_file to the certificate inside it, e.g. {path / 'TeamViewerAuthority.crt'}")
    reader = _unable_to_read(path, service_user)
    if reader is not None:
        return Finding(False, subject, f"is not readable by {reader}",
                       f"let the service read it: sudo chgrp {service_user} {path} && sudo chmod g+r {path} "
                       "(and g+x on the directories above it)")
    try:
        der.read_pem_certificate(path.read_bytes())
    except PermissionError:
        return Finding(False, subject, "is not readable by this user",
                       f"run check as root or as the service user (sudo -u {service_user} pibridge check)")
    except der.CertificateFormatError as exc:
        return Finding(False, subject, f"does not hold a certificate ({exc})",
                       "point ca_file at the agent's TeamViewerAuthority.crt (PEM)")
    except OSError as exc:
        return Finding(False, subject, f"cannot be read: {exc.strerror or exc}", "check the disk and the path")
    return Finding(True, subject, "is a readable PEM certificate")


def _unable_to_read(path: Path, user: str) -> str | None:
    """Who cannot read *path* ("user 'pibridge'"), or None when the service user (if it exists) can."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return None if os.access(path, os.R_OK) else "this user"
    if account.pw_uid == 0:
        return None
    groups = set(os.getgrouplist(user, account.pw_gid))
    for place, need in [(p, stat.S_IXUSR) for p in reversed(path.parents)] + [(path, stat.S_IRUSR)]:
        try:
            info = place.stat()
        except OSError:
            return None  # what we cannot see we cannot judge; reading the file reports the rest
        if info.st_uid == account.pw_uid:
            allowed = info.st_mode & need
        elif info.st_gid in groups:
            allowed = info.st_mode & (need >> 3)
        else:
            allowed = info.st_mode & (need >> 6)
        if not allowed:
            return f"user {user!r} ({place} is mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid})"
    return None


#: File systems whose content is gone after a reboot (Trixie mounts /tmp as tmpfs).
VOLATILE_FILESYSTEMS = {"tmpfs", "ramfs"}


def mount_of(path: Path, mounts: str | None = None) -> tuple[str, str]:
    """The mount point and file-system type that hold *path* (which need not exist yet)."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return "/", "unknown"
    target = Path(os.path.abspath(path))
    best = ("/", "unknown")
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (target == Path(point) or Path(point) in target.parents) and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best


def check_storage_dir(path: Path, mounts: str | None = None) -> Finding:
    """Whether *path* keeps what is written there across a reboot."""
    point, kind = mount_of(path, mounts)
    subject = f"storage dir {path}"
    if kind in VOLATILE_FILESYSTEMS:
        return Finding(False, subject, f"is on {kind} ({point}): the outbox, the client identity and the "
                       "pulse totals would vanish at the next reboot",
                       'set dir in [storage] to a directory on the SD card, e.g. dir = "/var/lib/pibridge"')
    return Finding(True, subject, f"is on {kind} ({point})")


# --- the ports --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortAnswer:
    """How one port answered: ``kind`` is one of the constants below, ``detail`` the error text."""

    kind: str
    detail: str = ""


NOTHING = "nothing listens"
SILENT = "no answer"
UNKNOWN_HOST = "unknown host"
NOT_TLS = "not TLS"
WRONG_CA = "untrusted certificate"
WANTS_CERTIFICATE = "asks for a client certificate"
OPEN_MQTT = "MQTT without a client certificate"
ACCEPTED = "MQTT with our client certificate"
REFUSED = "MQTT refused our client certificate"
OTHER = "other"


def probe_port(host: str, port: int, context: ssl.SSLContext, timeout: float, client_id: str,
               certificate: bool = False) -> PortAnswer:
    """Connect to *host*:*port* over TLS with *context* and send an MQTT CONNECT as *client_id*;
    *certificate* says whether *context* presents a client certificate."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        return PortAnswer(UNKNOWN_HOST, str(exc))
    except ConnectionRefusedError:
        return PortAnswer(NOTHING)
    except TimeoutError:
        return PortAnswer(SILENT)
    except OSError as exc:
        return PortAnswer(OTHER, exc.strerror or str(exc))
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(_connect_packet(client_id))
            answer = _read_exactly(tls, 4)
            if answer is None or answer[0] != 0x20:
                return PortAnswer(WANTS_CERTIFICATE if answer is None else OTHER, "no CONNACK")
            tls.sendall(b"\xe0\x00")
            return PortAnswer(ACCEPTED if certificate else OPEN_MQTT, f"CONNACK code {answer[3]}")
    except ssl.SSLCertVerificationError as exc:
        return PortAnswer(WRONG_CA, exc.verify_message or str(exc))
    except ssl.SSLEOFError:
        # Mosquitto with require_certificate hangs up without an alert on a client that has none
        return PortAnswer(WANTS_CERTIFICATE, "the server closed the connection during TLS")
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).upper()
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason or "PACKET_LENGTH" in reason:
            return PortAnswer(NOT_TLS, exc.reason or str(exc))
        if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason or "BAD_CERTIFICATE" in reason:
            return PortAnswer(WANTS_CERTIFICATE, exc.reason or str(exc))
        return PortAnswer(OTHER, exc.reason or str(exc))
    except (ConnectionResetError, BrokenPipeError):
        return PortAnswer(WANTS_CERTIFICATE, "the connection was closed during TLS")
    except TimeoutError:
        return PortAnswer(SILENT, "TLS or MQTT did not answer in time")
    except OSError as exc:
        return PortAnswer(OTHER, exc.strerror or str(exc))
    finally:
        raw.close()


def _connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and a 10 s keep-alive (MQTT 3.1.1 section 3.1)."""
    name = client_id.encode("utf-8")
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + struct.pack("!H", len(name)) + name
    return bytes([0x10, len(body)]) + body


def _read_exactly(sock: ssl.SSLSocket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except ssl.SSLError as exc:
            if "CERTIFICATE_REQUIRED" in (exc.reason or "").upper():
                return None
            raise
        if not chunk:
            return None
        data += chunk
    return data


def probe_agent(agent: AgentConfig, identity: Identity | None, timeout: float = 3.0) -> list[Finding]:
    """Try both ports of *agent* and say what answers, and what that means for the config."""
    try:
        plain = tls_context(agent.ca_file)
    except ProvisioningError as exc:
        return [Finding(False, "agent", str(exc), AGENT_PACKAGE_HINT)]
    provision = probe_port(agent.host, agent.provision_port, plain, timeout, f"pibridge-check-{os.getpid()}")
    api = probe_port(agent.host, agent.api_port, plain, timeout, f"pibridge-check-{os.getpid()}")
    where = f"{agent.host}"
    swapped = provision.kind == WANTS_CERTIFICATE and api.kind == OPEN_MQTT
    findings = [
        _provisioning_finding(where, agent, provision, swapped),
        _api_finding(where, agent, api, swapped),
    ]
    if identity is not None and api.kind == WANTS_CERTIFICATE:
        findings.append(_identity_finding(where, agent, identity, timeout))
    return findings


def _common(kind: PortAnswer, agent: AgentConfig, subject: str) -> Finding | None:
    if kind.kind == NOTHING:
        return Finding(False, subject, "nothing listens there",
                       "start the agent (sudo systemctl start teamviewer-iot-agent) or check host and ports in [agent]")
    if kind.kind == SILENT:
        return Finding(False, subject, "does not answer (a firewall, or the host is down)",
                       "check host in [agent]; the agent runs on the Pi itself, so host is normally localhost")
    if kind.kind == UNKNOWN_HOST:
        return Finding(False, subject, f"the host name does not resolve ({kind.detail})", "check host in [agent]")
    if kind.kind == NOT_TLS:
        return Finding(False, subject, f"something that does not speak TLS listens there ({kind.detail})",
                       "another service holds this port; the agent's ports are 18883 and 18884")
    if kind.kind == WRONG_CA:
        return Finding(False, subject, f"the server's certificate is not signed by {agent.ca_file} ({kind.detail})",
                       "set ca_file to the agent's own CA (TeamViewerAuthority.crt)")
    if kind.kind == OTHER:
        return Finding(False, subject, f"unexpected answer: {kind.detail}", "check host and ports in [agent]")
    return None


def _provisioning_finding(where: str, agent: AgentConfig, answer: PortAnswer, swapped: bool) -> Finding:
    subject = f"provisioning port {where}:{agent.provision_port}"
    if swapped:
        return Finding(False, subject, "asks for a client certificate, so it is the API port: the ports are swapped",
                       f"in [agent] set provision_port = {agent.api_port} and api_port = {agent.provision_port}")
    common = _common(answer, agent, subject)
    if common is not None:
        return common
    if answer.kind == WANTS_CERTIFICATE:
        return Finding(False, subject, "asks for a client certificate, which only the API port does",
                       "provision_port is normally 18883; check [agent]")
    return Finding(True, subject, "the agent answers (TLS verified, MQTT without a client certificate)")


def _api_finding(where: str, agent: AgentConfig, answer: PortAnswer, swapped: bool) -> Finding:
    subject = f"API port {where}:{agent.api_port}"
    if swapped:
        return Finding(False, subject,
                       "takes clients without a certificate, so it is the provisioning port: the ports are swapped",
                       f"in [agent] set provision_port = {agent.api_port} and api_port = {agent.provision_port}")
    common = _common(answer, agent, subject)
    if common is not None:
        return common
    if answer.kind == OPEN_MQTT:
        return Finding(False, subject, "takes MQTT clients without a certificate: this is not the agent's API port",
                       "api_port is normally 18884; check [agent]")
    return Finding(True, subject, "the agent answers (TLS verified, a client certificate is required)")


def _identity_finding(where: str, agent: AgentConfig, identity: Identity, timeout: float) -> Finding:
    subject = f"client {identity.client_id} on {where}:{agent.api_port}"
    try:
        context = tls_context(agent.ca_file, identity.cert_file, identity.key_file)
    except ProvisioningError as exc:
        return Finding(False, subject, str(exc), "run `pibridge provision` again")
    answer = probe_port(agent.host, agent.api_port, context, timeout, identity.client_id, certificate=True)
    if answer.kind == ACCEPTED and answer.detail == "CONNACK code 0":
        return Finding(True, subject, "the agent accepts this client's certificate")
    if answer.kind == ACCEPTED:
        return Finding(False, subject, f"the agent refuses this client ({answer.detail}): it was deleted or revoked",
                       "set reprovision = true in [agent] once, or delete the identity files in the storage dir")
    return Finding(False, subject, f"the agent refuses this client's certificate ({answer.kind}: {answer.detail})",
                   "the client was probably deleted on the agent: set reprovision = true in [agent] once")
