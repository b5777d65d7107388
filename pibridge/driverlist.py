"""``pibridge drivers``: every driver with its options and the quantities it reports."""

from __future__ import annotations

import argparse
import inspect
import json
import sys

from pibridge.drivers import Driver, Option, available, driver_class, load_errors
from pibridge.drivers.spi._bus import SPIDriver
from pibridge.drivers.uart._port import SerialDriver


def _type_name(option: Option) -> str:
    types = option.type if isinstance(option.type, tuple) else (option.type,)
    return " or ".join("none" if t is type(None) else t.__name__ for t in types)


def _default(key: str, option: Option) -> str:
    if option.required:
        return "required"
    value = option.default
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "address" and isinstance(value, int):
        return f"0x{value:02x}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
    return str(value)


def describe(cls: type[Driver]) -> dict:
    """A plain description of one driver (what ``--json`` prints)."""
    info = {
        "name": cls.name,
        "summary": cls.summary,
        "options": {
            key: {"type": _type_name(opt), "default": _default(key, opt), "help": opt.help} for key, opt in cls.options.items()
        },
        "quantities": [{"name": q.name, "unit": q.unit, "description": q.description} for q in cls.provides],
    }
    addresses = getattr(cls, "addresses", ())
    if addresses:
        info["i2c_addresses"] = [f"0x{a:02x}" for a in addresses]
    if issubclass(cls, SPIDriver):
        info["spi"] = {"modes": list(cls.modes), "max_speed_hz": cls.options["max_speed_hz"].default}
    if issubclass(cls, SerialDriver):
        info["serial"] = {"port": cls.options["port"].default, "baud": cls.options["baud"].default}
    return info


def render(cls: type[Driver]) -> str:
    info = describe(cls)
    lines = [f"{info['name']}: {info['summary']}"]
    if "i2c_addresses" in info:
        lines.append(f"  I2C addresses: {', '.join(info['i2c_addresses'])}")
    if "spi" in info:
        modes = " or ".join(map(str, info["spi"]["modes"]))
        lines.append(f"  SPI: /dev/spidev<bus>.<device>, mode {modes}, clock up to {info['spi']['max_speed_hz']} Hz")
    if "serial" in info:
        lines.append(f"  serial: {info['serial']['baud']} baud 8N1 on {info['serial']['port']} (option port)")
    lines.append("  reports: " + (", ".join(f"{q['name']} [{q['unit']}]" for q in info["quantities"]) or "nothing fixed"))
    if info["options"]:
        lines.append("  options:")
        width = max(map(len, info["options"]))
        for key, opt in info["options"].items():
            lines.append(f"    {key.ljust(width)}  {opt['type']}, {opt['default']}: {opt['help']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pibridge drivers", description="List the available drivers, their options and the quantities they report."
    )
    parser.add_argument("name", nargs="?", help="show only this driver, with its full description")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    if args.name:
        try:
            classes = [driver_class(args.name)]
        except KeyError as exc:
            print(f"pibridge drivers: {exc.args[0]}", file=sys.stderr)
            return 2
    else:
        classes = list(available().values())
    if args.json:
        print(json.dumps([describe(cls) for cls in classes], indent=2, ensure_ascii=False))
        return 0
    blocks = [render(cls) for cls in classes]
    if args.name and classes[0].__doc__:
        blocks.append(inspect.cleandoc(classes[0].__doc__))
    print("\n\n".join(blocks))
    for name, error in load_errors().items():
        print(f"\n{name}: installed but failed to load: {error}", file=sys.stderr)
    return 0
