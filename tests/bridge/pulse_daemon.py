"""``pibridge run`` with gpiozero's MockFactory pins and a pulse source on one pin.

Usage: ``python tests/bridge/pulse_daemon.py PIN PULSES DONE_FILE -- <pibridge arguments>``.
Once the daemon's pulse counter watches PIN, PULSES pulses are driven onto
it (the pin pulled low and released, as a rain gauge's reed switch does),
then DONE_FILE is written.  Everything above the pin is the real daemon.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path


def drive(factory, pin: int, pulses: int, done: Path) -> None:
    while True:
        mock = next((p for info, p in list(factory.pins.items()) if pin in info.names), None)
        if mock is not None and mock.when_changed is not None:
            break
        time.sleep(0.01)
    for _ in range(pulses):
        mock.drive_low()
        mock.drive_high()
    done.write_text(str(pulses))


def main() -> int:
    pin, pulses, done = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    args = sys.argv[sys.argv.index("--") + 1:]
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    Device.pin_factory = MockFactory()
    threading.Thread(target=drive, args=(Device.pin_factory, pin, pulses, done), daemon=True).start()
    from pibridge.cli import main as pibridge

    return pibridge(args)


if __name__ == "__main__":
    sys.exit(main())
