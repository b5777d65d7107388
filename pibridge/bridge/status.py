"""``pibridge status``: how the bridge is doing, without asking the agent.

It reads two files: ``state.json``, which the running daemon rewrites every
few seconds (client ID, connection, per-sensor health) in its runtime
directory (``/run/pibridge`` under systemd) or else in the storage directory,
and the outbox in the storage directory (depth, oldest reading, dropped
readings).  So it
works whether the daemon runs or not, and whether the agent answers or not.

Exit code: 0 when the daemon runs and the agent is connected, 1 otherwise
(so scripts and monitoring can use it), 2 for a bad config.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pibridge.bridge.config import ConfigError, config_path, load_config
from pibridge.safetext import one_line

#: The daemon counts as running when its state file is younger than this (it rewrites it every 5 s).
FRESH_SECONDS = 20.0


#: The runtime directory systemd makes for the service (``RuntimeDirectory=pibridge``).
SERVICE_RUNTIME_DIR = Path("/run/pibridge")


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_state(storage_dir: Path) -> dict | None:
    """The newest state file of the daemon that uses *storage_dir*, or None if there is none.

    A file in a runtime directory counts only if it names *storage_dir*: several
    daemons with different storage may share a machine.
    """
    from pibridge.bridge.state import STATE_FILE, state_file

    storage = Path(storage_dir)
    found = []
    for path in dict.fromkeys([state_file(storage), SERVICE_RUNTIME_DIR / STATE_FILE, storage / STATE_FILE]):
        data = _load(path)
        if data is None:
            continue
        if path.parent != storage and data.get("storage_dir") != str(storage.resolve()):
            continue
        found.append(data)
    return max(found, key=lambda d: float(d.get("written_at") or 0), default=None)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _merge_live(outbox: dict, live: dict) -> None:
    """Add what the running daemon knows and the file does not show yet.

    The file has the figures of the last commit (at most a commit interval old); the state
    file is rewritten every few seconds, but it also counts what is only in memory: drops
    while the disk cannot be written, readings waiting to be written.  So each drop count is
    the larger of the two, and the depth adds the readings not on disk yet.
    """
    reasons = dict(outbox["dropped_reason"])
    for reason, n in (live.get("dropped_reason") or {}).items():
        if isinstance(n, int) and n > reasons.get(reason, 0):
            reasons[reason] = n
    outbox["dropped_reason"] = reasons
    outbox["dropped"] = sum(reasons.values())
    if isinstance(live.get("in_memory"), int):
        outbox["depth"] += live["in_memory"]
    if "healthy" in live:
        outbox["healthy"] = bool(live["healthy"])
        outbox["last_error"] = live.get("last_error") or outbox["last_error"]


def collect(storage_dir: Path) -> dict:
    """Everything ``pibridge status`` shows, as JSON-ready data."""
    from pibridge.bridge.daemon import OUTBOX_FILE
    from pibridge.outbox import read_stats

    now = time.time()
    state = read_state(storage_dir)
    running = bool(
        state
        and _pid_alive(state.get("pid"))
        and now - float(state.get("written_at") or 0) < FRESH_SECONDS
    )
    state_age = (now - float(state.get("written_at") or 0)) if state else None
    stats = read_stats(Path(storage_dir) / OUTBOX_FILE)
    outbox = None
    if stats is not None:
        outbox = outbox_json(stats, now)
        live = (state or {}).get("outbox") if running else None
        if isinstance(live, dict):
            _merge_live(outbox, live)
    return {"storage_dir": str(storage_dir), "running": running, "state_age_s": state_age, "state": state,
            "outbox": outbox}


def outbox_json(stats: Any, now: float) -> dict:
    """The outbox part of ``pibridge status --json`` from an :class:`pibridge.outbox.OutboxStats`."""
    return {
        "depth": stats.depth,
        "bytes": stats.bytes,
        "oldest_timestamp_ms": stats.oldest_timestamp_ms,
        "oldest_age_s": (now - stats.oldest_timestamp_ms / 1000) if stats.oldest_timestamp_ms else None,
        "dropped": stats.dropped,
        "dropped_reason": stats.dropped_reason,
        "last_error": stats.last_error,
        "healthy": stats.healthy,
    }


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _values(values: dict, units: dict[str, str]) -> str:
    parts = []
    for key, value in values.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float):
            value = f"{value:g}"
        unit = units.get(key, "")
        shown = f"{one_line(key)}={one_line(value)}"
        parts.append(shown + (f" {unit}" if unit and unit not in ("bool", "text") else ""))
    return ", ".join(parts) or "-"


def _not_sent(metrics: dict, width: int) -> list[str]:
    """One line per metric whose filters dropped readings or held them back, by cause."""
    lines = []
    for metric, counts in metrics.items():
        parts = []
        for verdict in ("dropped", "held"):
            causes = counts.get(verdict) or {}
            if causes:
                listed = ", ".join(f"{cause} {n}" for cause, n in sorted(causes.items()))
                parts.append(f"{verdict} {sum(causes.values())} ({listed})")
        if parts:
            lines.append(f"  {''.ljust(width)}  {metric}: not sent: {'; '.join(parts)}")
    return lines


def units_of(config) -> dict[str, dict[str, str]]:
    """sensor -> quantity -> unit, from the config (the state file holds bare numbers)."""
    return {s.name: {q.name: q.unit for q in s.quantities} for s in config.sensors}


def render(info: dict, units: dict[str, dict[str, str]] | None = None) -> str:
    """The human-readable report; *units* (:func:`units_of`) puts units after the values."""
    now = time.time()
    units = units or {}
    state = info["state"] or {}
    agent = state.get("agent") or {}
    age = info.get("state_age_s")
    lines = []
    if info["running"]:
        lines.append(f"daemon:     running (pid {state.get('pid')}, state written {_ago(age)})")
    elif state:
        lines.append(f"daemon:     NOT RUNNING (pid {state.get('pid')} is gone or silent; its last state was "
                     f"written {_ago(age)}; start it with: sudo systemctl start pibridge)")
    else:
        lines.append(f"daemon:     NOT RUNNING (no state file for {info['storage_dir']} yet)")
    lines.append(f"client ID:  {state.get('client_id') or '(not provisioned yet)'}")
    if agent:
        where = f"{agent.get('host')}:{agent.get('port')}"
        if agent.get("revoked"):
            reach = f"REFUSED our certificate at {where}: the client was deleted on the agent"
        elif agent.get("connected"):
            reach = f"reachable at {where} (last contact {_ago(now - float(agent.get('last_contact') or now))})"
        else:
            last = agent.get("last_contact")
            reach = f"UNREACHABLE at {where} (last contact {_ago(now - last) if last else 'never'})"
            if agent.get("problem"):
                reach += f": {one_line(agent['problem'])}"
        if not info["running"] and state:
            reach += " [when the daemon last ran]"
        lines.append(f"agent:      {reach}")
    outbox = info["outbox"]
    if outbox is None:
        lines.append("outbox:     empty (no outbox file yet)")
    else:
        text = f"{outbox['depth']} readings waiting"
        if outbox["oldest_age_s"] is not None:
            text += f", oldest taken {_ago(outbox['oldest_age_s'])}"
        text += f", {outbox['bytes'] / 1024:.0f} KiB"
        if outbox["dropped"]:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(outbox["dropped_reason"].items()))
            text += f"; {outbox['dropped']} dropped ({reasons})"
        else:
            text += "; 0 dropped"
        if not outbox["healthy"] or outbox["last_error"]:
            text += f"; last disk problem: {one_line(outbox['last_error'])}"
        lines.append(f"outbox:     {text}")
    delivery = state.get("delivery")
    if delivery:
        lines.append(
            f"delivery:   {delivery.get('mode')}, {delivery.get('delivered', 0)} readings acknowledged, "
            f"{delivery.get('in_flight', 0)} in flight, {delivery.get('refused', 0)} refused by the agent, "
            f"{delivery.get('unroutable', 0)} dropped as unroutable (no configured sensor or metric)"
        )
    sensors = state.get("sensors") or {}
    if sensors:
        if info["running"]:
            lines.append("sensors:")
            online, offline = "online ", "OFFLINE"
        else:
            lines.append(f"sensors:    as they were when the daemon last ran ({_ago(age)}); nothing is read now")
            online, offline = "was online ", "was OFFLINE"
        width = max(len(name) for name in sensors)
        for name, s in sensors.items():
            health = online if s.get("online") else offline
            when = s.get("last_timestamp_ms")
            taken = f"({_ago(now - when / 1000)})" if when else "(no reading yet)"
            values = _values(s.get("last_values") or {}, units.get(name, {}))
            line = f"  {one_line(name).ljust(width)}  {health}  {values} {taken}"
            if s.get("missed"):
                line += f"; {s['missed']} reading slots missed (read too slow for its interval)"
            if s.get("error_streak"):
                line += f"; {s['error_streak']} failed reads in a row: {one_line(s.get('last_error'))}"
            lines.append(line)
            lines.extend(_not_sent(s.get("not_sent") or {}, width))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pibridge status", description="Show identity, outbox depth and sensor health.")
    parser.add_argument("-c", "--config", help="config file (default: $PIBRIDGE_CONFIG or /etc/pibridge/config.toml)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        config = load_config(config_path(args.config))
    except ConfigError as exc:
        print(f"pibridge status: {exc}", file=sys.stderr)
        return 2
    info = collect(Path(config.storage.dir))
    print(json.dumps(info, indent=2) if args.json else render(info, units_of(config)))
    agent = (info["state"] or {}).get("agent") or {}
    return 0 if info["running"] and agent.get("connected") else 1
