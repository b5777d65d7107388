"""Dependencies point down the data path: a transform never imports the bridge (nor hardware).

A fresh interpreter imports every module of pibridge/transforms and lists
what came with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(f"pibridge.transforms.{p.stem}" for p in (REPO / "pibridge" / "transforms").glob("*.py")
                 if p.stem != "__init__")


def test_the_transforms_import_neither_the_bridge_nor_hardware_libraries():
    probe = ("import importlib, json, sys\n"
             f"for name in {MODULES!r}: importlib.import_module(name)\n"
             "print(json.dumps(sorted(sys.modules)))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                                       check=True, timeout=60).stdout)
    assert len(MODULES) >= 7
    assert not [m for m in loaded if m.startswith(("pibridge.bridge", "pibridge.drivers", "pibridge.agent"))]
    assert not {"gpiozero", "smbus2", "adafruit_dht", "paho"} & {m.split(".")[0] for m in loaded}
