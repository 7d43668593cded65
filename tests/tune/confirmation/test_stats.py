"""The confirmation stage's statistics, as numbers (no Ray)."""

from __future__ import annotations

import math

import pytest

from tune.confirmation.stats import median_index, overlaps, ranked, spread


def test_spread_is_the_student_t_interval_of_the_mean():
    s = spread([0.90, 0.92, 0.94])
    assert s.n == 3 and s.mean == pytest.approx(0.92) and s.std == pytest.approx(0.02)
    # t(0.975, 2) = 4.302653 (tables): half-width 4.302653 * 0.02 / sqrt(3)
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert (s.low, s.high) == (pytest.approx(0.92 - half, abs=1e-6), pytest.approx(0.92 + half, abs=1e-6))
    two = spread([1.0, 3.0])  # t(0.975, 1) = 12.7062
    assert two.high - two.mean == pytest.approx(12.7062 * math.sqrt(2) / math.sqrt(2), abs=1e-3)


def test_one_or_no_score_has_no_interval_and_nan_is_left_out():
    assert spread([]) is None and spread([float("nan")]) is None
    one = spread([0.5, float("nan")])
    assert (one.n, one.mean, one.std, one.low, one.high) == (1, 0.5, None, None, None)
    assert overlaps(one, spread([0.1, 0.2]))  # no interval: not distinguishable


def test_overlap_and_ranking():
    assert overlaps(spread([0.90, 0.92]), spread([0.91, 0.93]))
    assert not overlaps(spread([0.90, 0.9001, 0.9002]), spread([0.95, 0.9501, 0.9502]))
    assert ranked({"a": 0.8, "b": 0.9, "c": 0.9}, "max") == ["b", "c", "a"]
    assert ranked({"a": 0.8, "b": 0.9}, "min") == ["a", "b"]


def test_the_median_seed_ships_never_the_luckiest():
    assert median_index([0.7, 0.9, 0.8], "max") == 2
    assert median_index([0.7, 0.9, 0.8, 0.95], "max") == 2  # of 0.8 and 0.9, the worse
    assert median_index([0.3, 0.1], "min") == 0  # loss: of 0.1 and 0.3, the worse is 0.3
