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
MODULES = sorted(
    ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    for p in (REPO / "pibridge" / "transforms").rglob("*.py")
)


def test_the_transforms_import_neither_the_bridge_nor_hardware_libraries():
    probe = ("import importlib, json, sys\n"
             f"for name in {MODULES!r}: importlib.import_module(name)\n"
             "print(json.dumps(sorted(sys.modules)))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                                       check=True, timeout=60).stdout)
    assert len(MODULES) >= 9 and "pibridge.transforms.derived.formulas" in MODULES
    assert not [m for m in loaded if m.startswith(("pibridge.bridge", "pibridge.drivers", "pibridge.agent"))]
    assert not {"gpiozero", "smbus2", "adafruit_dht", "paho"} & {m.split(".")[0] for m in loaded}
