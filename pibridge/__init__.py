"""pibridge: Raspberry Pi sensors to the TeamViewer IoT Agent.

Data path: drivers (``pibridge.drivers``) -> readings (``pibridge.readings``)
-> bridge (``pibridge.bridge``) -> outbox (``pibridge.outbox``) -> agent
client (``pibridge.agent``).  ``pibridge.sim`` is a local stand-in for the
agent.
"""

__version__ = "0.1.0"
