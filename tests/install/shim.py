"""Stand-ins for the system commands install.sh runs, put first on PATH by the tests.

Each call is appended to $SHIM_LOG as a JSON list ``[name, arg, ...]``; the
machine they pretend to be lives in the JSON file $SHIM_STATE (see
``install_harness.machine_state``).  What can safely run for real does:

* ``systemctl --root=DIR enable|disable|is-enabled`` runs the real systemctl,
  which only makes or reads symlinks under DIR (and without --root inside the
  overlay sandbox of test_live_sandbox.py, where $SHIM_SANDBOXED is set);
* ``chown`` runs the real chown on the staged files;
* the shadow tools with ``--prefix DIR`` edit DIR/etc/passwd and DIR/etc/group
  the way useradd and friends do (the real ones need root and a full shadow set).

Anything that would change the running machine (apt-get install, raspi-config
do_*, systemctl start/stop) only changes the pretend machine; udevadm and
runuser are only recorded; an account change without --prefix fails loudly.
A name in the state's "exit_codes" makes that command fail with the code given.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

REAL_PATH = os.environ.get("SHIM_REAL_PATH", "/usr/sbin:/usr/bin:/sbin:/bin")


def real(name: str) -> str | None:
    return shutil.which(name, path=REAL_PATH)


class Machine:
    """The pretend machine's state, read from and saved to $SHIM_STATE."""

    def __init__(self) -> None:
        self.path = Path(os.environ["SHIM_STATE"])
        self.state = json.loads(self.path.read_text())

    def __getitem__(self, key):
        return self.state[key]

    def save(self) -> None:
        self.path.write_text(json.dumps(self.state))


def fail(message: str, code: int = 99) -> None:
    print(f"shim: {message}", file=sys.stderr)
    sys.exit(code)


# ------------------------------------------------------------------ accounts


def take_prefix(args: list[str]) -> tuple[Path, list[str]]:
    if "--prefix" not in args:
        fail("account change without --prefix would touch the running machine")
    i = args.index("--prefix")
    return Path(args[i + 1]), args[:i] + args[i + 2 :]


def read_db(prefix: Path, db: str) -> list[list[str]]:
    return [line.split(":") for line in (prefix / "etc" / db).read_text().splitlines() if line]


def write_db(prefix: Path, db: str, rows: list[list[str]]) -> None:
    (prefix / "etc" / db).write_text("".join(":".join(row) + "\n" for row in rows))


def free_id(rows: list[list[str]], own: int) -> str:
    """The highest free id below 1000, as Debian's --system accounts get.

    Not root, the real chown can only hand files to ourselves: then the
    accounts get our own ids (``own``).
    """
    if os.geteuid() != 0:
        return str(own)
    used = {int(row[2]) for row in rows}
    return str(max(set(range(100, 1000)) - used))


def groupadd(args: list[str]) -> None:
    prefix, args = take_prefix(args)
    name = args[-1]
    groups = read_db(prefix, "group")
    if any(row[0] == name for row in groups):
        fail(f"groupadd: group '{name}' already exists", 9)
    groups.append([name, "x", free_id(groups, os.getgid()), ""])
    write_db(prefix, "group", groups)


def useradd(args: list[str]) -> None:
    prefix, args = take_prefix(args)
    name = args[-1]
    option = dict(zip(args[:-1], args[1:-1]))
    users, groups = read_db(prefix, "passwd"), read_db(prefix, "group")
    if any(row[0] == name for row in users):
        fail(f"useradd: user '{name}' already exists", 9)
    if "--gid" in option:
        gid = next(row[2] for row in groups if row[0] == option["--gid"])
    else:
        gid = free_id(groups, os.getgid())
        groups.append([name, "x", gid, ""])
    users.append([name, "x", free_id(users, os.getuid()), gid, option["--comment"], option["--home-dir"], option["--shell"]])
    write_db(prefix, "passwd", users)
    write_db(prefix, "group", groups)


def usermod(args: list[str]) -> None:
    prefix, args = take_prefix(args)
    name = args[-1]
    wanted = args[args.index("--groups") + 1].split(",")
    groups = read_db(prefix, "group")
    for row in groups:
        members = [m for m in row[3].split(",") if m]
        if row[0] in wanted and name not in members:
            row[3] = ",".join(members + [name])
    write_db(prefix, "group", groups)


def userdel(args: list[str]) -> None:
    prefix, args = take_prefix(args)
    name = args[-1]
    users = read_db(prefix, "passwd")
    if not any(row[0] == name for row in users):
        fail(f"userdel: user '{name}' does not exist", 6)
    write_db(prefix, "passwd", [row for row in users if row[0] != name])
    # Debian's USERGROUPS_ENAB: the user's own group goes with it.
    groups = [row for row in read_db(prefix, "group") if row[0] != name]
    for row in groups:
        row[3] = ",".join(m for m in row[3].split(",") if m and m != name)
    write_db(prefix, "group", groups)


def groupdel(args: list[str]) -> None:
    prefix, args = take_prefix(args)
    write_db(prefix, "group", [row for row in read_db(prefix, "group") if row[0] != args[-1]])


def getent(args: list[str]) -> None:
    db, key = args
    line = Machine()["accounts"][db].get(key)
    if line is None:
        sys.exit(2)
    print(line)


# ------------------------------------------------------------------ packages


def dpkg_query(args: list[str]) -> None:
    """``dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' PACKAGE...``"""
    if not any(a.startswith("-f=${Package} ") for a in args):
        fail(f"dpkg-query {args} not emulated")
    installed = Machine()["installed"]
    packages = [a for a in args if not a.startswith("-")]
    for package in packages:
        if package in installed:
            print(f"{package} ii ")
        else:
            print(f"dpkg-query: no packages found matching {package}", file=sys.stderr)
    sys.exit(0 if set(packages) <= set(installed) else 1)


def dpkg(args: list[str]) -> None:
    """Only the read-only architecture queries."""
    machine = Machine()
    if args == ["--print-architecture"]:
        print(machine.state.get("architecture", "arm64"))
    elif args == ["--print-foreign-architectures"]:
        for arch in machine.state.get("foreign_architectures", []):
            print(arch)
    else:
        fail(f"dpkg {args} not emulated")


def apt_get(args: list[str]) -> None:
    """``update`` does nothing; ``install`` marks the packages installed for dpkg-query."""
    if args[0] == "install":
        machine = Machine()
        machine.state["installed"] += [a for a in args[1:] if not a.startswith("-")]
        machine.save()


def apt_cache(args: list[str]) -> None:
    if args[0] != "policy":
        fail(f"apt-cache {args[0]} not emulated")
    for package in args[1:]:
        if package in Machine()["available"]:
            print(f"{package}:\n  Installed: (none)\n  Candidate: 1.0-1\n  Version table:")


# ------------------------------------------------------------------ systemd


def systemctl(args: list[str]) -> None:
    machine = Machine()
    staged = any(a.startswith("--root") for a in args)
    words = [a for a in args if not a.startswith("--")]
    command = words[0] if words else args[0]
    if command == "--version":
        print(f"systemd {machine['systemd_version']} (shim)\n+PAM +AUDIT")
        return
    if command == "is-system-running":
        print(machine["system_state"])
        sys.exit(0 if machine["system_state"] == "running" else 1)
    # Enabling only makes symlinks: the real systemctl does it in a staged root,
    # and on "this machine" when that is a throw-away overlay (test_live_sandbox).
    sandboxed = staged or os.environ.get("SHIM_SANDBOXED") == "1"
    if sandboxed and command in ("enable", "disable", "is-enabled") and real("systemctl"):
        os.execv(real("systemctl"), ["systemctl", *args])
    if staged:
        fail(f"systemctl --root {command} not emulated")
    units = set(machine["active"])
    enabled = set(machine["enabled"])
    unit = words[-1]
    if command == "is-active":
        sys.exit(0 if unit in units else 3)
    if command == "is-enabled":
        sys.exit(0 if unit in enabled else 1)
    if command in ("start", "restart"):
        units.add(unit)
    elif command == "stop":
        units.discard(unit)
    elif command == "enable":
        enabled.add(unit)
    elif command == "disable":
        enabled.discard(unit)
    elif command != "daemon-reload":
        fail(f"systemctl {command} not emulated")
    machine.state["active"], machine.state["enabled"] = sorted(units), sorted(enabled)
    machine.save()


def raspi_config(args: list[str]) -> None:
    machine = Machine()
    if args[:1] != ["nonint"]:
        fail("raspi-config must run non-interactively")
    command = args[1]
    if command.startswith("get_"):
        print(machine["interfaces"][command[4:]])
    elif command.startswith("do_"):
        machine.state["interfaces"][command[3:]] = int(args[2])
        machine.save()
    else:
        fail(f"raspi-config nonint {command} not emulated")


def id_(args: list[str]) -> None:
    if args == ["-u"]:
        print(Machine()["uid"])
        return
    os.execv(real("id"), ["id", *args])


def chown(args: list[str]) -> None:
    os.execv(real("chown"), ["chown", *args])


def recorded_only(args: list[str]) -> None:
    """Nothing to emulate: the call is in the log."""


HANDLERS = {
    "groupadd": groupadd,
    "useradd": useradd,
    "usermod": usermod,
    "userdel": userdel,
    "groupdel": groupdel,
    "getent": getent,
    "dpkg-query": dpkg_query,
    "dpkg": dpkg,
    "apt-cache": apt_cache,
    "apt-get": apt_get,
    "udevadm": recorded_only,
    "runuser": recorded_only,
    "systemctl": systemctl,
    "raspi-config": raspi_config,
    "id": id_,
    "chown": chown,
}

if __name__ == "__main__":
    NAME, ARGS = sys.argv[1], sys.argv[2:]
    with open(os.environ["SHIM_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps([NAME, *ARGS]) + "\n")
    failure = Machine()["exit_codes"].get(NAME)
    if failure is not None:
        fail(f"{NAME} fails as the test asked", failure)
    HANDLERS[NAME](ARGS)
