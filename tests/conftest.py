"""Shared test setup.  Fixture modules live in tests/support/ and are imported here."""

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.support.sim import sim, sim_factory  # noqa: F401  (fixtures)

# In CI every property test draws the same examples on every run, so a red CI is reproducible and
# never a roll of the dice; locally the examples are random, to keep exploring.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", derandomize=False, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the long fault-injection tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long fault-injection run: use --runslow (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
