"""``pibridge provision``: get a client certificate from the agent (or reuse the one we have).

Prints the client ID on standard output; everything else goes to standard
error.  Settings come from the command line, else from the ``[agent]`` and
``[storage]`` tables of ``--config``, else from the defaults below.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from pathlib import Path

from pibridge.agent.errors import PibridgeAgentError

DEFAULT_HOST = "localhost"
DEFAULT_PROVISION_PORT = 18883
DEFAULT_CA_FILE = Path("/var/lib/teamviewer-iot-agent/certs/TeamViewerAuthority.crt")
DEFAULT_CLIENT_NAME = "pibridge"
DEFAULT_STORAGE_DIR = Path("/var/lib/pibridge")


def identity_directory(storage_dir: Path) -> Path:
    """Where the key and certificate live inside the storage directory."""
    return Path(storage_dir) / "identity"


class ConfigProblem(Exception):
    """The config file cannot be used; the message names the file, the key and the fix."""


def _read_config(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigProblem(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblem(f"{path}: not valid TOML ({exc})") from None
    settings: dict = {}
    for table, key, target, kind in (
        ("agent", "host", "host", str),
        ("agent", "provision_port", "port", int),
        ("agent", "ca_file", "ca_file", str),
        ("agent", "client_name", "name", str),
        ("storage", "dir", "storage_dir", str),
    ):
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise ConfigProblem(f"{path}: [{table}] must be a table")
        if key not in section:
            continue
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigProblem(
                f"{path}: [{table}] {key} must be {'a number' if kind is int else 'text'}, not {value!r}"
            )
        settings[target] = value
    return settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pibridge provision",
        description="Get a client certificate from the TeamViewer IoT Agent, or reuse the one already "
        "stored, and print the client ID.",
    )
    parser.add_argument("-c", "--config", type=Path, help="read [agent] and [storage] settings from this TOML file")
    parser.add_argument("--host", help=f"agent host (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"agent provisioning port (default {DEFAULT_PROVISION_PORT})")
    parser.add_argument("--ca-file", type=Path, help=f"the agent's CA certificate (default {DEFAULT_CA_FILE})")
    parser.add_argument("--name", help=f"client name sent in the CSR (default {DEFAULT_CLIENT_NAME})")
    parser.add_argument(
        "--dir", type=Path,
        help=f"identity directory for key and certificate (default {identity_directory(DEFAULT_STORAGE_DIR)})",
    )
    parser.add_argument("--key-type", choices=("rsa", "ec"), default="rsa", help="RSA-2048 (default) or EC P-256")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the agent (default 30)")
    return parser


def provision_main(argv: list[str]) -> int:
    from pibridge.agent.identity import provision

    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="pibridge provision: %(message)s", stream=sys.stderr)
    try:
        settings = _read_config(args.config) if args.config else {}
    except ConfigProblem as exc:
        print(f"pibridge provision: {exc}", file=sys.stderr)
        return 2
    directory = args.dir or identity_directory(Path(settings.get("storage_dir", DEFAULT_STORAGE_DIR)))
    try:
        identity = provision(
            directory,
            host=args.host or settings.get("host", DEFAULT_HOST),
            port=args.port or settings.get("port", DEFAULT_PROVISION_PORT),
            ca_file=args.ca_file or Path(settings.get("ca_file", DEFAULT_CA_FILE)),
            client_name=args.name or settings.get("name", DEFAULT_CLIENT_NAME),
            timeout=args.timeout,
            key_type=args.key_type,
        )
    except PibridgeAgentError as exc:
        print(f"pibridge provision: {exc}", file=sys.stderr)
        return 1
    print(identity.client_id)
    return 0
