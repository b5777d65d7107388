"""Tell systemd how the daemon is doing: the ``sd_notify`` protocol, without libsystemd.

systemd starts a ``Type=notify`` service with ``$NOTIFY_SOCKET`` set to a Unix
datagram socket.  The service sends short ``KEY=value`` lines to it:

* ``READY=1`` once it is up, so ``systemctl start`` returns only then and
  units ordered after pibridge start after it;
* ``WATCHDOG=1`` regularly, so that systemd restarts a daemon that hangs;
* ``STOPPING=1`` when it begins to shut down;
* ``RELOADING=1`` with ``MONOTONIC_USEC=`` when it starts re-reading its
  config (``systemctl reload``), then ``READY=1`` again when it is done;
* ``STATUS=...`` a line of free text shown by ``systemctl status pibridge``.

Outside systemd (a terminal, the test suite, a laptop) ``$NOTIFY_SOCKET`` is not
set and every function here does nothing and returns ``False``, so the daemon
calls them unconditionally::

    from pibridge import sdnotify

    interval = sdnotify.watchdog_interval()      # None: no watchdog configured
    ...
    sdnotify.ready()                             # after the first connect or outbox open
    while running:
        ...
        if interval and time_since_last_ping >= interval / 2:
            sdnotify.watchdog()
    sdnotify.stopping()

Threading: every call opens its own socket, so any thread may call any function.
A call never blocks: a datagram to a socket nobody reads fails at once and the
function returns ``False``.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["notify", "ready", "reloading", "watchdog", "stopping", "status", "watchdog_interval"]


def _socket_address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        # systemd writes the Linux abstract namespace as a leading '@'; the kernel wants a NUL.
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    # Unset, empty, or a transport this module does not speak (systemd's "vsock:").
    return None


def notify(state: str) -> bool:
    """Send one or more newline-separated ``KEY=value`` assignments to systemd.

    Returns ``True`` when systemd's socket took the message, ``False`` when the
    process does not run under systemd (``$NOTIFY_SOCKET`` unset) or the socket
    is gone.  Never raises for a missing or broken socket: a daemon must keep
    running when its supervisor cannot be told.
    """
    address = _socket_address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def ready() -> bool:
    """Tell systemd that start-up is done (``READY=1``)."""
    return notify("READY=1")


def reloading() -> bool:
    """Tell systemd that a config reload has begun; send :func:`ready` when it is over.

    systemd matches the reload to the ``systemctl reload`` that asked for it by the
    ``MONOTONIC_USEC`` sent with it (the ``CLOCK_MONOTONIC`` time the reload began),
    as the protocol for ``Type=notify-reload`` requires.
    """
    return notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")


def watchdog() -> bool:
    """Tell systemd the main loop is alive (``WATCHDOG=1``); see :func:`watchdog_interval`."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    """Tell systemd that shut-down has begun (``STOPPING=1``)."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """Show ``text`` as the service's status line in ``systemctl status``.

    The protocol carries one line per key, so line breaks become spaces.
    """
    return notify("STATUS=" + " ".join(text.splitlines()))


def watchdog_interval() -> float | None:
    """Seconds within which systemd expects a :func:`watchdog` ping, or ``None``.

    ``None`` means no watchdog is configured for this process: ``$WATCHDOG_USEC``
    is unset, not a positive integer, or ``$WATCHDOG_PID`` names another process
    (a child that inherited the environment must not ping for its parent).
    Ping at half this interval, as systemd recommends, so one late loop turn is
    not fatal.
    """
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000
