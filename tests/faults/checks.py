"""Assertions on what the simulator stored: nothing lost, order kept, timestamps kept."""

from __future__ import annotations

from collections import defaultdict

from tests.support.ordering import TwoRuns


def by_sensor(values: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for v in values:
        out[v["sensor"]].append(v)
    return out


def readings(values: list[dict]) -> dict[str, dict[int, dict[str, object]]]:
    """sensor -> timestamp -> {metric_id: value} (a repeated value collapses onto its first copy)."""
    out: dict[str, dict[int, dict[str, object]]] = defaultdict(dict)
    for v in values:
        out[v["sensor"]].setdefault(v["timestamp_ms"], {}).setdefault(v["metric_id"], v["value"])
    return out


def assert_in_order(values: list[dict]) -> None:
    """Per sensor and metric, first copies arrive in timestamp order, as at most two interleaved
    runs (a backlog and the readings taken since it, docs/delivery.md); a repeat of an earlier value
    (same metric and timestamp: the at-least-once case) may come at any time."""
    runs: dict[tuple[str, str], TwoRuns] = defaultdict(TwoRuns)
    seen: set[tuple[str, str, int]] = set()
    for v in values:
        key = (v["sensor"], v["metric_id"])
        ts = v["timestamp_ms"]
        if (*key, ts) in seen:
            continue
        seen.add((*key, ts))
        problem = runs[key].add(ts)
        assert problem is None, f"{key}: {problem}"


def assert_complete(values: list[dict], metrics: dict[str, int]) -> None:
    """Every reading of every sensor carries all its metrics (``metrics``: sensor -> count)."""
    for sensor, per_ts in readings(values).items():
        if sensor not in metrics:
            continue
        partial = {ts: sorted(m) for ts, m in per_ts.items() if len(m) != metrics[sensor]}
        assert not partial, f"sensor {sensor!r}: readings with missing metrics: {dict(list(partial.items())[:5])}"


def assert_no_gaps(timestamps: list[int], interval: float, sensor: str, slack: float = 0.8) -> None:
    """Consecutive readings are one interval apart: no reading was lost in between."""
    ordered = sorted(timestamps)
    limit = (interval + max(slack * interval, 0.25)) * 1000
    gaps = [(a, b) for a, b in zip(ordered, ordered[1:]) if b - a > limit]
    assert not gaps, (
        f"sensor {sensor!r}: {len(gaps)} gap(s) longer than {limit:.0f} ms between readings "
        f"(interval {interval:g} s), first at {gaps[0][0]} -> {gaps[0][1]} ({gaps[0][1] - gaps[0][0]} ms)"
    )


def on_schedule(timestamps: list[int], interval: float, tolerance: float) -> list[tuple[int, int]]:
    """Consecutive pairs whose distance differs from ``interval`` by more than ``tolerance`` seconds."""
    ordered = sorted(timestamps)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if abs((b - a) / 1000 - interval) > tolerance]
