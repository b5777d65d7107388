"""The order in which a sensor's readings may reach the agent (docs/delivery.md, "Order").

A backlog replays from the outbox oldest first while the readings taken since
the connection came back go out at once beside it, so the first copies of a
sensor's readings arrive as at most two runs in timestamp order, interleaved:
never three of them in falling order.  (The outbox itself only ever holds a
sensor's readings in the order they were taken, across any number of outages.)
"""

from __future__ import annotations


class TwoRuns:
    """Feeds timestamps in arrival order; :meth:`add` returns why one is out of turn, or None.

    Greedy: each timestamp extends the run whose newest timestamp is the
    latest one before it, which fails exactly when three first arrivals are
    in falling order.
    """

    def __init__(self) -> None:
        self.newest: int | None = None
        self.other: int | None = None

    def add(self, ts: int) -> str | None:
        if self.newest is None or ts > self.newest:
            self.newest = ts
        elif self.other is None or ts > self.other:
            self.other = ts
        else:
            return (f"the reading at {ts} arrived after ones at {self.other} and {self.newest}: "
                    "out of order within the backlog or within the new readings")
        return None


def assert_two_runs(stamps: list[int], what: str) -> None:
    """*stamps* (first copies, in arrival order) are at most two interleaved runs in order."""
    runs = TwoRuns()
    for ts in stamps:
        problem = runs.add(ts)
        assert problem is None, f"{what}: {problem}"
