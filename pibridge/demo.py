"""``pibridge demo``: the agent simulator and the bridge with a few pretend sensors, on one screen.

Nothing to wire and no TeamViewer IoT Agent needed: it starts the simulator
(state in a temporary directory, or ``--state-dir``), provisions a client,
creates the sensors and metrics and pushes made-up readings from three mock
devices, showing the latest values, how many readings the agent has
acknowledged and how many wait in the outbox.  Ctrl-C stops it cleanly.

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
import time
from pathlib import Path

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

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(sim, storage_dir: Path) -> str:
    """The embedded demo config, pointing at the simulator *sim*."""
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
        "ack_window = 2.0\n" + DEFAULT_SENSORS
    )


class Screen:
    """Draws the table: redrawn in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, bridge, out=sys.stdout):
        self.bridge = bridge
        self.out = out
        self.tty = out.isatty()
        self._lines = 0
        self._units = {}
        for reader in bridge.readers:
            for q in reader.driver.quantities():
                self._units[(reader.name, q.name)] = q.unit

    def lines(self) -> list[str]:
        bridge = self.bridge
        delivery = bridge.delivery
        depth = bridge.outbox.stats().depth
        agent = "connected" if bridge.connected else "NOT CONNECTED"
        head = (
            f"agent {agent} | client {bridge.client_id or '-'} | pushed {delivery.delivered} | "
            f"outbox {depth} | mode {delivery.mode}"
        )
        rows = [head]
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
        return rows

    def draw(self) -> None:
        rows = self.lines()
        if self.tty:
            if self._lines:
                self.out.write(f"\x1b[{self._lines}F")
            self.out.write("".join(f"\x1b[2K{row}\n" for row in rows))
            self._lines = len(rows)
        else:
            self.out.write("\n".join(rows) + "\n\n")
        self.out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pibridge demo", description="Run the agent simulator and the bridge with mock sensors (Ctrl-C stops)."
    )
    parser.add_argument("--state-dir", type=Path, help="keep simulator and bridge state here (default: a temporary directory)")
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    parser.add_argument("--refresh", type=float, help="seconds between screen updates (default: 1 on a terminal, 5 otherwise)")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    from pibridge.bridge.config import parse_config
    from pibridge.bridge.daemon import Bridge, setup_logging
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
    config_file = base / "demo.toml"
    config_file.write_text(demo_config(sim, base / "bridge"))
    config = parse_config(config_file.read_text(), config_file)
    stop = threading.Event()
    bridge = Bridge(config)

    def on_signal(signum, _frame):
        stop.set()
        bridge.wake()

    previous = signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"pibridge demo: simulator on 127.0.0.1:{sim.api_port}, state in {base}; Ctrl-C stops.\n",
        flush=True,
    )
    bridge.start()
    screen = Screen(bridge)
    refresh = args.refresh or (1.0 if screen.tty else 5.0)

    def show() -> None:
        while not stop.wait(refresh):
            screen.draw()

    painter = threading.Thread(target=show, name="demo-screen", daemon=True)
    painter.start()
    if args.duration:
        timer = threading.Timer(args.duration, lambda: (stop.set(), bridge.wake()))
        timer.daemon = True
        timer.start()
    try:
        bridge.run(stop)
    finally:
        stop.set()
        painter.join()
        bridge.close()
        signal.signal(signal.SIGINT, previous)
    screen.draw()
    stored = len(sim.store.values(bridge.client_id)) if bridge.client_id else 0
    print(f"\nstopped: the simulator stored {stored} values from {len(bridge.readers)} sensors.")
    logging.shutdown()
    return 0
