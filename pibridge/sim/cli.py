"""``pibridge sim``: run the agent simulator, look at what it received, switch faults on and off.

::

    pibridge sim --state-dir ~/sim                      # run until Ctrl-C / SIGTERM
    pibridge sim --state-dir ~/sim --text-answers bare --dialect vendor -v
    pibridge sim --state-dir ~/sim --http 127.0.0.1:8089  # ... with a page of what arrived
    pibridge sim --state-dir ~/sim --dump               # what arrived, per sensor and metric
    pibridge sim --state-dir ~/sim --dump --json --client ID --sensor ID --metric ID
    pibridge sim --state-dir ~/sim fault silent on      # a running simulator stops answering
    pibridge sim --state-dir ~/sim fault error 3        # ... answers every request with error 3
    pibridge sim --state-dir ~/sim fault drop 10        # ... takes the broker away for 10 s
    pibridge sim --state-dir ~/sim fault clear          # back to normal
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from pibridge.agent.errors import ErrorCode

from .agent import DIALECTS, TEXT_ANSWERS
from .broker import MosquittoMissing
from .faults import FaultFile
from .simulator import Simulator, SimulatorError
from .store import Store


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pibridge sim",
        description="Run a local stand-in for the TeamViewer IoT Agent (Mosquitto + the agent's MQTT API).",
        epilog="fault commands (for a running simulator with the same --state-dir): "
               "fault silent on|off, fault error CODE|off, fault drop SECONDS, fault clear, fault show",
    )
    p.add_argument("--state-dir", required=True, type=Path,
                   help="directory for the CA, certificates, broker files and state.db (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--provision-port", type=int, default=18883, help="provisioning port (default 18883)")
    p.add_argument("--api-port", type=int, default=18884, help="API port (default 18884)")
    p.add_argument("--silent", action="store_true", help="start with the 'stop answering' fault on")
    p.add_argument("--error-code", type=int, metavar="CODE", help="start answering every request with this error")
    p.add_argument("--text-answers", choices=TEXT_ANSWERS, default="json",
                   help='plain answers as JSON strings ("Sensor was updated." with the quotes, as the reference '
                        "prints them; the default) or as bare text")
    p.add_argument("--dialect", choices=DIALECTS, default="reference",
                   help="reference: only the API reference's topics (default); vendor: also the request topics of "
                        "the vendor SDKs, answered where they listen; both: answers on both")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="serve a page of what the agent received, e.g. 127.0.0.1:8089 (see docs/web.md)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log every request and answer, and messages on topics the simulator does not serve")
    p.add_argument("--dump", action="store_true", help="print the stored clients, sensors, metrics and values, then exit")
    p.add_argument("--json", action="store_true", help="with --dump: print JSON")
    p.add_argument("--client", help="with --dump: only this client ID")
    p.add_argument("--sensor", help="with --dump: only this sensor ID")
    p.add_argument("--metric", help="with --dump: only this metric ID")
    p.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.error_code is not None and args.error_code not in {int(c) for c in ErrorCode}:
        parser.error(f"--error-code must be one of the reference's codes 1-28, not {args.error_code}")
    if args.command:
        if args.command[0] != "fault":
            parser.error(f"unknown command {' '.join(args.command)!r}; did you mean `fault ...`?")
        return _fault(args.state_dir, args.command[1:], parser)
    if args.dump:
        return _dump(args)
    if args.http:
        from pibridge.web.settings import parse_listen

        try:
            args.http = parse_listen(args.http)
        except ValueError as exc:
            parser.error(f"--http: {exc}")
    return _run(args)


# -- run -----------------------------------------------------------------------


def _run(args) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    sim = Simulator(args.state_dir, host=args.host, provision_port=args.provision_port, api_port=args.api_port,
                    dialect=args.dialect, text_answers=args.text_answers, verbose=args.verbose)
    fault_file = FaultFile(args.state_dir)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sim.start()
    except MosquittoMissing as exc:
        print(f"pibridge sim: {exc}", file=sys.stderr)
        return 1
    except (SimulatorError, OSError) as exc:
        print(f"pibridge sim: {exc}", file=sys.stderr)
        return 1
    page = None
    try:
        # Faults belong to one run: a file left by an earlier run is cleared.
        fault_file.path.unlink(missing_ok=True)
        sim.faults.silent = args.silent
        sim.faults.set_error_code(args.error_code)
        print(f"{sim.describe()}; faults: {sim.faults.describe()}; Ctrl-C to stop", flush=True)
        if args.http:
            from pibridge.web.server import WebServer
            from pibridge.web.sim_view import SimView

            try:
                page = WebServer(SimView(sim), *args.http).start()
            except OSError as exc:
                print(f"pibridge sim: --http: cannot listen on {args.http[0]}:{args.http[1]}: "
                      f"{exc.strerror or exc}; choose another port", file=sys.stderr)
                return 1
            print(f"pibridge sim: page of what the agent received at {page.url}", flush=True)
        seen = fault_file.mtime()
        while not stop.wait(0.5):
            mtime = fault_file.mtime()
            if mtime != seen:
                seen = mtime
                _apply_fault_file(sim, fault_file)
                seen = fault_file.mtime()
    finally:
        if page is not None:
            page.stop()
        sim.stop()
    return 0


def _apply_fault_file(sim: Simulator, fault_file: FaultFile) -> None:
    try:
        data = fault_file.read()
    except ValueError as exc:
        print(f"pibridge sim: ignoring faults: {exc}", file=sys.stderr)
        return
    sim.faults.silent = bool(data.get("silent", False))
    try:
        sim.faults.set_error_code(data.get("error_code"))
    except ValueError:
        print(f"pibridge sim: ignoring error_code {data.get('error_code')!r} in {fault_file.path} "
              "(not a code 1-28)", file=sys.stderr)
        sim.faults.error_code = None
    seconds = data.get("drop_api_seconds")
    if seconds is not None:
        fault_file.update(drop_api_seconds=None)
        print(f"pibridge sim: broker down for {seconds} s", file=sys.stderr, flush=True)
        sim.drop_api_listener(float(seconds))
    print(f"pibridge sim: faults: {sim.faults.describe()}", file=sys.stderr, flush=True)


# -- fault ---------------------------------------------------------------------


def _fault(state_dir: Path, words: list[str], parser) -> int:
    if not state_dir.is_dir():
        print(f"pibridge sim: no simulator state in {state_dir}", file=sys.stderr)
        return 1
    fault_file = FaultFile(state_dir)
    match words:
        case ["silent", ("on" | "off") as onoff]:
            data = fault_file.update(silent=onoff == "on")
        case ["error", "off"]:
            data = fault_file.update(error_code=None)
        case ["error", code] if code.isdigit() and int(code) in {int(c) for c in ErrorCode}:
            data = fault_file.update(error_code=int(code))
        case ["drop", seconds] if _is_number(seconds) and float(seconds) > 0:
            data = fault_file.update(drop_api_seconds=float(seconds))
        case ["clear"]:
            fault_file.path.unlink(missing_ok=True)
            data = {}
        case ["show"]:
            data = fault_file.read()
        case _:
            parser.error("fault commands: silent on|off, error CODE(1-28)|off, drop SECONDS, clear, show")
    print(json.dumps(data))
    return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# -- dump ------------------------------------------------------------------------


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")


def collect(store: Store, client: str | None = None, sensor: str | None = None, metric: str | None = None) -> list[dict]:
    """Everything stored, per client: its sensors with their metrics, and the values in arrival order."""
    result = []
    for c in store.clients():
        if client and c["client_id"] != client:
            continue
        sensors = []
        for s in store.sensors(c["client_id"]):
            if sensor and s["sensor_id"] != sensor:
                continue
            s["metrics"] = store.metrics(c["client_id"], s["sensor_id"])
            sensors.append(s)
        values = store.values(c["client_id"], sensor, metric)
        result.append({**c, "sensors": sensors, "values": values})
    return result


def _dump(args) -> int:
    try:
        store = Store(args.state_dir / "state.db", read_only=True)
    except FileNotFoundError as exc:
        print(f"pibridge sim: {exc}", file=sys.stderr)
        return 1
    try:
        data = collect(store, args.client, args.sensor, args.metric)
    finally:
        store.close()
    if args.client and not data:
        print(f"pibridge sim: no client {args.client} in {args.state_dir / 'state.db'}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    if not data:
        print("no clients yet")
    for c in data:
        state = " (deleted)" if c["revoked"] else ""
        print(f"client {c['client_id']}  {c['name']!r}{state}")
        for s in c["sensors"]:
            print(f"  sensor {s['sensor_id']}  {s['name']!r}" + (f"  state {s['state']}" if s["state"] else ""))
            for m in s["metrics"]:
                unit = m["value_unit"] or f"{m['value_type']} {m['value_annotation']!r}"
                last = "" if m["last_value"] is None else f"  last {m['last_value']!r}"
                print(f"    metric {m['metric_id']}  {m['name']!r}  {unit}{last}")
        print(f"  {len(c['values'])} values received")
        for v in c["values"]:
            print(f"    #{v['id']}  {_when(v['timestamp_ms'])}  {v['sensor_id']}/{v['metric_id']} = {v['value']!r}"
                  f"  (received {_when(int(v['received_at'] * 1000))})")
    return 0
