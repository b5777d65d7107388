"""The port expanders' debounce rule, for any sequence of polled levels (property-based).

The rule is the GPIO contact driver's: after a change is taken, further changes are ignored for
``bounce_time``; a level that differs from the reported one once that time is over is taken.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from pibridge.drivers.i2c._expander import Pin

samples = st.lists(st.tuples(st.floats(0.0, 0.1), st.booleans()), min_size=1, max_size=60)


def feed(pin, polls):
    """Poll *pin* with (time step, level) pairs; return the changes taken as (time, value)."""
    now, taken = 0.0, []
    for step, high in polls:
        now += step
        if pin.update(int(high) << pin.bit, now):
            taken.append((now, pin.reported))
    return now, taken


@settings(max_examples=200, deadline=None)
@given(polls=samples, bounce=st.sampled_from([None, 0.01, 0.05]), active_low=st.booleans())
def test_changes_alternate_keep_their_distance_and_the_last_level_wins(polls, bounce, active_low):
    pin = Pin("door", bit=3, label="p3", active_low=active_low, bounce_time=bounce)
    now, taken = feed(pin, polls)
    values = [value for _, value in taken]
    assert all(a != b for a, b in zip(values, values[1:])), "a change is reported only when the value changes"
    if values:
        assert values[0] is True, "the first change from the initial inactive state is to active"
    times = [t for t, _ in taken]
    if bounce:
        assert all(b - a >= bounce - 1e-12 for a, b in zip(times, times[1:])), "changes inside the bounce time"
    last_high = polls[-1][1]
    expected = last_high != active_low
    if not bounce:
        assert pin.reported == expected, "without debounce every poll's level is taken"
    # Once the bounce time is over, the level the line settled at is reported, not lost.
    pin.update(int(last_high) << 3, now + (bounce or 0) + 1e-9)
    assert pin.reported == expected
