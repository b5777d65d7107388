"""Fixtures for the install.sh tests; the machinery is in install_harness.py."""

from __future__ import annotations

import pytest

from install_harness import Machine, Run, offline_args, venv_requirements_missing


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> tuple[Machine, Run]:
    """One real staged installation for the whole run; tests that change it work on a copy."""
    missing = venv_requirements_missing()
    if missing:
        pytest.skip(missing)
    machine = Machine(tmp_path_factory.mktemp("installed")).with_target_accounts()
    result = machine.run(*offline_args())
    assert result.returncode == 0, result.output
    return machine, result


@pytest.fixture
def copy_of_installed(installed, tmp_path) -> Machine:
    return installed[0].copy(tmp_path / "machine")
