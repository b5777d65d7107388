"""Property: whatever mix of appends, removes, commits and restarts, what remains comes out in FIFO order."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pibridge.outbox import Outbox
from pibridge.readings import Reading

values = st.one_of(
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.text(max_size=8),
)
readings = st.builds(
    Reading,
    sensor=st.sampled_from(["bme280", "dht22", "door", "ds18b20-28-0316"]),
    timestamp_ms=st.integers(min_value=0, max_value=2**45),
    values=st.dictionaries(st.sampled_from(["temperature", "humidity", "state", "note"]), values, max_size=4),
)


class OutboxQueue(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="pibridge-outbox-prop-"))
        self.path = self.dir / "outbox.sqlite"
        self.outbox = self._open()
        self.model: list[tuple[int, Reading]] = []  # what should remain, oldest first

    def _open(self) -> Outbox:
        # max_age None: the generated timestamps are arbitrary, and ageing out is not what is checked.
        return Outbox(self.path, max_age=None, auto_commit=False)

    @rule(batch=st.lists(readings, max_size=6))
    def append(self, batch: list[Reading]) -> None:
        before = {e.id for e in self.outbox.peek(10_000)}
        self.outbox.append(batch)
        new = [e for e in self.outbox.peek(10_000) if e.id not in before]
        assert [e.reading for e in new] == batch
        self.model += [(e.id, e.reading) for e in new]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        ids = [i for i, _ in self.model]
        gone = set(data.draw(st.lists(st.sampled_from(ids), max_size=len(ids))))
        self.outbox.remove(gone)
        self.model = [(i, r) for i, r in self.model if i not in gone]

    @rule(data=st.data(), limit=st.integers(min_value=1, max_value=5))
    def peek_a_page(self, data: st.DataObject, limit: int) -> None:
        after = data.draw(st.sampled_from([0] + [i for i, _ in self.model]))
        page = self.outbox.peek(limit, after_id=after)
        assert [(e.id, e.reading) for e in page] == [(i, r) for i, r in self.model if i > after][:limit]

    @rule()
    def commit(self) -> None:
        self.outbox.commit()

    @rule()
    def reopen(self) -> None:
        self.outbox.close()
        self.outbox = self._open()

    @invariant()
    def remaining_in_fifo_order(self) -> None:
        entries = self.outbox.peek(10_000)
        assert [(e.id, e.reading) for e in entries] == self.model
        assert self.outbox.stats().depth == len(self.model)

    def teardown(self) -> None:
        self.outbox.close()
        shutil.rmtree(self.dir, ignore_errors=True)


OutboxQueue.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_outbox_fifo_order = OutboxQueue.TestCase
