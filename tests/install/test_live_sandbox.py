"""install.sh on "this machine", for real, inside a throw-away overlay.

A private mount namespace lays a writable overlay over /etc, /opt, /usr/local,
/var and /root; install.sh runs without --root and without --dry-run, exactly
as `sudo ./install.sh` on a Pi.  Whatever it changes lands in the overlays'
upper directories, which the tests read afterwards; the real machine is never
written.  The real useradd, groupadd, usermod, userdel, getent, chown and
runuser run (so the service user really exists in the overlay's /etc/passwd,
and `pibridge check` really runs as that user); only the commands that need a
Pi or a running systemd are shims: apt-get, apt-cache, dpkg-query,
raspi-config, udevadm, and systemctl for start/stop/daemon-reload (enabling
runs the real systemctl, which only makes symlinks).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from install_harness import Machine, Run, offline_args, snapshot, venv_requirements_missing

LAYERS = ["etc", "opt", "usr/local", "var", "root"]
SHIMS = ["apt-get", "apt-cache", "dpkg-query", "systemctl", "raspi-config", "udevadm"]
MOUNT = r"""
set -e
for layer in $SANDBOX_LAYERS; do
    mkdir -p "$SANDBOX/upper/$layer" "$SANDBOX/work/$layer"
    mount -t overlay overlay -o "lowerdir=/$layer,upperdir=$SANDBOX/upper/$layer,workdir=$SANDBOX/work/$layer" "/$layer"
done
exec "$@"
"""
#: Files the accounts tools rewrite (with their backups and lock) when adding or removing the user.
ACCOUNT_FILES = {"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/.pwd.lock"}
ACCOUNT_FILES |= {f + "-" for f in ACCOUNT_FILES}
#: useradd resets the new user's entries in these logs where they exist.
LOGIN_RECORDS = {"var/log/lastlog", "var/log/faillog"}


def _sandbox_works(base: Path) -> str | None:
    if os.geteuid() != 0:
        return "mount namespaces and overlays need root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    base.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", MOUNT, "probe", "true"],
        env={**os.environ, "SANDBOX": str(base), "SANDBOX_LAYERS": "opt"},
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"this machine cannot mount an overlay in a private namespace: {probe.stderr.strip()}"
    return None


class Sandbox(Machine):
    """A Machine whose "live" paths are overlays; upper/ holds everything install.sh wrote."""

    def __init__(self, base: Path, **state):
        super().__init__(base, shims=SHIMS, **state)
        self.upper = base / "upper"

    def live(self, *args: str) -> Run:
        wrap = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", MOUNT, "sandbox"]
        env = {"SANDBOX": str(self.base), "SANDBOX_LAYERS": " ".join(LAYERS), "SHIM_SANDBOXED": "1"}
        return self.run(*args, staged=False, wrap=wrap, env=env, timeout=180)

    def as_service_user(self, code: str) -> subprocess.CompletedProcess:
        """Run Python code as the installed service user, inside the overlays."""
        argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", MOUNT, "sandbox"]
        argv += ["runuser", "-u", "pibridge", "--", "/opt/pibridge/bin/python", "-c", code]
        env = {**os.environ, "SANDBOX": str(self.base), "SANDBOX_LAYERS": " ".join(LAYERS)}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd="/")

    def written(self) -> set[str]:
        """Every file, link or deletion (whiteout) in the upper layers, as a path relative to /."""
        found = set()
        for path in self.upper.rglob("*"):
            if not path.is_dir() or path.is_symlink():
                found.add(str(path.relative_to(self.upper)))
        return found

    def account(self, db: str, name: str) -> list[str] | None:
        for line in (self.upper / "etc" / db).read_text().splitlines():
            if line.split(":")[0] == name:
                return line.split(":")
        return None


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> tuple[Sandbox, Run]:
    base = tmp_path_factory.mktemp("sandbox")
    reason = venv_requirements_missing() or _sandbox_works(base / "probe")
    if reason:
        pytest.skip(reason)
    machine = Sandbox(base)
    result = machine.live(*offline_args())
    assert result.returncode == 0, result.output
    return machine, result


def test_dry_run_writes_nothing(sandbox, tmp_path):
    """On a fresh machine a dry run plans everything and leaves every overlay empty."""
    machine = Sandbox(tmp_path)
    result = machine.live(*offline_args(), "--dry-run")
    assert result.returncode == 0, result.output
    assert "would run: /usr/bin/python3 -m venv" in result.stdout
    assert machine.written() == set()
    layer_dirs = {"usr"} | set(LAYERS)
    assert {str(p.relative_to(machine.upper)) for p in machine.upper.rglob("*")} == layer_dirs


def test_writes_exactly_its_footprint(sandbox):
    machine, _ = sandbox
    written = machine.written()
    venv = {p for p in written if p.startswith("opt/pibridge/")}
    assert venv and "opt/pibridge/bin/pibridge" in venv
    assert written - venv - ACCOUNT_FILES - LOGIN_RECORDS == {
        "etc/pibridge/config.toml",
        "etc/udev/rules.d/60-pibridge.rules",
        "etc/systemd/system/pibridge.service",
        "etc/systemd/system/multi-user.target.wants/pibridge.service",
        "usr/local/bin/pibridge",
    }
    assert (machine.upper / "var/lib/pibridge").is_dir()


def test_real_service_user_owns_the_state_dir(sandbox):
    machine, _ = sandbox
    user = machine.account("passwd", "pibridge")
    assert user[5:] == ["/var/lib/pibridge", "/usr/sbin/nologin"]
    assert int(user[2]) < 1000  # a system account
    state = (machine.upper / "var/lib/pibridge").stat()
    assert (state.st_uid, state.st_gid) == (int(user[2]), int(user[3]))
    assert stat.S_IMODE(state.st_mode) == 0o700
    for group in ("gpio", "i2c", "spi", "dialout"):
        assert "pibridge" in machine.account("group", group)[3].split(","), group
    config = (machine.upper / "etc/pibridge/config.toml").stat()
    assert (config.st_uid, config.st_gid, stat.S_IMODE(config.st_mode)) == (0, int(user[3]), 0o640)


def test_system_calls_made(sandbox):
    _, result = sandbox
    assert result.called("apt-get")[0] == ["update", "-q"]
    assert result.called("apt-get")[1][:4] == ["install", "-y", "-q", "--no-install-recommends"]
    assert ["nonint", "do_i2c", "0"] in result.called("raspi-config")
    assert ["control", "--reload-rules"] in result.called("udevadm")
    systemctl = result.called("systemctl")
    assert systemctl.index(["daemon-reload"]) < systemctl.index(["enable", "pibridge.service"])
    assert systemctl.index(["enable", "pibridge.service"]) < systemctl.index(["start", "pibridge.service"])


def test_check_ran_as_the_service_user(sandbox):
    """The real runuser ran the real `pibridge check`, reading the 0640 config as pibridge."""
    _, result = sandbox
    assert "+ (cd /var/lib/pibridge && runuser -u pibridge -- /opt/pibridge/bin/pibridge check" in result.stdout
    assert "The sensor read OK" in result.stdout
    assert "found problems" not in result.stdout


def test_service_user_reads_config_writes_state_only(sandbox):
    machine, _ = sandbox
    probe = machine.as_service_user(
        "import os, sys\n"
        "open('/etc/pibridge/config.toml').read()\n"
        "open('/var/lib/pibridge/probe', 'w').write('x')\n"
        "os.remove('/var/lib/pibridge/probe')\n"
        "for path in ('/etc/pibridge/config.toml', '/etc/pibridge/other.toml', '/opt/pibridge/probe'):\n"
        "    try:\n"
        "        open(path, 'a')\n"
        "    except PermissionError:\n"
        "        continue\n"
        "    sys.exit('could write ' + path)\n"
        "print('ok')\n"
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout == "ok\n"


def test_second_run_changes_nothing(sandbox):
    machine, _ = sandbox
    before = snapshot(machine.upper)
    result = machine.live(*offline_args())
    assert result.returncode == 0, result.output
    assert "Nothing to change: pibridge is installed and up to date." in result.stdout
    assert snapshot(machine.upper) == before
    assert result.called("apt-get") == [] and result.called("udevadm") == []
    assert [c for c in result.called("systemctl") if c[0] in ("start", "restart", "enable", "daemon-reload")] == []


def test_upgrade_uninstall_purge(sandbox, tmp_path):
    """In sequence on one machine: these change it for good, so they run last (pytest keeps file order)."""
    machine, _ = sandbox
    upgrade = machine.live(*offline_args(), "--upgrade")
    assert upgrade.returncode == 0, upgrade.output
    assert ["restart", "pibridge.service"] in upgrade.called("systemctl")

    (machine.upper / "var/lib/pibridge/outbox.db").write_text("unsent readings")
    uninstall = machine.live("--uninstall")
    assert uninstall.returncode == 0, uninstall.output
    assert ["stop", "pibridge.service"] in uninstall.called("systemctl")
    for gone in ("opt/pibridge", "usr/local/bin/pibridge", "etc/systemd/system/pibridge.service"):
        assert is_deleted(machine.upper / gone), gone
    assert (machine.upper / "var/lib/pibridge/outbox.db").read_text() == "unsent readings"
    assert machine.account("passwd", "pibridge") is not None

    purge = machine.live("--purge")
    assert purge.returncode == 0, purge.output
    assert is_deleted(machine.upper / "var/lib/pibridge")
    assert is_deleted(machine.upper / "etc/pibridge")
    assert machine.account("passwd", "pibridge") is None
    assert machine.account("group", "pibridge") is None


def is_deleted(path: Path) -> bool:
    """Gone from the overlay: a whiteout (a 0:0 character device) or never copied up."""
    if not os.path.lexists(path):
        return True
    st = path.lstat()
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
