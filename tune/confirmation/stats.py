"""Seed statistics of the confirmation stage: mean, standard deviation and a Student-t interval of a handful of
scores, whether two finalists can be told apart, and which seed's run ships. Pure functions of numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

LEVEL = 0.95
"""Confidence level of the intervals."""


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (n - 1) and the two-sided Student-t interval of the mean of ``n`` scores."""

    n: int
    mean: float
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]


def spread(scores: Sequence[float], level: float = LEVEL) -> Optional[Spread]:
    """None without scores; one score has a mean and no spread. The interval is mean ± t(level, n-1) · std/√n
    (scipy.stats.t: with 3 seeds t = 4.30, so an interval is wide: that is what 3 seeds can say)."""
    values = [float(v) for v in scores if v is not None and math.isfinite(v)]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Spread(1, mean, None, None, None)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return Spread(n, mean, std, mean - half, mean + half)


def overlaps(a: Spread, b: Spread) -> bool:
    """Whether the two intervals share a point (no interval, as with one seed: they cannot be told apart)."""
    if None in (a.low, a.high, b.low, b.high):
        return True
    return a.low <= b.high and b.low <= a.high


def ranked(means: dict[str, float], mode: str) -> list[str]:
    """Keys best mean first (``mode`` max or min); ties keep the given order (the search's ranking)."""
    sign = -1.0 if mode == "max" else 1.0
    order = list(means)
    return sorted(order, key=lambda key: (sign * means[key], order.index(key)))


def median_index(scores: Sequence[float], mode: str) -> int:
    """Index of the median run: the middle score, or of two middle ones the worse (never the luckiest seed)."""
    sign = 1.0 if mode == "max" else -1.0
    worst_first = sorted(range(len(scores)), key=lambda i: (sign * scores[i], i))
    return worst_first[(len(scores) - 1) // 2]
