"""Fixtures of the fault suite: no daemon outlives the test that started it."""

import pytest

from tests.faults.bridge import STARTED


@pytest.fixture(autouse=True)
def stop_leftover_daemons():
    yield
    while STARTED:
        bridge = STARTED.pop()
        if bridge.running:
            # A test that failed half-way: its daemon would keep running (and pushing) otherwise.
            bridge.kill()
