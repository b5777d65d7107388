"""Every library a driver imports when it opens its device is installed by ``pip install pibridge``.

Drivers import hardware libraries inside ``open()`` (so the core runs on a
laptop), which means a dependency missing from pyproject.toml would only
show on a Pi, at the first read.  The suite runs in a virtual environment
made from pyproject.toml alone, so finding every such module here proves the
declaration complete.  Only finding, not importing: Blinka's ``board`` refuses
to import off a Pi.
"""

import ast
import importlib.util
import sys
from pathlib import Path

DRIVERS = Path(__file__).resolve().parents[2] / "drivers"


def lazy_imports(source: str) -> set[str]:
    """Top-level names of modules imported inside functions (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                names.update(alias.name.split(".")[0] for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                names.add(inner.module.split(".")[0])
    return names - {"pibridge"} - set(sys.stdlib_module_names)


def test_every_lazily_imported_hardware_library_is_installed():
    wanted: dict[str, list[str]] = {}
    for path in sorted(DRIVERS.rglob("*.py")):
        for name in lazy_imports(path.read_text(encoding="utf-8")):
            wanted.setdefault(name, []).append(str(path.relative_to(DRIVERS)))
    assert {"smbus2", "gpiozero", "adafruit_dht", "board"} <= set(wanted)
    missing = {name: users for name, users in wanted.items() if importlib.util.find_spec(name) is None}
    assert missing == {}, f"imported by drivers but not installed with pibridge: {missing}"


def test_blinka_is_new_enough_for_trixie():
    from importlib.metadata import version

    major, minor, patch = (int(part) for part in version("Adafruit-Blinka").split(".")[:3])
    assert (major, minor, patch) >= (8, 68, 1)
