"""Mosquitto as the simulator's broker: the config it runs with and the supervised process.

Three listeners share one ACL file and one password file:

provisioning (``provision_port``)
    TLS with the simulator's server certificate, no client certificate.  An
    anonymous client may only publish a CSR (``/v1.0/createClient``, or the
    vendor SDKs' ``/createConnector``) and read ``/certBack/<hash>``.
API (``api_port``)
    Mutual TLS: the client certificate must be signed by the simulator's CA
    and not be on its CRL; the certificate's CommonName is the MQTT username
    (``use_identity_as_username``, so no password is asked).  The ACL
    pattern lets every client read and write only ``/v1.0/<its id>/...``; a
    deleted client gets an explicit deny on everything.
agent
    A Unix socket in the broker's directory.  The simulator's API logic
    connects there as ``pibridge-sim-agent`` with a password only the
    running simulator knows (new at every start, stored hashed).  No
    certificate can carry that name: the CA only ever signs 32-hex client
    IDs, so no API client can stand in for it.

The broker persists its sessions and queued messages to ``broker/`` in the
state directory, so requests queued for the API logic survive a restart.

Started as root, Mosquitto drops to the ``mosquitto`` user.  The files it
reads (config, ACLs, password file, server key, CRL) are then given to that
user's group, and its persistence directory to that user.  If that user
cannot reach the state directory (a 0700 parent such as pytest's temporary
directories), the config says ``user root`` instead, so the simulator still
runs; the CA key is 0600 and owned by the simulator's user in every case.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import os
import pwd
import queue
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

INSTALL_HINT = (
    "pibridge sim needs the Mosquitto broker, and `mosquitto` is not on PATH. "
    "Install it: on Debian / Raspberry Pi OS / Ubuntu `sudo apt install mosquitto` "
    "(then `sudo systemctl disable --now mosquitto` if you do not want the system broker running), "
    "on Fedora `sudo dnf install mosquitto`, on macOS `brew install mosquitto`."
)

AGENT_USER = "pibridge-sim-agent"
#: Sun path limit (108 bytes on Linux) minus room for the terminating byte.
_MAX_SOCKET_PATH = 100


class MosquittoMissing(RuntimeError):
    """The ``mosquitto`` executable is not installed or not on PATH."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix + INSTALL_HINT)


class BrokerFailed(RuntimeError):
    """Mosquitto did not start, or exited; the message carries the end of its log."""


def find_mosquitto() -> str:
    """Path of the mosquitto executable.

    ``$PIBRIDGE_MOSQUITTO`` names one explicitly (a custom build); otherwise
    PATH is searched, then /usr/sbin and /usr/local/sbin, where Debian and
    source installs put it but an ordinary user's PATH often does not look.
    """
    explicit = os.environ.get("PIBRIDGE_MOSQUITTO")
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise MosquittoMissing(f"PIBRIDGE_MOSQUITTO={explicit} is not an executable file. ")
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not path:
        raise MosquittoMissing()
    return path


_PR_SET_PDEATHSIG = 1
#: Looked up once here: the child between fork and exec should do as little as possible.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent(parent_pid: int):
    """A preexec_fn asking the kernel to SIGTERM the child when the thread that started it ends (Linux)."""
    def setup() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent_pid:
                os._exit(1)
    return setup


def hash_password(password: str) -> str:
    """A Mosquitto password-file hash (``$7$``: PBKDF2-SHA512, the format of mosquitto_passwd 2.x)."""
    salt = os.urandom(12)
    iterations = 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """True if every directory from / down to *path* lets user uid/gid through (search permission)."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


class Broker:
    """One supervised Mosquitto process serving the simulator's three listeners.

    ``start()`` writes the config and starts the process and returns when
    the listeners accept connections; ``stop()`` ends it with SIGTERM (so it
    saves its persistence file) and returns when it is gone; ``reload()``
    sends SIGHUP, which makes Mosquitto re-read the ACL file and the CRL.

    If the process dies while it should be running, the supervisor thread
    restarts it (and says so in the log).  ``close()`` ends it for good.
    """

    def __init__(self, state_dir: Path, host: str, provision_port: int, api_port: int,
                 ca_file: Path, cert_file: Path, key_file: Path, crl_file: Path):
        self.state_dir = Path(state_dir)
        self.host = host
        self.provision_port = provision_port
        self.api_port = api_port
        self.ca_file, self.cert_file, self.key_file, self.crl_file = ca_file, cert_file, key_file, crl_file
        self.config_file = self.state_dir / "mosquitto.conf"
        self.log_file = self.state_dir / "mosquitto.log"
        self.persistence_dir = self.state_dir / "broker"
        self.acl_file = self.state_dir / "acl"
        self.password_file = self.state_dir / "agent.passwd"
        self.socket_path = self._choose_socket_path()
        self.agent_password = base64.urlsafe_b64encode(os.urandom(24)).decode()
        self.run_as: str | None = None
        self._executable = find_mosquitto()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._commands: queue.Queue = queue.Queue()
        self._supervisor: threading.Thread | None = None
        #: How often the supervisor brought a crashed Mosquitto back.
        self.restarts = 0

    def _choose_socket_path(self) -> Path:
        # In the broker's own directory: Mosquitto binds it after dropping
        # privileges, so it must be able to create files there.
        path = self.persistence_dir / "agent.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        # A deep state directory would overflow the socket path limit; a
        # private directory under the system temp dir is short enough.
        return Path(tempfile.mkdtemp(prefix="pibridge-sim-")) / "agent.sock"

    # -- files ---------------------------------------------------------------

    def write_files(self, revoked_clients: list[str]) -> None:
        """Write config, ACL and password file, and make them readable by the user Mosquitto runs as."""
        self.persistence_dir.mkdir(exist_ok=True)
        self.run_as = self._choose_user()
        self._write(self.password_file, f"{AGENT_USER}:{hash_password(self.agent_password)}\n")
        self.write_acl(revoked_clients)
        self._write(self.config_file, self._config())
        self._give_to_broker_user()

    def write_acl(self, revoked_clients: list[str]) -> None:
        """The ACL of all listeners: CSR exchange for anonymous clients, own topics for API clients.

        A deleted client's user gets ``topic deny #``, which Mosquitto
        checks before the pattern that would otherwise allow its topics.
        """
        lines = [
            "# anonymous clients (provisioning listener): publish a CSR, read the certificate\n",
            "topic write /v1.0/createClient\n",
            "topic write /createConnector\n",
            "topic read /certBack/+\n",
            "topic read /certBack/+/error\n",
            "\n# the simulator's API logic (agent socket, password only the simulator knows)\n",
            f"user {AGENT_USER}\n",
            "topic readwrite #\n",
        ]
        for client_id in revoked_clients:
            lines.append(f"\n# deleted client\nuser {client_id}\ntopic deny #\n")
        lines.append("\n# API clients: username = certificate CommonName = client ID\n")
        lines.append("pattern readwrite /v1.0/%u/#\n")
        self._write(self.acl_file, "".join(lines))

    def _write(self, path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o640 if self.run_as not in (None, "root") else 0o600)
        if self.run_as not in (None, "root"):
            os.chown(tmp, 0, pwd.getpwnam(self.run_as).pw_gid)
        os.replace(tmp, path)

    def _choose_user(self) -> str | None:
        """Which user Mosquitto runs as: None (not root: it stays the simulator's user), 'mosquitto' or 'root'."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("mosquitto")
        except KeyError:
            return "root"
        if _traversable_by(self.state_dir, entry.pw_uid, entry.pw_gid):
            return "mosquitto"
        return "root"

    def _give_to_broker_user(self) -> None:
        if self.run_as in (None, "root"):
            return
        entry = pwd.getpwnam(self.run_as)
        for path in (self.key_file, self.crl_file, self.config_file):
            os.chown(path, 0, entry.pw_gid)
            os.chmod(path, 0o640 if path != self.crl_file else 0o644)
        for path in {self.persistence_dir, *self.persistence_dir.iterdir(), self.socket_path.parent}:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _config(self) -> str:
        tls = f"cafile {self.ca_file}\ncertfile {self.cert_file}\nkeyfile {self.key_file}\n"
        user = f"user {self.run_as}\n" if self.run_as else ""
        # Security settings are global, not per listener: Mosquitto 2.0
        # cannot re-associate a persisted session with a Unix-socket
        # listener's settings after a restart, and would then drop what was
        # queued for the API logic.  The listeners still differ where it
        # matters: only the API listener requires and maps certificates.
        return (
            "# Written by pibridge sim at every start; edits are overwritten.\n"
            f"{user}"
            "persistence true\n"
            f"persistence_location {self.persistence_dir}/\n"
            "autosave_interval 5\n"
            # The API logic's session must hold every request queued while it reconnects.
            "max_queued_messages 100000\n"
            # Answers are small packets; without this, delayed ACKs add ~40 ms to each.
            "set_tcp_nodelay true\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
            "allow_anonymous true\n"
            f"password_file {self.password_file}\n"
            f"acl_file {self.acl_file}\n"
            "\n# provisioning: CSR in, certificate out; no client certificate\n"
            f"listener {self.provision_port} {self.host}\n"
            f"{tls}"
            "\n# API: client certificate required, identity = CommonName\n"
            f"listener {self.api_port} {self.host}\n"
            f"{tls}"
            "require_certificate true\n"
            "use_identity_as_username true\n"
            f"crlfile {self.crl_file}\n"
            "\n# the simulator's own API logic, local only\n"
            f"listener 0 {self.socket_path}\n"
        )

    # -- process -------------------------------------------------------------

    @property
    def running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self, timeout: float = 10.0) -> None:
        """Start Mosquitto and return when its listeners are open (BrokerFailed otherwise)."""
        self._command("start", timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Mosquitto (SIGTERM, so it saves sessions and queued messages) and wait until it is gone."""
        self._command("stop", timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop Mosquitto for good and end the supervisor thread."""
        supervisor = self._supervisor
        if supervisor is not None and supervisor.is_alive():
            self._command("close", timeout)
            supervisor.join(timeout)

    def _command(self, name: str, timeout: float) -> None:
        with self._lock:
            if self._supervisor is None or not self._supervisor.is_alive():
                self._supervisor = threading.Thread(target=self._supervise, name="sim-broker", daemon=True)
                self._supervisor.start()
            reply: Future = Future()
            self._commands.put((name, timeout, reply))
        reply.result()

    def _supervise(self) -> None:
        """The one thread that starts, watches, restarts and stops Mosquitto.

        Mosquitto is started from this thread and told (PR_SET_PDEATHSIG)
        to get SIGTERM when the thread that started it ends.  This thread
        lives until :meth:`close`, so Mosquitto never outlives the
        simulator, even when the simulator is killed with SIGKILL: no
        orphan broker keeps the ports.
        """
        wanted = False
        retry_at = 0.0
        while True:
            try:
                name, timeout, reply = self._commands.get(timeout=0.2)
            except queue.Empty:
                if wanted and not self.running and time.monotonic() >= retry_at:
                    self._restart_after_crash()
                    retry_at = time.monotonic() + 1.0
                continue
            try:
                if name == "start":
                    if not self.running:
                        self._spawn(timeout)
                    wanted = True
                else:
                    wanted = False
                    self._terminate(timeout)
                reply.set_result(None)
            except BaseException as exc:
                reply.set_exception(exc)
            if name == "close":
                return

    def _restart_after_crash(self) -> None:
        with open(self.log_file, "ab") as log:
            log.write(f"pibridge sim: mosquitto exited unexpectedly (status {self._process.returncode}), "
                      "restarting\n".encode())
        try:
            self._spawn(10.0)
            self.restarts += 1
        except BrokerFailed as exc:
            with open(self.log_file, "ab") as log:
                log.write(f"pibridge sim: restart failed, trying again in 1 s: {exc}\n".encode())

    def _spawn(self, timeout: float) -> None:
        if self.socket_path.exists():
            self.socket_path.unlink()
        log = open(self.log_file, "ab")
        try:
            self._process = subprocess.Popen(
                [self._executable, "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C in the terminal reaches the simulator,
                # which stops the broker in order, not the broker directly.
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerFailed(
                    f"mosquitto exited with status {self._process.returncode} at start "
                    f"(ports {self.provision_port}/{self.api_port} on {self.host} in use?). "
                    f"End of {self.log_file}:\n{self.log_tail()}")
            # Mosquitto opens its listeners in config order before serving;
            # the agent socket comes last, so once it exists all are open.
            if self.socket_path.exists():
                return
            time.sleep(0.02)
        self._terminate()
        raise BrokerFailed(f"mosquitto did not open its listeners within {timeout:g} s. "
                           f"End of {self.log_file}:\n{self.log_tail()}")

    def _terminate(self, timeout: float = 10.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads the ACL, the password file and the CRL (existing connections stay)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGHUP)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        """Remove the socket (and its private directory if one was needed) after the final stop."""
        if self.socket_path.exists():
            self.socket_path.unlink()
        if self.socket_path.parent != self.persistence_dir:
            shutil.rmtree(self.socket_path.parent, ignore_errors=True)
