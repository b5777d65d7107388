"""Pytest fixtures for a running agent simulator (``pibridge.sim.Simulator``).

``sim``
    A started simulator on free ports with its state in a fresh temporary
    directory, stopped after the test.
``sim_factory``
    ``sim_factory(state_dir=None, **kwargs)`` starts a simulator (default:
    a fresh temporary directory, free ports); every one it started is
    stopped after the test.  Starting two in turn on the same directory
    is how a restart is tested.
``dialect_sim``
    A started simulator, parametrised over the ways an agent may answer:
    plain answers as JSON strings (as the reference prints them) and as bare
    text, in the reference's dialect and the vendor SDKs'.  A test using it
    runs once per way (ids ``json``, ``bare``, ``vendor-bare``, ``both-json``);
    import it into the test module.
``free_port()``
    A TCP port on 127.0.0.1 that nothing listens on right now, below the
    ephemeral range (:mod:`tests.support.ports`).
"""

from __future__ import annotations

import pytest

from pibridge.sim import Simulator, SimulatorError
from tests.support.ports import free_port



@pytest.fixture
def sim_factory(tmp_path_factory):
    started: list[Simulator] = []

    def start(state_dir=None, **kwargs) -> Simulator:
        if state_dir is None:
            state_dir = tmp_path_factory.mktemp("sim")
        chosen_here = "provision_port" not in kwargs and "api_port" not in kwargs
        for attempt in range(3):
            ports = {"provision_port": free_port(), "api_port": free_port()} if chosen_here else {}
            simulator = Simulator(state_dir, **{**kwargs, **ports})
            started.append(simulator)
            try:
                return simulator.start()
            except SimulatorError as exc:
                # Another test run may grab a free port between free_port() and
                # Mosquitto's bind; only then is another pair worth a try.
                if not chosen_here or attempt == 2 or "Address already in use" not in str(exc):
                    raise

    yield start
    for simulator in reversed(started):
        simulator.stop()


@pytest.fixture
def sim(sim_factory) -> Simulator:
    return sim_factory()


#: (dialect, text_answers) of :func:`dialect_sim`, by test id.
DIALECTS = {
    "json": ("reference", "json"),
    "bare": ("reference", "bare"),
    "vendor-bare": ("vendor", "bare"),
    "both-json": ("both", "json"),
}


@pytest.fixture(params=list(DIALECTS.values()), ids=list(DIALECTS))
def dialect_sim(request, sim_factory) -> Simulator:
    dialect, text_answers = request.param
    return sim_factory(dialect=dialect, text_answers=text_answers)
