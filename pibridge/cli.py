"""The ``pibridge`` command: one sub-command per job, each in the module that owns it.

Sub-commands are imported only when run, so ``pibridge --help`` stays fast
and a laptop without GPIO libraries can still run ``pibridge sim``.
"""

from __future__ import annotations

import importlib
import sys

#: sub-command -> (module:function taking argv and returning an exit code, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("pibridge.bridge.daemon:main", "run the bridge until SIGTERM/SIGINT"),
    "check": ("pibridge.bridge.check:main", "validate the config and read every sensor once"),
    "status": ("pibridge.bridge.status:main", "show identity, outbox depth and sensor health"),
    "provision": ("pibridge.agent.cli:provision_main", "get (or reuse) a client certificate and print the client ID"),
    "sim": ("pibridge.sim.cli:main", "run a local stand-in for the TeamViewer IoT Agent"),
    "demo": ("pibridge.demo:main", "run the simulator and the bridge with mock sensors"),
    "scan": ("pibridge.scan:main", "list the I2C addresses that answer and which chips they could be"),
    "drivers": ("pibridge.driverlist:main", "list the available drivers, their options and quantities"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: pibridge COMMAND [options]   (pibridge COMMAND --help for more)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from pibridge import __version__

        print(f"pibridge {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"pibridge: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(rest) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
