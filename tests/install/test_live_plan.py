"""install.sh on the running machine, as root, in --dry-run: the plan it would carry out on a Pi.

Reads (getent, dpkg-query, apt-cache, systemctl is-*, raspi-config get_*) go to
the shims, which pretend to be a fresh Raspberry Pi OS; nothing that writes may
run, and nothing of pibridge may appear on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from install_harness import REPO, WRITES, Machine

LIVE_PATHS = [
    Path(p)
    for p in (
        "/opt/pibridge",
        "/etc/pibridge",
        "/var/lib/pibridge",
        "/usr/local/bin/pibridge",
        "/etc/systemd/system/pibridge.service",
        "/etc/udev/rules.d/60-pibridge.rules",
    )
]

pytestmark = pytest.mark.skipif(
    any(p.exists() or p.is_symlink() for p in LIVE_PATHS),
    reason="pibridge is installed on this machine: the plan for a fresh Pi cannot be shown here",
)


def plan(tmp_path: Path, *args: str, **state):
    machine = Machine(tmp_path, **state)
    result = machine.run("--dry-run", *args, staged=False)
    assert result.returncode == 0, result.output
    assert {call[0] for call in result.calls} & WRITES == set(), result.calls
    assert not any(p.exists() or p.is_symlink() for p in LIVE_PATHS)
    planned = [line.strip()[len("would run: ") :] for line in result.stdout.splitlines() if "would run: " in line]
    return result, planned


def test_fresh_bookworm_pi(tmp_path):
    result, planned = plan(tmp_path)
    expected = [
        "apt-get update -q",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
        " python3-venv i2c-tools python3-lgpio python3-libgpiod libgpiod2",
        "groupadd --system gpio",
        "groupadd --system i2c",
        "groupadd --system spi",
        "groupadd --system dialout",
        "useradd --system --user-group --home-dir /var/lib/pibridge --no-create-home"
        " --shell /usr/sbin/nologin --comment 'pibridge sensor bridge' pibridge",
        "usermod --append --groups gpio,i2c,spi,dialout pibridge",
        "install -d -m 0700 /var/lib/pibridge",
        "chown pibridge:pibridge /var/lib/pibridge",
        "/usr/bin/python3 -m venv --system-site-packages /opt/pibridge",
        "/opt/pibridge/bin/python -m pip install --disable-pip-version-check --no-input --no-cache-dir --quiet " + str(REPO),
        "ln -sfn /opt/pibridge/bin/pibridge /usr/local/bin/pibridge",
        "install -d -m 0750 /etc/pibridge",
        "chown root:pibridge /etc/pibridge",
        f"install -m 0640 {REPO}/examples/config.toml /etc/pibridge/config.toml",
        "chown root:pibridge /etc/pibridge/config.toml",
        f"install -m 0644 {REPO}/udev/60-pibridge.rules /etc/udev/rules.d/60-pibridge.rules",
        "udevadm control --reload-rules",
        "udevadm trigger --subsystem-match=gpio --subsystem-match=i2c-dev --subsystem-match=spidev"
        " --subsystem-match=tty --subsystem-match=bcm2835-gpiomem --subsystem-match=rpi-gpiomem",
        f"install -m 0644 {REPO}/systemd/pibridge.service /etc/systemd/system/pibridge.service",
        "systemctl daemon-reload",
        "systemctl enable pibridge.service",
        "raspi-config nonint do_i2c 0",
        "systemctl start pibridge.service",
        "runuser -u pibridge -- /opt/pibridge/bin/pibridge check --config /etc/pibridge/config.toml",
    ]
    # /usr/local/bin and /etc/udev/rules.d exist on most machines; where they do not, install -d comes first.
    parents = [p for p in planned if p.startswith("install -d -m 0755 ")]
    assert [p for p in planned if p not in parents] == expected
    # Every planned action is a change except the closing check, which only reads.
    changes = len(expected) - 1 + len(parents)
    assert f"Dry run: {changes} change(s) would be made; nothing was changed." in result.stdout


def test_trixie_takes_libgpiod3_and_the_backoff(tmp_path):
    available = ["python3-venv", "i2c-tools", "python3-lgpio", "python3-libgpiod", "libgpiod3"]
    _, planned = plan(tmp_path, available=available, systemd_version=257)
    assert planned[1].endswith("python3-venv i2c-tools python3-lgpio python3-libgpiod libgpiod3")
    assert f"install -m 0644 {REPO}/systemd/10-backoff.conf /etc/systemd/system/pibridge.service.d/10-backoff.conf" in planned


def test_packages_already_there_are_not_installed_again(tmp_path):
    installed = ["python3-venv", "i2c-tools", "python3-lgpio", "python3-libgpiod", "libgpiod2"]
    result, planned = plan(tmp_path, installed=installed)
    assert not any("apt-get" in p for p in planned)
    assert "nothing to install" in result.stdout


def test_packages_apt_does_not_offer_do_not_cause_an_update_every_run(tmp_path):
    """A machine without python3-lgpio in its archive (stock Debian) must still reach "nothing to change"."""
    result, planned = plan(tmp_path, installed=["python3-venv", "i2c-tools", "libgpiod2"], available=[])
    assert not any("apt-get" in p for p in planned)
    assert "python3-lgpio is not available from apt here" in result.stdout
    assert "python3-libgpiod is not available from apt here" in result.stdout


def test_missing_lgpio_package_is_reported_not_fatal(tmp_path):
    result, planned = plan(tmp_path, available=["python3-venv", "i2c-tools", "libgpiod2"])
    assert planned[1].endswith("--no-install-recommends python3-venv i2c-tools libgpiod2")
    assert "python3-lgpio is not available from apt here" in result.stdout


def test_existing_accounts_are_reused(tmp_path):
    accounts = {
        "passwd": {"pibridge": "pibridge:x:990:990::/var/lib/pibridge:/usr/sbin/nologin"},
        "group": {
            "pibridge": "pibridge:x:990:",
            "gpio": "gpio:x:997:pi,pibridge",
            "i2c": "i2c:x:998:pi",
            "spi": "spi:x:999:pi,pibridge",
            "dialout": "dialout:x:20:pi",
        },
    }
    _, planned = plan(tmp_path, accounts=accounts)
    assert not any(p.startswith(("groupadd", "useradd")) for p in planned)
    assert "usermod --append --groups i2c,dialout pibridge" in planned
    assert "chown 990:990 /var/lib/pibridge" in planned


def test_a_leftover_group_is_taken_over(tmp_path):
    accounts = {"passwd": {}, "group": {"pibridge": "pibridge:x:990:"}}
    _, planned = plan(tmp_path, accounts=accounts)
    assert (
        "useradd --system --gid pibridge --home-dir /var/lib/pibridge --no-create-home"
        " --shell /usr/sbin/nologin --comment 'pibridge sensor bridge' pibridge"
    ) in planned


def test_interfaces_already_on(tmp_path):
    result, planned = plan(tmp_path, "--with-1wire", interfaces={"i2c": 0, "onewire": 0})
    assert not any(p.startswith("raspi-config") for p in planned)
    assert "I2C is on" in result.stdout and "1-Wire is on" in result.stdout


def test_one_wire_on_request_needs_a_reboot(tmp_path):
    result, planned = plan(tmp_path, "--with-1wire")
    assert "raspi-config nonint do_onewire 0" in planned
    assert "Reboot once" in result.stdout


def test_in_a_chroot_the_service_starts_at_boot(tmp_path):
    """An image build (chroot, no running systemd) still installs and enables everything, but starts nothing."""
    result, planned = plan(tmp_path, system_state="offline")
    assert "systemctl enable pibridge.service" in planned
    assert "systemctl start pibridge.service" not in planned
    assert "systemctl daemon-reload" not in planned
    assert not any(p.startswith(("udevadm", "runuser")) for p in planned)
    assert "the service starts at the next boot" in result.stdout
    assert "the rules apply at the next boot" in result.stdout
    assert "not on the running Pi (a chroot?): run the check there" in result.stdout


def test_upgrade_of_a_running_service_restarts_it(tmp_path):
    """--upgrade on a Pi where pibridge runs: the package is reinstalled and the service restarted."""
    result, planned = plan(tmp_path, "--upgrade", active=["pibridge.service"], enabled=["pibridge.service"])
    assert any(p.startswith("/opt/pibridge/bin/python -m pip install") and "--upgrade" in p for p in planned)
    assert "systemctl restart pibridge.service" in planned
    assert "systemctl enable pibridge.service" not in planned


def test_offline_checkout_brings_its_build_tools(tmp_path):
    _, planned = plan(tmp_path, "--from", str(REPO), "--offline", "--no-deps")
    assert planned[1].endswith(
        "--no-install-recommends python3-venv i2c-tools python3-setuptools python3-wheel"
        " python3-lgpio python3-libgpiod libgpiod2"
    )


def test_from_the_package_index(tmp_path):
    _, planned = plan(tmp_path, "--from", "pibridge==0.1.0")
    pip = next(p for p in planned if " -m pip install " in p)
    assert pip.endswith("--quiet pibridge==0.1.0")


def test_uninstall_plan(tmp_path):
    machine = Machine(tmp_path, active=["pibridge.service"], enabled=["pibridge.service"])
    result = machine.run("--dry-run", "--purge", staged=False)
    assert result.returncode == 0, result.output
    assert {call[0] for call in result.calls} & WRITES == set()
    # Nothing of pibridge is on this machine: only stopping the (pretend) running service is planned.
    assert "would run: systemctl stop pibridge.service" in result.stdout
    assert json.loads(machine.state_file.read_text())["active"] == ["pibridge.service"]
