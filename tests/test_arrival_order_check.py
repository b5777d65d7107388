"""The arrival-order check the end-to-end tests use (tests/support/ordering.py) is neither too lax nor too strict."""

import random

import pytest

from tests.support.ordering import TwoRuns, assert_two_runs


def test_a_backlog_merged_with_the_new_readings_passes():
    backlog, fresh = list(range(0, 100)), list(range(1000, 1050))
    merged, rng = [], random.Random(7)
    while backlog or fresh:
        source = backlog if backlog and (not fresh or rng.random() < 0.6) else fresh
        merged.append(source.pop(0))
    assert_two_runs(merged, "merged")


@pytest.mark.parametrize("stamps", [[3, 2, 1], [5, 1, 4, 2, 0], [10, 20, 5, 15, 1]])
def test_three_in_falling_order_fail(stamps):
    with pytest.raises(AssertionError, match="out of order"):
        assert_two_runs(stamps, "s")


def test_the_check_names_the_reading_out_of_turn():
    runs = TwoRuns()
    assert [runs.add(ts) for ts in (100, 50, 60)] == [None, None, None]
    assert "55" in runs.add(55)
