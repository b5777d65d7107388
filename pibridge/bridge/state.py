"""The state file ``pibridge status`` reads: what the running daemon knows about itself.

It goes to ``$RUNTIME_DIRECTORY`` (a tmpfs under systemd, so the SD card is
spared) or else to the storage directory, rewritten every few seconds by the
control thread.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pibridge import sdnotify
from pibridge.bridge.registry import write_atomically
from pibridge.safetext import one_line, safe_value

if TYPE_CHECKING:
    from pibridge.bridge.daemon import Bridge
    from pibridge.bridge.scheduler import SensorReader

log = logging.getLogger("pibridge")

STATE_FILE = "state.json"


def state_file(storage: Path) -> Path:
    """Where the daemon keeps the state file ``pibridge status`` reads.

    Under systemd with ``RuntimeDirectory=pibridge`` that is ``$RUNTIME_DIRECTORY`` (a
    tmpfs: rewriting the file every few seconds then costs the SD card nothing),
    elsewhere the storage directory.
    """
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / STATE_FILE if runtime else storage / STATE_FILE


def snapshot(bridge: Bridge) -> dict:
    """What ``pibridge status`` shows, as JSON-ready data."""
    if bridge.connected:
        bridge.last_contact = time.time()
    routes = bridge.registry.routes() if bridge.registry else {}
    delivery = bridge.delivery
    return {
        "pid": os.getpid(),
        "storage_dir": str(bridge.storage.resolve()),
        "written_at": time.time(),
        "started_at": bridge.started_at,
        "client_id": bridge.client_id,
        "agent": {
            "host": bridge.config.agent.host,
            "port": bridge.config.agent.api_port,
            "connected": bridge.connected,
            "last_contact": bridge.last_contact,
            "connected_since": bridge.connected_since if bridge.connected else None,
            "reconnects": max(0, bridge.connections - 1),
            "revoked": bridge.revoked,
            "problem": one_line(bridge.problem) if bridge.problem else None,
        },
        "delivery": {
            "mode": delivery.mode if delivery else "offline",
            "delivered": delivery.delivered if delivery else 0,
            "spilled": delivery.spilled if delivery else 0,
            "buffered": delivery.buffered if delivery else 0,
            "replayed": delivery.replayed if delivery else 0,
            "in_flight": delivery.in_flight if delivery else 0,
            "unconfirmed": delivery.unconfirmed if delivery else 0,
            "unroutable": delivery.unroutable if delivery else 0,
            "refused": bridge.push_errors,
        },
        "outbox": _outbox(bridge),
        "sensors": {r.name: _sensor(bridge, r, routes) for r in bridge.readers},
    }

def _sensor(bridge: Bridge, reader: SensorReader, routes: dict) -> dict:
    health = reader.health.to_json()
    # Text from a device may hold anything; the status file and the terminal get it escaped.
    health["last_values"] = {k: safe_value(v) for k, v in health["last_values"].items()}
    if health["last_error"] is not None:
        health["last_error"] = one_line(health["last_error"])
    health["sensor_id"] = routes[reader.name].sensor_id if reader.name in routes else None
    mapping = bridge.mappings.get(reader.name)
    health["not_sent"] = mapping.counts() if mapping is not None else {}
    return health

def _outbox(bridge: Bridge) -> dict | None:
    """The outbox as the daemon sees it now: drops while the disk cannot be written are not in the file yet."""
    if bridge.outbox is None:
        return None
    stats = bridge.outbox.stats()
    return {
        "depth": stats.depth,
        "in_memory": stats.in_memory,
        "dropped": stats.dropped,
        "dropped_reason": dict(stats.dropped_reason),
        "write_errors": stats.write_errors,
        "last_error": stats.last_error,
        "healthy": stats.healthy,
    }

def write(bridge: Bridge) -> None:
    """Rewrite the state file (atomically, not durably: it is a view) and tell systemd the status."""
    snapshot_ = snapshot(bridge)
    path = state_file(bridge.storage)
    try:
        write_atomically(path, json.dumps(snapshot_, default=str), durable=False)
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc)
    offline = sum(1 for s in snapshot_["sensors"].values() if not s["online"])
    agent = "connected" if bridge.connected else ("client deleted on the agent" if bridge.revoked else "agent unreachable")
    sdnotify.status(
        f"{agent}; {snapshot_['delivery']['delivered']} readings delivered, "
        f"{bridge.outbox.stats().depth} in the outbox; {len(bridge.readers)} sensors, {offline} offline"
    )
