"""The :class:`Simulator`: a local TeamViewer IoT Agent made of Mosquitto, a CA and the agent's API logic.

::

    from pibridge.sim import Simulator

    with Simulator("/tmp/sim", provision_port=18883, api_port=18884) as sim:
        print(sim.ca_file)            # what a client must trust
        ...                           # provision a client, push values
        print(sim.store.values(client_id))

Threads: ``start()``/``stop()`` and the fault methods are called from the
owner's thread.  The broker has a supervisor thread, the API logic a paho
network thread and a request worker (see :mod:`pibridge.sim.agent`), and
``drop_api_listener`` a timer thread that brings the broker back.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
from pathlib import Path

from .agent import DIALECTS, TEXT_ANSWERS, AgentLogic
from .broker import AGENT_USER, Broker, MosquittoMissing
from .faults import Faults
from .pki import Authority
from .store import Store

log = logging.getLogger("pibridge.sim")


def certificate_names(host: str) -> tuple[str, ...]:
    """The names the server certificate must carry: localhost, 127.0.0.1 and the listen address.

    Listening on every address (0.0.0.0 / ::), clients on the network reach
    the simulator by the machine's name or address, so those go in too.
    """
    names = ["localhost", "127.0.0.1"]
    if host in ("0.0.0.0", "::", ""):
        hostname = socket.gethostname()
        names += [hostname, socket.getfqdn()]
        try:
            names += [info[4][0] for info in socket.getaddrinfo(hostname, None)]
        except OSError:
            pass
    else:
        names.append(host)
    # A scoped IPv6 address (fe80::1%eth0) cannot go into a certificate.
    return tuple(dict.fromkeys(n for n in names if n and "%" not in n))


class SimulatorError(RuntimeError):
    """The simulator could not start (the message says why and what to do)."""


class Simulator:
    """A TeamViewer IoT Agent stand-in with its state in *state_dir*.

    The first start creates the CA (``ca.crt``), the server certificate
    and ``state.db``; later starts reuse them, so client certificates,
    sensor and metric IDs survive a restart.

    *dialect* (``reference``, ``vendor`` or ``both``) chooses the topics
    served and answered on, *text_answers* (``json`` or ``bare``) how plain
    answers are encoded (see :mod:`pibridge.sim.agent`); *verbose* makes the
    API logic see requests on every topic, so it can log those it does not serve.
    """

    def __init__(self, state_dir, host: str = "127.0.0.1", provision_port: int = 18883, api_port: int = 18884,
                 dialect: str = "reference", text_answers: str = "json", verbose: bool = False):
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
        if text_answers not in TEXT_ANSWERS:
            raise ValueError(f"text_answers must be one of {', '.join(TEXT_ANSWERS)}, not {text_answers!r}")
        self.state_dir = Path(state_dir).absolute()
        self.host = host
        self.provision_port = int(provision_port)
        self.api_port = int(api_port)
        self.dialect = dialect
        self.text_answers = text_answers
        self.verbose = verbose
        self.faults = Faults()
        self.authority = Authority(self.state_dir, hosts=certificate_names(host))
        self.store: Store | None = None
        self.broker: Broker | None = None
        self._agent: AgentLogic | None = None
        self._restore_timer: threading.Timer | None = None
        self._lock = threading.RLock()

    @property
    def ca_file(self) -> Path:
        """The CA certificate a client must trust (``--cafile``)."""
        return self.authority.ca_file

    @property
    def agent(self) -> AgentLogic | None:
        """The API logic (None while stopped).  Tests use its stop()/start() to take it away from the broker."""
        return self._agent

    @property
    def started(self) -> bool:
        return self._agent is not None

    def start(self, timeout: float = 15.0) -> "Simulator":
        """Start the broker and the API logic; return once both are ready.

        Raises :class:`pibridge.sim.broker.MosquittoMissing` (with install
        instructions) if Mosquitto is not installed, and
        :class:`SimulatorError` if it cannot start (port in use ...).
        """
        with self._lock:
            if self.started:
                return self
            self.state_dir.mkdir(parents=True, exist_ok=True)
            if self.store is not None:
                self.store.close()  # the read-only view a previous stop() left
            store = Store(self.state_dir / "state.db")
            try:
                self.authority.ensure(store.revoked_serials())
                self.broker = Broker(self.state_dir, self.host, self.provision_port, self.api_port,
                                     self.authority.ca_file, self.authority.server_cert_file,
                                     self.authority.server_key_file, self.authority.crl_file)
                self.broker.write_files(store.revoked_clients())
                self.broker.start(timeout)
            except Exception as exc:
                store.close()
                if self.broker is not None:
                    self.broker.close()
                if isinstance(exc, MosquittoMissing):
                    raise
                raise SimulatorError(f"cannot start the simulator in {self.state_dir}: {exc}") from exc
            self.store = store
            self._agent = AgentLogic(store, self.authority, self.faults, self.broker.socket_path, AGENT_USER,
                                     self.broker.agent_password, self._revoke, dialect=self.dialect,
                                     text_answers=self.text_answers, verbose=self.verbose)
            self._agent.start()
            if not self._agent.wait_ready(timeout):
                tail = self.broker.log_tail()
                self.stop()
                raise SimulatorError(f"the API logic did not connect to the broker within {timeout:g} s. "
                                     f"End of the broker log:\n{tail}")
            log.info("simulator ready: provisioning %s:%d, API %s:%d, CA %s",
                     self.host, self.provision_port, self.host, self.api_port, self.ca_file)
            return self

    def stop(self) -> None:
        """Stop the API logic and the broker.  Safe to call twice; :attr:`store` stays readable."""
        with self._lock:
            if self._restore_timer is not None:
                self._restore_timer.cancel()
                self._restore_timer = None
            if self._agent is not None:
                self._agent.stop()
                self._agent = None
            if self.broker is not None:
                self.broker.close()
                self.broker.cleanup()
            if self.store is not None and not self.store.read_only:
                # What arrived stays readable after the stop (tests check it then).
                self.store.close()
                try:
                    self.store = Store(self.store.path, read_only=True)
                except (OSError, sqlite3.Error) as exc:
                    log.warning("state %s is no longer readable: %s", self.store.path, exc)

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def describe(self) -> str:
        """One line: where the simulator listens and where the CA is."""
        return (f"pibridge sim: provisioning on {self.host}:{self.provision_port}, API on "
                f"{self.host}:{self.api_port}, CA {self.ca_file}, state {self.state_dir}; "
                f"dialect {self.dialect}, text answers {self.text_answers}")

    # -- revocation ----------------------------------------------------------

    def _revoke(self, client_id: str) -> None:
        """Lock a deleted client out: CRL (no new TLS session) and ACL deny (nothing on a live one)."""
        self.authority.write_crl(self.store.revoked_serials())
        self.broker.write_acl(self.store.revoked_clients())
        self.broker.reload()

    # -- outages -------------------------------------------------------------

    @property
    def broker_running(self) -> bool:
        return self.broker is not None and self.broker.running

    def stop_broker(self) -> None:
        """Stop Mosquitto (SIGTERM); every client loses its connection until :meth:`start_broker`."""
        with self._lock:
            self.broker.stop()
            self._agent.disconnected.wait(5)

    def start_broker(self, timeout: float = 15.0) -> None:
        """Start Mosquitto again and return once the API logic is connected and subscribed."""
        with self._lock:
            if self._restore_timer is not None:
                self._restore_timer.cancel()
                self._restore_timer = None
            self.broker.start(timeout)
            if not self._agent.wait_ready(timeout):
                raise SimulatorError(f"the API logic did not reconnect within {timeout:g} s. "
                                     f"End of the broker log:\n{self.broker.log_tail()}")

    def drop_api_listener(self, seconds: float) -> None:
        """Stop the broker now and start it again after *seconds* (in the background).

        Returns once the broker is down.  :meth:`wait_until_ready` waits
        for it to be back; :meth:`start_broker` ends the outage early.
        """
        with self._lock:
            self.broker.stop()
            # Once paho has seen the connection drop, `ready` tells the truth again.
            self._agent.disconnected.wait(5)
            self._restore_timer = threading.Timer(seconds, self._restore)
            self._restore_timer.daemon = True
            self._restore_timer.start()

    def _restore(self) -> None:
        try:
            with self._lock:
                if self._agent is None or self._restore_timer is None:
                    return
                self._restore_timer = None
                self.broker.start()
        except Exception:
            log.exception("could not bring the broker back after an outage")

    def wait_until_ready(self, timeout: float) -> bool:
        """Wait until the broker runs and the API logic is subscribed; False on timeout."""
        return self._agent is not None and self._agent.wait_ready(timeout) and self.broker_running
