"""install.sh --root: a real installation staged into a temporary directory."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import pibridge
from install_harness import INSTALL_SH, REPO, WRITES, Machine, offline_args, snapshot

pytestmark = pytest.mark.timeout(180)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def owner(path: Path) -> tuple[int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid


class TestFreshInstall:
    def test_succeeds_and_counts_its_changes(self, installed):
        _, result = installed
        assert "Done: " in result.stdout and "change(s) made" in result.stdout

    def test_package_runs_from_the_environment(self, installed):
        machine, _ = installed
        python = machine.root / "opt/pibridge/bin/python"
        out = subprocess.run([str(python), "-m", "pibridge.cli", "--version"], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == f"pibridge {pibridge.__version__}"

    def test_environment_sees_debians_packages(self, installed):
        """python3-lgpio and python3-libgpiod come from Debian: the venv must see dist-packages."""
        machine, _ = installed
        python = machine.root / "opt/pibridge/bin/python"
        out = subprocess.run([str(python), "-c", "import sys; print(sys.path)"], capture_output=True, text=True, check=True)
        assert "/usr/lib/python3/dist-packages" in out.stdout

    def test_scripts_point_at_the_target_not_the_staging_dir(self, installed):
        machine, _ = installed
        script = machine.root / "opt/pibridge/bin/pibridge"
        assert script.read_text().splitlines()[0] == "#!/opt/pibridge/bin/python"
        for path in (machine.root / "opt/pibridge/bin").iterdir():
            if path.is_file() and not path.is_symlink():
                assert str(machine.root) not in path.read_text(errors="replace"), path

    def test_command_on_path(self, installed):
        machine, _ = installed
        link = machine.root / "usr/local/bin/pibridge"
        assert link.is_symlink()
        assert os.readlink(link) == "/opt/pibridge/bin/pibridge"

    def test_config_is_the_example_readable_by_the_service_only(self, installed):
        machine, _ = installed
        config = machine.root / "etc/pibridge/config.toml"
        assert config.read_bytes() == (REPO / "examples/config.toml").read_bytes()
        assert mode(config) == 0o640
        assert mode(config.parent) == 0o750
        _, gid = machine.ids("pibridge", "pibridge")
        assert owner(config) == (0, gid)
        assert owner(config.parent) == (0, gid)

    def test_state_dir_private_to_the_service_user(self, installed):
        machine, _ = installed
        state = machine.root / "var/lib/pibridge"
        assert state.is_dir()
        assert mode(state) == 0o700
        assert owner(state) == machine.ids("pibridge", "pibridge")

    def test_chown_calls_use_the_staged_accounts(self, installed):
        machine, result = installed
        uid, gid = machine.ids("pibridge", "pibridge")
        assert result.called("chown") == [
            [f"{uid}:{gid}", str(machine.root / "var/lib/pibridge")],
            [f"0:{gid}", str(machine.root / "etc/pibridge")],
            [f"0:{gid}", str(machine.root / "etc/pibridge/config.toml")],
        ]

    def test_service_user_and_groups(self, installed):
        machine, result = installed
        user = machine.account("passwd", "pibridge")
        assert user[5:] == ["/var/lib/pibridge", "/usr/sbin/nologin"]
        for group in ("gpio", "i2c", "spi", "dialout"):
            assert "pibridge" in machine.account("group", group)[3].split(","), group
        prefix = ["--prefix", str(machine.root)]
        assert result.called("groupadd") == [[*prefix, "--system", g] for g in ("gpio", "i2c", "spi", "dialout")]
        assert result.called("usermod") == [[*prefix, "--append", "--groups", "gpio,i2c,spi,dialout", "pibridge"]]

    def test_udev_rules_and_unit_installed(self, installed):
        machine, _ = installed
        rules = machine.root / "etc/udev/rules.d/60-pibridge.rules"
        unit = machine.root / "etc/systemd/system/pibridge.service"
        assert rules.read_bytes() == (REPO / "udev/60-pibridge.rules").read_bytes()
        assert unit.read_bytes() == (REPO / "systemd/pibridge.service").read_bytes()
        assert mode(rules) == mode(unit) == 0o644

    def test_enabled_in_the_staged_tree(self, installed):
        machine, result = installed
        assert ["--root=" + str(machine.root), "enable", "pibridge.service"] in result.called("systemctl")
        wants = machine.root / "etc/systemd/system/multi-user.target.wants/pibridge.service"
        assert os.readlink(wants) == "/etc/systemd/system/pibridge.service"

    def test_leaves_the_running_machine_alone(self, installed):
        _, result = installed
        for name in ("apt-get", "apt-cache", "dpkg-query", "raspi-config", "udevadm", "runuser", "getent", "id"):
            assert result.called(name) == [], name
        assert all(call[0].startswith("--root=") or call == ["--version"] for call in result.called("systemctl"))
        for action in (
            "python3-venv i2c-tools python3-lgpio python3-libgpiod",
            "raspi-config nonint do_i2c 0",
            "udevadm control --reload-rules",
            "systemctl start pibridge.service",
            "runuser -u pibridge -- /opt/pibridge/bin/pibridge check --config /etc/pibridge/config.toml",
        ):
            assert action in result.stdout, action

    def test_no_backoff_dropin_for_systemd_252(self, installed):
        machine, result = installed
        assert not (machine.root / "etc/systemd/system/pibridge.service.d").exists()
        assert "back-off needs systemd 254" in result.stdout


class TestSecondRun:
    def test_changes_nothing_and_says_so(self, copy_of_installed):
        before = snapshot(copy_of_installed.root)
        result = copy_of_installed.run(*offline_args())
        assert result.returncode == 0, result.output
        assert "Nothing to change: pibridge is installed and up to date." in result.stdout
        assert snapshot(copy_of_installed.root) == before
        assert {call[0] for call in result.calls} & WRITES == set()
        assert not any("enable" in call for call in result.called("systemctl"))

    def test_restores_what_was_damaged_and_only_that(self, copy_of_installed):
        root = copy_of_installed.root
        (root / "var/lib/pibridge").chmod(0o755)
        (root / "etc/udev/rules.d/60-pibridge.rules").write_text("# edited\n")
        result = copy_of_installed.run(*offline_args())
        assert result.returncode == 0, result.output
        assert mode(root / "var/lib/pibridge") == 0o700
        assert (root / "etc/udev/rules.d/60-pibridge.rules").read_bytes() == (REPO / "udev/60-pibridge.rules").read_bytes()
        assert "Done: 2 change(s) made." in result.stdout

    def test_never_overwrites_an_existing_config(self, copy_of_installed):
        config = copy_of_installed.root / "etc/pibridge/config.toml"
        config.write_text("# mine\n")
        result = copy_of_installed.run(*offline_args())
        assert result.returncode == 0, result.output
        assert config.read_text() == "# mine\n"
        assert "keeping the existing /etc/pibridge/config.toml" in result.stdout

    def test_newer_systemd_gets_the_backoff_dropin(self, copy_of_installed):
        state = copy_of_installed.state
        state["systemd_version"] = 256
        copy_of_installed.state_file.write_text(json.dumps(state))
        result = copy_of_installed.run(*offline_args())
        dropin = copy_of_installed.root / "etc/systemd/system/pibridge.service.d/10-backoff.conf"
        assert dropin.read_bytes() == (REPO / "systemd/10-backoff.conf").read_bytes()
        assert mode(dropin) == 0o644
        assert "Done: 2 change(s) made." in result.stdout  # the drop-in's directory and the file

    def test_recreates_a_deleted_user_keeping_its_group(self, copy_of_installed):
        passwd = copy_of_installed.root / "etc/passwd"
        passwd.write_text("".join(l + "\n" for l in passwd.read_text().splitlines() if not l.startswith("pibridge:")))
        _, gid = copy_of_installed.ids("root", "pibridge")
        result = copy_of_installed.run(*offline_args())
        assert result.returncode == 0, result.output
        assert "--gid" in result.called("useradd")[0]
        assert int(copy_of_installed.account("passwd", "pibridge")[3]) == gid

    def test_one_wire_on_request(self, copy_of_installed):
        result = copy_of_installed.run(*offline_args(), "--with-1wire")
        assert "left for the target system (--root): raspi-config nonint do_onewire 0" in result.stdout
        assert result.called("raspi-config") == []


class TestUpgrade:
    def test_reinstalls_the_package(self, copy_of_installed):
        root = copy_of_installed.root
        marker = next((root / "opt/pibridge/lib").glob("python3*/site-packages/pibridge/__init__.py"))
        marker.write_text("broken = True\n")
        result = copy_of_installed.run(*offline_args(), "--upgrade")
        assert result.returncode == 0, result.output
        assert "--upgrade" in next(line for line in result.stdout.splitlines() if "pip install" in line)
        assert marker.read_bytes() == (REPO / "pibridge/__init__.py").read_bytes()
        assert (root / "opt/pibridge/bin/pibridge").read_text().startswith("#!/opt/pibridge/bin/python\n")
        assert "left for the target system (--root): systemctl start pibridge.service" in result.stdout


class TestUninstall:
    def test_removes_what_it_installed_keeps_config_data_and_user(self, copy_of_installed):
        root = copy_of_installed.root
        (root / "var/lib/pibridge/outbox.sqlite").write_text("buffered readings")
        result = copy_of_installed.run("--uninstall")
        assert result.returncode == 0, result.output
        for gone in (
            "opt/pibridge",
            "usr/local/bin/pibridge",
            "etc/systemd/system/pibridge.service",
            "etc/systemd/system/multi-user.target.wants/pibridge.service",
            "etc/udev/rules.d/60-pibridge.rules",
        ):
            assert not os.path.lexists(root / gone), gone
        assert (root / "etc/pibridge/config.toml").exists()
        assert (root / "var/lib/pibridge/outbox.sqlite").read_text() == "buffered readings"
        assert copy_of_installed.account("passwd", "pibridge") is not None
        assert ["--root=" + str(root), "disable", "pibridge.service"] in result.called("systemctl")
        assert "--purge removes them too" in result.stdout

        again = copy_of_installed.run("--uninstall")
        assert again.returncode == 0, again.output
        assert "Nothing to change: pibridge is not installed." in again.stdout

    def test_purge_removes_config_data_and_user(self, copy_of_installed):
        root = copy_of_installed.root
        result = copy_of_installed.run("--purge")
        assert result.returncode == 0, result.output
        assert not (root / "etc/pibridge").exists()
        assert not (root / "var/lib/pibridge").exists()
        assert not (root / "opt/pibridge").exists()
        assert copy_of_installed.account("passwd", "pibridge") is None
        assert copy_of_installed.account("group", "pibridge") is None
        assert "pibridge" not in copy_of_installed.account("group", "gpio")[3].split(",")
        assert result.called("userdel") == [["--prefix", str(root), "pibridge"]]
        # The hardware groups belong to the system, not to pibridge.
        assert copy_of_installed.account("group", "i2c") is not None

    def test_uninstall_keeps_administrators_overrides(self, copy_of_installed):
        override = copy_of_installed.root / "etc/systemd/system/pibridge.service.d/override.conf"
        override.parent.mkdir()
        override.write_text("[Service]\nEnvironment=X=1\n")
        result = copy_of_installed.run("--uninstall")
        assert result.returncode == 0, result.output
        assert override.exists()


class TestDryRun:
    def test_fresh_dry_run_prints_the_plan_and_changes_nothing(self, tmp_path):
        machine = Machine(tmp_path).with_target_accounts()
        before = snapshot(machine.root)
        result = machine.run(*offline_args(), "--dry-run")
        assert result.returncode == 0, result.output
        assert snapshot(machine.root) == before
        assert {call[0] for call in result.calls} & WRITES == set()
        for planned in (
            "would run: groupadd --prefix",
            "would run: useradd --prefix",
            "would run: /usr/bin/python3 -m venv --system-site-packages",
            "pip install",
            "would run: install -m 0640",
            "would run: chown pibridge:pibridge",
            "would run: systemctl --root=",
        ):
            assert planned in result.stdout, planned
        assert "Dry run:" in result.stdout and "nothing was changed" in result.stdout

    def test_dry_run_uninstall_removes_nothing(self, copy_of_installed):
        before = snapshot(copy_of_installed.root)
        result = copy_of_installed.run("--purge", "--dry-run")
        assert result.returncode == 0, result.output
        assert snapshot(copy_of_installed.root) == before
        assert "would run: rm -rf -- " + str(copy_of_installed.root / "opt/pibridge") in result.stdout
        assert "would run: userdel" in result.stdout
        assert {call[0] for call in result.calls} & WRITES == set()


class TestSources:
    def test_installs_offline_from_a_wheel(self, copy_of_installed, tmp_path):
        wheels = tmp_path / "wheels"
        subprocess.run(
            ["/usr/bin/python3", "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--no-index", "--wheel-dir", str(wheels), str(REPO)],
            check=True, capture_output=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        (wheel,) = wheels.glob("pibridge-*.whl")
        site = copy_of_installed.root / "opt/pibridge/lib"
        direct_url = next(site.glob("python3*/site-packages/pibridge-*.dist-info/direct_url.json"))
        assert "pibridge-build." in direct_url.read_text()  # built from a scratch copy of the checkout
        result = copy_of_installed.run(*offline_args(wheel), "--upgrade")
        assert result.returncode == 0, result.output
        assert f"--find-links {wheels}" in result.stdout
        # pip recorded where the package came from: now the wheel, not the checkout.
        direct_url = next(site.glob("python3*/site-packages/pibridge-*.dist-info/direct_url.json"))
        assert wheel.name in direct_url.read_text()
        python = copy_of_installed.root / "opt/pibridge/bin/python"
        out = subprocess.run([str(python), "-m", "pibridge.cli", "--help"], capture_output=True, text=True, check=True)
        assert "pibridge COMMAND" in out.stdout

    def test_without_target_accounts_ownership_is_left_for_the_target(self, copy_of_installed):
        """A packager's staging tree has no /etc/passwd: accounts and chown move to the package's scripts."""
        (copy_of_installed.root / "etc/passwd").unlink()
        (copy_of_installed.root / "etc/group").unlink()
        result = copy_of_installed.run(*offline_args())
        assert result.returncode == 0, result.output
        assert "left for the target system (--root): " + str(copy_of_installed.root) + "/etc/passwd" in result.stdout
        assert result.called("chown") == [] and result.called("useradd") == []

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("missing-dir", "no such file or directory"),
            ("README.txt", "neither a pibridge checkout"),
        ],
    )
    def test_bad_from_is_named(self, tmp_path, source, message):
        (tmp_path / "README.txt").write_text("not a package")
        machine = Machine(tmp_path / "machine").with_target_accounts()
        result = machine.run("--from", str(tmp_path / source))
        assert result.returncode == 1
        assert message in result.stderr
        assert not (machine.root / "opt").exists()

    def test_leaves_the_checkout_as_it_was(self, copy_of_installed, tmp_path):
        """pip builds a checkout in place; installing as root must not leave root-owned build files in it."""
        checkout = tmp_path / "checkout"
        shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info"))
        before = snapshot(checkout)
        result = copy_of_installed.run(*offline_args(checkout), "--upgrade")
        assert result.returncode == 0, result.output
        assert f"building from a copy of {checkout}" in result.stdout
        assert snapshot(checkout) == before
        assert not list(Path(tempfile.gettempdir()).glob("pibridge-build.*"))

    def test_offline_cannot_use_the_index(self, tmp_path):
        machine = Machine(tmp_path).with_target_accounts()
        result = machine.run("--from", "pibridge", "--offline")
        assert result.returncode == 1
        assert "--offline cannot reach the package index" in result.stderr
        assert not (machine.root / "opt").exists()

    def test_script_outside_a_checkout_needs_its_templates(self, tmp_path):
        lone = tmp_path / "install.sh"
        lone.write_bytes(INSTALL_SH.read_bytes())
        machine = Machine(tmp_path / "machine").with_target_accounts()
        result = machine.run(*offline_args(), install_sh=lone)
        assert result.returncode == 1
        assert "examples/config.toml is missing: run install.sh from a pibridge checkout" in result.stderr


class TestFailures:
    def test_a_failing_command_stops_the_install_with_its_name(self, tmp_path):
        machine = Machine(tmp_path, exit_codes={"useradd": 10}).with_target_accounts()
        result = machine.run(*offline_args())
        assert result.returncode == 1
        assert "install.sh: error: 'useradd --prefix" in result.stderr
        assert "failed with exit status 10" in result.stderr
        assert not (machine.root / "opt").exists()  # nothing after the failing step ran

    def test_pip_failure_is_explained(self, copy_of_installed, tmp_path):
        broken = tmp_path / "broken-checkout"
        broken.mkdir()
        (broken / "pyproject.toml").write_text("[project\nname = \n")
        result = copy_of_installed.run("--from", str(broken), "--offline", "--no-deps", "--upgrade")
        assert result.returncode == 1
        assert f"pip could not install pibridge from {broken} (its message is above)" in result.stderr
        assert "Offline, every dependency must be installed already" in result.stderr


class TestOptions:
    def test_unknown_option(self, tmp_path):
        result = Machine(tmp_path).run("--frobnicate")
        assert result.returncode == 2
        assert "unknown option '--frobnicate'" in result.stderr

    @pytest.mark.parametrize("option", ["--root", "--root=", "--from", "--from="])
    def test_options_that_need_a_value(self, tmp_path, option):
        result = Machine(tmp_path).run(option, staged=False)
        assert result.returncode == 2
        assert f"{option.rstrip('=')} needs a" in result.stderr
        assert result.calls == []

    def test_option_equals_value(self, copy_of_installed):
        result = copy_of_installed.run(
            f"--root={copy_of_installed.root}", f"--from={REPO}", "--offline", "--no-deps", staged=False
        )
        assert result.returncode == 0, result.output
        assert "Nothing to change" in result.stdout

    def test_upgrade_and_uninstall_exclude_each_other(self, tmp_path):
        result = Machine(tmp_path).run("--upgrade", "--uninstall")
        assert result.returncode == 2

    def test_help(self, tmp_path):
        result = Machine(tmp_path).run("--help", staged=False)
        assert result.returncode == 0
        for option in ("--from", "--offline", "--upgrade", "--uninstall", "--purge", "--root", "--dry-run"):
            assert option in result.stdout
