"""The README's promises: its config example is valid and its two commands exist."""

import re
from pathlib import Path

from pibridge.bridge.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_config_example_is_valid():
    block = re.search(r"```toml\n(.*?)```", README, re.S).group(1)
    config = parse_config(block, ROOT / "README.md")
    assert [(s.name, s.driver) for s in config.sensors] == [("Greenhouse air", "bme280"), ("Door", "contact")]


def test_the_first_two_commands_are_make_targets_and_ci_runs_the_test_one():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_demo_installs_only_what_it_needs(tmp_path):
    import subprocess

    plan = subprocess.run(["make", "-n", "-C", str(ROOT), "demo", f"VENV={tmp_path / 'venv'}"],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert installs and all("[test]" not in line for line in installs)
    assert all(">" in line for line in installs), "pip's output goes to a log file, not the terminal"


def test_the_project_metadata_builds_without_setuptools_warnings():
    """setuptools deprecated the license table; Debian's older one (offline installs) rejects the
    SPDX string that replaces it, so the license travels as the LICENSE file both understand."""
    import warnings

    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = read_configuration(ROOT / "pyproject.toml")
    assert [str(w.message) for w in caught if "licen" in str(w.message).lower()] == []
    assert "license" not in config["project"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
