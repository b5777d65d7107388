"""The charts' memory: fixed-size rings, newest points by sequence number, numbers only."""

from pibridge.readings import Reading
from pibridge.web.history import History, MetricRing


def test_a_full_ring_forgets_the_oldest_points():
    ring = MetricRing(3)
    for seq in range(1, 6):
        ring.append(seq, 1000 * seq, float(seq))
    assert len(ring) == 3
    assert ring.since(0) == [(3, 3000, 3.0), (4, 4000, 4.0), (5, 5000, 5.0)]
    assert ring.since(4) == [(5, 5000, 5.0)]
    assert ring.since(5) == []


def test_since_finds_the_newer_points_after_the_ring_wrapped_many_times():
    ring = MetricRing(7)
    for seq in range(1, 100, 2):  # odd sequence numbers only, as when several metrics share the counter
        ring.append(seq, seq, seq)
    assert [p[0] for p in ring.since(90)] == [91, 93, 95, 97, 99]
    assert [p[0] for p in ring.since(0)] == [87, 89, 91, 93, 95, 97, 99]


def test_history_keeps_numbers_and_states_but_only_the_last_text():
    history = History(window_seconds=60, max_points=100)
    history.add(Reading("door", 1000, {"contact": True, "label": "front"}))
    history.add(Reading("door", 2000, {"contact": False, "label": "back"}))
    assert history.since(0) == {"door": {"contact": [[1000, 1.0], [2000, 0.0]]}}
    assert history.last("door", "label") == (2000, "back")
    assert history.sequence == 2


def test_rings_hold_the_window_at_the_sensors_interval_and_at_most_max_points():
    history = History(window_seconds=600, max_points=50)
    assert history.plan("slow", 60.0) == 10
    assert history.plan("fast", 0.5) == 50
    for i in range(200):
        history.add(Reading("slow", i * 60_000, {"t": float(i)}))
    for i in range(2400):
        history.add(Reading("fast", i * 500, {"t": float(i)}))
    points = history.since(0)
    assert len(points["slow"]["t"]) == 10 and points["slow"]["t"][-1] == [199 * 60_000, 199.0]
    assert len(points["fast"]["t"]) == 50 and points["fast"]["t"][-1] == [2399 * 500, 2399.0]


def test_tap_records_then_passes_the_reading_on():
    history = History()
    passed = []
    sink = history.tap(passed.append)
    reading = Reading("greenhouse", 5000, {"temperature": 21.5})
    sink(reading)
    assert passed == [reading]
    assert history.last("greenhouse", "temperature") == (5000, 21.5)


def test_a_fast_sensor_keeps_one_point_per_slot_so_the_chart_reaches_back_the_whole_window():
    history = History(window_seconds=100, max_points=10)   # slots of 10 s
    assert history.plan("fast", 1.0) == 10
    for second in range(200):
        history.add(Reading("fast", second * 1000, {"t": float(second)}))
    points = history.since(0)["fast"]["t"]
    # The newest reading of each of the last ten 10-s slots: 100 s back, not just the last 10 readings.
    assert points == [[ms, ms / 1000] for ms in range(109_000, 200_000, 10_000)]
    # A reading that replaced the newest point is sent again to a page that had the old one.
    seq = history.sequence
    history.add(Reading("fast", 200_500, {"t": 200.5}))
    assert history.since(seq) == {"fast": {"t": [[200_500, 200.5]]}}
