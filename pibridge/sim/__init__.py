"""Local stand-in for the TeamViewer IoT Agent: Mosquitto plus the agent's API logic.

``Simulator`` is the Python API (tests, ``pibridge demo``); ``pibridge sim``
(:mod:`pibridge.sim.cli`) runs one in the foreground.
"""

from .broker import BrokerFailed, MosquittoMissing
from .faults import Faults
from .simulator import Simulator, SimulatorError
from .store import Store

__all__ = ["Simulator", "SimulatorError", "MosquittoMissing", "BrokerFailed", "Faults", "Store"]
