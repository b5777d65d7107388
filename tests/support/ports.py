"""Ports for the brokers and servers the tests start.

They are taken below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``,
32768-60999 by default).  A test that stops a broker and starts it again on the
same port (an outage) must find that port free again, and while it is down any
outgoing connection on the machine -- the other shard's clients included -- may
be handed a free port of the ephemeral range as its source port.  A port of
ours below that range can only be taken by another server that picks it.
"""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

_LOWEST = 10_000
_rng = random.Random(os.getpid() ^ time.time_ns())
_given: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, outside the ephemeral range where it can."""
    top = _ephemeral_start()
    for _ in range(500 if top > _LOWEST + 1000 else 0):
        port = _rng.randrange(_LOWEST, top)
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
