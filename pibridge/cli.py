"""The ``pibridge`` command: one sub-command per job, each in the module that owns it.

Sub-commands are imported only when run, so ``pibridge --help`` stays fast
and a laptop without GPIO libraries can still run ``pibridge sim``.
"""

from __future__ import annotations

import importlib
import os
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


#: sub-commands that read the config file, and so take ``-c/--config`` before the command too
TAKES_CONFIG = ("run", "check", "status", "provision")


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: pibridge [-c CONFIG] COMMAND [options]   (pibridge COMMAND --help for more)",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "  -c, --config PATH  config file for run, check, status and provision",
              "                     (default: $PIBRIDGE_CONFIG, else /etc/pibridge/config.toml)"]
    return "\n".join(lines)


def _global_config(argv: list[str]) -> tuple[list[str], str | None] | str:
    """Take a leading ``-c PATH`` / ``--config PATH`` / ``--config=PATH`` off *argv*.

    Returns the rest and the path, or a message when the option has no value.
    """
    if not argv:
        return argv, None
    first = argv[0]
    if first.startswith("--config="):
        return argv[1:], first.split("=", 1)[1]
    if first in ("-c", "--config"):
        if len(argv) < 2 or argv[1].startswith("-"):
            return f"{first} needs the path of a config file, e.g. pibridge {first} /etc/pibridge/config.toml check"
        return argv[2:], argv[1]
    return argv, None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    taken = _global_config(argv)
    if isinstance(taken, str):
        print(f"pibridge: {taken}", file=sys.stderr)
        return 2
    argv, config = taken
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
    if config is not None:
        if name not in TAKES_CONFIG:
            print(f"pibridge: {name} reads no config file; drop --config", file=sys.stderr)
            return 2
        rest = ["--config", config, *rest]
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        code = int(func(rest) or 0)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`pibridge sim --dump | head`): that is how pipes end, not an
        # error.  Point stdout at /dev/null so the interpreter's own final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
