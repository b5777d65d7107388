"""Shared test setup.  Fixture modules live in tests/support/ and are imported here."""

import pytest

from tests.support.sim import sim, sim_factory  # noqa: F401  (fixtures)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the long fault-injection tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long fault-injection run: use --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
