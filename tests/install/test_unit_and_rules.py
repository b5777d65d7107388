"""The systemd unit and the udev rules, checked by systemd's own tools where they are installed,
and install.sh checked by shellcheck (scripts/system-deps.sh --test installs both)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from install_harness import INSTALL_SH, REPO

UNIT = REPO / "systemd/pibridge.service"
DROPIN = REPO / "systemd/10-backoff.conf"
RULES = REPO / "udev/60-pibridge.rules"


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value, in order (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def systemd_version() -> int:
    out = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[1])


def runnable_copy(tmp_path: Path, executable: str) -> Path:
    """The unit with ExecStart pointed at an executable that exists here, everything else unchanged."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/pibridge/bin/pibridge " in text
    copy = tmp_path / "pibridge.service"
    copy.write_text(text.replace("ExecStart=/opt/pibridge/bin/pibridge ", f"ExecStart={executable} "))
    return copy


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (scripts/system-deps.sh --test installs systemd)",
)


def test_shellcheck_passes_on_install_sh():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/system-deps.sh --test installs it)")
    result = subprocess.run(["shellcheck", "--shell=bash", str(INSTALL_SH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, installed):
    """Verified as staged by install.sh --root, with ExecStart at the staged command."""
    machine, _ = installed
    staged_command = machine.root / "opt/pibridge/bin/pibridge"
    unit = runnable_copy(tmp_path, str(staged_command))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    complaints = [line for line in result.stderr.splitlines() if "pibridge" in line]
    assert result.returncode == 0, result.stderr
    assert complaints == []


@needs_analyze
def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path):
    """The verify test above can fail: a typo in a section name is caught."""
    unit = runnable_copy(tmp_path, "/bin/true")
    unit.write_text(unit.read_text().replace("[Service]", "[Servce]"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "Unknown section 'Servce'" in result.stderr


@needs_analyze
def test_backoff_dropin_verifies_on_systemd_254_and_later(tmp_path):
    if systemd_version() < 254:
        pytest.skip(f"systemd {systemd_version()} here predates RestartSteps= (254); install.sh skips the drop-in there")
    unit = runnable_copy(tmp_path, "/bin/true")
    dropins = tmp_path / "pibridge.service.d"
    dropins.mkdir()
    shutil.copy(DROPIN, dropins / "10-backoff.conf")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Unknown key" not in result.stderr


@needs_analyze
def test_systemd_rates_the_hardening(tmp_path):
    """systemd-analyze security scores exposure from 0 (locked down) to 10; keep it below 2."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)], capture_output=True, text=True
    )
    match = re.search(r"Overall exposure level for pibridge.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < 2.0, result.stdout


class TestUnit:
    unit = directives(UNIT)

    def test_runs_the_bridge_as_the_service_user(self):
        service = self.unit["Service"]
        assert service["ExecStart"] == ["/opt/pibridge/bin/pibridge run --config /etc/pibridge/config.toml"]
        assert service["User"] == service["Group"] == ["pibridge"]
        assert service["SupplementaryGroups"] == ["gpio i2c spi dialout"]

    def test_notify_with_watchdog(self):
        service = self.unit["Service"]
        assert service["Type"] == ["notify"]
        assert service["NotifyAccess"] == ["main"]
        assert int(service["WatchdogSec"][0]) > 0

    def test_reload_is_sighup(self):
        """`systemctl reload` must reach the daemon's SIGHUP handler (tests/bridge/test_reload_e2e.py)."""
        assert self.unit["Service"]["ExecReload"] == ["/bin/kill -HUP $MAINPID"]

    def test_restarts_on_failure_forever(self):
        assert self.unit["Service"]["Restart"] == ["on-failure"]
        assert int(self.unit["Service"]["RestartSec"][0]) > 0
        assert self.unit["Unit"]["StartLimitIntervalSec"] == ["0"]
        assert self.unit["Service"]["RestartPreventExitStatus"] == ["2"]
        backoff = directives(DROPIN)["Service"]
        assert int(backoff["RestartSteps"][0]) > 0 and backoff["RestartMaxDelaySec"]

    def test_after_network_and_agent_without_requiring_them(self):
        unit = self.unit["Unit"]
        for key in ("After", "Wants"):
            assert set(unit[key][0].split()) == {"network-online.target", "teamviewer-iot-agent.service"}
        assert "Requires" not in unit and "BindsTo" not in unit

    def test_hardening(self):
        service = self.unit["Service"]
        expected = {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "ProtectKernelTunables": "yes",
            "ReadWritePaths": "/var/lib/pibridge",
            "DevicePolicy": "closed",
            "CapabilityBoundingSet": "",
        }
        for key, value in expected.items():
            assert service.get(key) == [value], key

    def test_devices_only_gpio_i2c_spi_and_serial(self):
        allowed = self.unit["Service"]["DeviceAllow"]
        assert sorted(allowed) == sorted([
            "char-gpiochip rw", "char-*gpiomem* rw", "char-i2c rw", "char-spi rw",
            "char-ttyAMA rw", "char-ttyUSB rw", "/dev/ttyS0 rw",
        ])

    def test_working_directory_is_writable_for_lgpio(self):
        service = self.unit["Service"]
        assert service["WorkingDirectory"] == ["/var/lib/pibridge"]
        assert "/var/lib/pibridge" in service["ReadWritePaths"][0].split()

    def test_paths_agree_with_install_sh(self):
        script = INSTALL_SH.read_text()
        assert "readonly VENV=/opt/pibridge\n" in script
        assert "readonly CONF=/etc/pibridge/config.toml\n" in script
        assert "readonly STATE_DIR=/var/lib/pibridge\n" in script
        assert "readonly SERVICE_USER=pibridge\n" in script
        assert "readonly HARDWARE_GROUPS=(gpio i2c spi dialout)\n" in script


class TestUdevRules:
    rules = [(i, line) for i, line in enumerate(RULES.read_text().splitlines()) if line and not line.startswith("#")]

    def test_every_rule_is_explained_by_the_comment_above_it(self):
        lines = RULES.read_text().splitlines()
        for i, _ in self.rules:
            assert lines[i - 1].startswith("#"), f"rule on line {i + 1} has no comment above it"

    def test_each_rule_grants_one_hardware_group_read_write(self):
        for _, rule in self.rules:
            terms = re.findall(r'([A-Z]+(?:\{[^}]*\})?)(==|!=|\+=|:=|=)"([^"]*)"(?:, |$)', rule)
            assert ", ".join(f'{key}{op}"{value}"' for key, op, value in terms) == rule, f"unparsed: {rule}"
            matches = {key for key, op, _ in terms if op == "=="}
            assigned = {key: value for key, op, value in terms if op == "="}
            assert "SUBSYSTEM" in matches, rule
            assert assigned == {"GROUP": assigned["GROUP"], "MODE": "0660"}, rule
            assert assigned["GROUP"] in {"gpio", "i2c", "spi", "dialout"}, rule

    def test_covers_gpiomem_gpiochips_i2c_spi_and_serial(self):
        text = RULES.read_text()
        for match in (
            'SUBSYSTEM=="*gpiomem*", GROUP="gpio"',
            'KERNEL=="gpiochip*", GROUP="gpio"',
            'KERNEL=="i2c-[0-9]*", GROUP="i2c"',
            'KERNEL=="spidev*", GROUP="spi"',
            'SUBSYSTEM=="tty", KERNEL=="ttyAMA[0-9]*|ttyS0|ttyUSB[0-9]*", GROUP="dialout"',
        ):
            assert match in text, match

    def test_udevadm_verify(self):
        if shutil.which("udevadm") is None:
            pytest.skip("udevadm is not installed here")
        probe = subprocess.run(["udevadm", "verify", "--help"], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip("this udevadm has no 'verify' (systemd 253 added it)")
        result = subprocess.run(["udevadm", "verify", str(RULES)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
