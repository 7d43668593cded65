"""Expected best validation score against the number of trials (Dodge et al. 2019, "Show Your Work: Improved
Reporting of Experimental Results", EMNLP): what a search of n trials finds on average, from the scores of N trials.

With the N scores sorted, v_(1) <= ... <= v_(N), and n trials drawn from them with replacement (the empirical
distribution), the best of the n is v_(i) with probability (i/N)^n - ((i-1)/N)^n, so

    E[max of n] = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n)

exactly, for every n = 1..N; likewise E[max^2], hence the spread. For a metric to minimise the order is reversed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ExpectedBest:
    n: int
    """Trials drawn."""
    mean: float
    """Expected best of n draws."""
    std: float
    """Standard deviation of the best of n draws."""


def expected_best(scores: list[float], mode: str = "max", up_to: int | None = None) -> list[ExpectedBest]:
    """E[best of n] and its standard deviation for n = 1..``up_to`` (default: len(scores)), from ``scores``."""
    if not scores:
        return []
    values = sorted(scores, reverse=mode == "min")  # the last is the best
    size = len(values)
    out = []
    for n in range(1, (up_to or size) + 1):
        mean = square = 0.0
        below = 0.0  # ((i-1)/N)^n
        for i, value in enumerate(values, start=1):
            at = (i / size) ** n
            weight = at - below
            below = at
            mean += weight * value
            square += weight * value * value
        out.append(ExpectedBest(n, mean, math.sqrt(max(square - mean * mean, 0.0))))
    return out
