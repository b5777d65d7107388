"""``pibridge demo``: the agent simulator and the bridge with a few pretend sensors, on one screen.

Nothing to wire and no TeamViewer IoT Agent needed: it starts the simulator
(state in a temporary directory, or ``--state-dir``), provisions a client,
creates the sensors and metrics and pushes made-up readings from three mock
devices.  The terminal shows the latest values and how many readings were
read, delivered and wait in the outbox; two local web pages show the same
live (the bridge's page, as the daemon serves it with ``[http]``) and what
the agent received (the simulator's page).

Press ``c`` (or the button on the simulator's page) to cut the agent off for
30 s: the readings wait in the outbox and are replayed in order once it is
back.  ``q`` or Ctrl-C stops it cleanly.

The ``door`` sensor reports open/closed changes the moment they happen
(like an edge-triggered GPIO input); the others are read on their interval.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

from pibridge.terminal import Keys, LiveArea, LiveLogHandler

DEFAULT_SENSORS = """
[[sensors]]
name = "greenhouse"
driver = "mock"
interval = 2.0
metrics = ["temperature", "humidity", "illuminance"]
day_seconds = 120.0
seed = 1

[[sensors]]
name = "power meter"
driver = "mock"
interval = 1.0
metrics = ["voltage", "current", "power"]
day_seconds = 60.0
seed = 2

[[sensors]]
name = "door"
driver = "mock"
interval = 10.0
metrics = ["contact"]
event_interval = 3.0
seed = 3
"""

#: The bridge's page; the simulator's is on the next port.  Taken ports fall back to free ones.
DEFAULT_HTTP_PORT = 8088


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_or_free(port: int) -> int:
    """*port* if nothing listens on it now, else a free one (0 stays 0: the server picks)."""
    if port == 0:
        return 0
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return _free_port()
    return port


def demo_config(sim, storage_dir: Path, http_port: int | None = None) -> str:
    """The embedded demo config, pointing at the simulator *sim*, with the page on *http_port*."""
    http = "" if http_port is None else f'[http]\nlisten = "127.0.0.1:{http_port}"\nhistory = "10min"\n\n'
    return (
        "[agent]\n"
        'host = "127.0.0.1"\n'
        f"provision_port = {sim.provision_port}\n"
        f"api_port = {sim.api_port}\n"
        f'ca_file = "{sim.ca_file}"\n'
        'client_name = "pibridge-demo"\n'
        "timeout = 5.0\n\n"
        "[storage]\n"
        f'dir = "{storage_dir}"\n'
        "ack_window = 2.0\n\n" + http + DEFAULT_SENSORS
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


class Screen:
    """The live table: a line for the agent, one for the readings, one per sensor, one of keys."""

    def __init__(self, bridge, sim, keys: bool = False, cut_seconds: float = 30.0):
        self.bridge = bridge
        self.sim = sim
        self.keys = keys
        self.cut_seconds = cut_seconds
        self._units = {}
        for reader in bridge.readers:
            for q in reader.driver.quantities():
                self._units[(reader.name, q.name)] = q.unit

    def lines(self, stopped: bool = False) -> list[str]:
        bridge = self.bridge
        delivery = bridge.delivery
        depth = bridge.outbox.stats().depth
        read = sum(r.health.reads for r in bridge.readers)
        if stopped:
            agent = "bridge stopped"
        elif bridge.connected:
            agent = "agent connected"
        elif not self.sim.broker_running:
            agent = "agent NOT CONNECTED (cut off)"
        else:
            agent = "agent NOT CONNECTED"
        rows = [
            f"{agent} | client {bridge.client_id or '-'}",
            f"readings: {read} read, {delivery.delivered} delivered, {delivery.in_flight} in flight, "
            f"outbox {depth} | mode {delivery.mode}",
        ]
        width = max(len(r.name) for r in bridge.readers)
        for reader in bridge.readers:
            h = reader.health
            shown = []
            for quantity, value in h.last_values.items():
                unit = self._units.get((reader.name, quantity), "")
                if isinstance(value, bool):
                    text = "closed" if value else "open"
                elif isinstance(value, float):
                    text = f"{value:g} {unit}"
                else:
                    text = f"{value} {unit}"
                shown.append(f"{quantity} {text}")
            state = "" if h.online else "  OFFLINE"
            rows.append(f"  {reader.name.ljust(width)}  {', '.join(shown) or 'waiting for a reading'}{state}")
        if self.keys and not stopped:
            rows.append(f"keys: c = cut the agent off for {self.cut_seconds:g} s, q = quit")
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pibridge demo",
        description="Run the agent simulator and the bridge with mock sensors, with two local web pages "
                    "(c cuts the agent off for 30 s, q or Ctrl-C stops).",
    )
    parser.add_argument("--state-dir", type=Path, help="keep simulator and bridge state here (default: a temporary directory)")
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    parser.add_argument("--refresh", type=float, help="seconds between screen updates (default: 1 on a terminal, 5 otherwise)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT,
                        help=f"port of the bridge's page on 127.0.0.1; the simulator's is the next one "
                             f"(default {DEFAULT_HTTP_PORT}; a taken port is replaced by a free one; 0: any)")
    parser.add_argument("--open", action="store_true", help="open both pages in the web browser")
    parser.add_argument("--cut-seconds", type=float, default=30.0,
                        help="how long the c key (and the page's button) cuts the agent off (default 30)")
    args = parser.parse_args(argv)

    from pibridge.bridge.config import parse_config
    from pibridge.bridge.daemon import Bridge
    from pibridge.bridge.logs import setup_logging
    from pibridge.sim import Simulator

    setup_logging(args.log_level)
    with tempfile.TemporaryDirectory(prefix="pibridge-demo-") as tmp:
        base = args.state_dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        sim = Simulator(base / "sim", provision_port=_free_port(), api_port=_free_port())
        try:
            sim.start()
        except Exception as exc:
            print(f"pibridge demo: the simulator did not start: {exc}", file=sys.stderr)
            return 1
        try:
            return _run(args, sim, base, parse_config, Bridge)
        finally:
            sim.stop()


def _run(args, sim, base: Path, parse_config, Bridge) -> int:
    from pibridge.outbox import read_stats
    from pibridge.web.server import WebServer
    from pibridge.web.sim_view import SimView

    sim_view = SimView(sim, cut_seconds=args.cut_seconds)
    try:
        sim_page = WebServer(sim_view, "127.0.0.1", _port_or_free(args.http_port and args.http_port + 1))
    except OSError:  # taken between the check and now
        sim_page = WebServer(sim_view, "127.0.0.1", 0)
    sim_page.start()
    config_file = base / "demo.toml"
    config_file.write_text(demo_config(sim, base / "bridge", _port_or_free(args.http_port)))
    config = parse_config(config_file.read_text(), config_file)
    stop = threading.Event()
    bridge = Bridge(config)

    def quit_demo() -> None:
        stop.set()
        bridge.wake()

    def cut_agent() -> None:
        problem = sim_view.cut()
        if problem:
            logging.getLogger("pibridge.demo").warning("not cutting the agent off: %s", problem)
        else:
            logging.getLogger("pibridge.demo").warning(
                "the agent is cut off for %g s: readings wait in the outbox, then are replayed in order",
                sim_view.cut_seconds)

    previous = signal.signal(signal.SIGINT, lambda *_: quit_demo())
    signal.signal(signal.SIGTERM, lambda *_: quit_demo())
    bridge.start()
    bridge_url = bridge.page.url if bridge.page is not None else None
    print(f"pibridge demo: simulator on 127.0.0.1:{sim.api_port}, state in {base}\n"
          f"  the bridge's page:          {bridge_url or '(could not listen, see the log)'}\n"
          f"  what the agent received:    {sim_page.url}\n", flush=True)
    if args.open:
        import webbrowser

        for url in (bridge_url, sim_page.url):
            if url:
                webbrowser.open(url)
    area = LiveArea(sys.stdout)
    keys = Keys({"c": cut_agent, "q": quit_demo}).start() if area.tty else Keys({})
    root = logging.getLogger()
    stderr_handlers = [h for h in root.handlers if h.get_name() == "pibridge"]
    if area.tty and sys.stderr.isatty():
        # Log lines go above the live table instead of through it.
        handler = LiveLogHandler(area)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
        for old in stderr_handlers:
            root.removeHandler(old)
        root.addHandler(handler)
    screen = Screen(bridge, sim, keys=keys.active, cut_seconds=sim_view.cut_seconds)
    refresh = args.refresh or (1.0 if area.tty else 5.0)

    def show() -> None:
        while not stop.wait(refresh):
            area.show(screen.lines())

    painter = threading.Thread(target=show, name="demo-screen", daemon=True)
    painter.start()
    if args.duration:
        timer = threading.Timer(args.duration, quit_demo)
        timer.daemon = True
        timer.start()
    try:
        bridge.run(stop)
    finally:
        stop.set()
        painter.join()
        keys.stop()
        area.show(screen.lines())
        bridge.close()
        sim_page.stop()
        signal.signal(signal.SIGINT, previous)
    read = sum(r.health.reads for r in bridge.readers)
    stats = read_stats(bridge.storage / "outbox.db")
    waiting = stats.depth if stats else 0
    readings, values = sim.store.received(bridge.client_id) if bridge.client_id else (0, 0)
    print(f"\nstopped: {_count(read, 'reading')} read from {len(bridge.readers)} sensors; "
          f"{bridge.delivery.delivered} delivered; the simulator stored {_count(readings, 'reading')} "
          f"({_count(values, 'value')}); {waiting} left in the outbox for the next start.")
    logging.shutdown()
    return 0
