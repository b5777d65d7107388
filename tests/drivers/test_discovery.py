"""Finding a driver by name imports that driver's module only, not every driver in the folders."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from pibridge.bridge.config import parse_config
parse_config('[[sensors]]\\nname = "a"\\ndriver = "mock"\\ninterval = 5\\n'
             '[[sensors]]\\nname = "b"\\ndriver = "BME280"\\ninterval = 5\\n')
print(" ".join(sorted(m for m in sys.modules if m.startswith("pibridge.drivers."))))
"""


def test_a_config_imports_only_the_drivers_it_names():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True,
                         timeout=60).stdout.split()
    devices = [m for m in out if not m.rpartition(".")[2].startswith("_") and m.count(".") == 3]
    assert devices == ["pibridge.drivers.i2c.bme280", "pibridge.drivers.system.mock"]


def test_an_unknown_name_still_lists_every_driver():
    from pibridge import drivers

    try:
        drivers.driver_class("no-such-chip")
    except KeyError as exc:
        assert "bme280" in str(exc) and "mock" in str(exc)
    else:
        raise AssertionError("an unknown driver name was accepted")


def test_every_driver_is_found_by_its_name_alone():
    """The lazy lookup reads ``name = "..."`` from the source: every driver module must declare it so."""
    from pibridge import drivers

    for name, cls in drivers.available().items():
        if cls.__module__.startswith("pibridge.drivers."):
            assert cls.__module__ in drivers._modules_naming(name), name
