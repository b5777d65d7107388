"""The on-disk outbox: readings not yet acknowledged by the agent.

See :mod:`pibridge.outbox.store` for the API and its threading, and
docs/delivery.md for what it guarantees.  The other modules are its parts:
``transaction`` (one commit), ``limits`` (what is dropped when), ``recovery``
(a damaged file), ``files`` (opening it), ``stats`` and ``codec``.
"""

from pibridge.outbox.store import (
    Outbox,
    OutboxClosed,
    OutboxEntry,
    OutboxError,
    OutboxInUse,
    OutboxStats,
    read_stats,
)

__all__ = ["Outbox", "OutboxClosed", "OutboxEntry", "OutboxError", "OutboxInUse", "OutboxStats", "read_stats"]
