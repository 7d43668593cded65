"""export --pick on a written summary: which front point ships, and the one line when none can."""

from __future__ import annotations

import pytest

from results.exporter.pick import constraints, pick
from results.exporter.source import ExportError

OBJECTIVES = [{"metric": "val_acc", "mode": "max"}, {"metric": "latency_ms", "mode": "min"}]


def _trial(trial_id: str, acc: float, latency: float) -> dict:
    return {"trial_id": trial_id, "metrics": {"val_acc": acc, "latency_ms": latency},
            "checkpoint": f"trial_{trial_id}/c"}


FRONT = [_trial("acc", 0.99, 3.0), _trial("knee", 0.97, 1.2), _trial("mid", 0.93, 1.0), _trial("fast", 0.80, 0.5)]
MULTI = {"experiment": "pareto", "metric": "val_acc", "mode": "max", "objectives": OBJECTIVES,
         "front": [t["trial_id"] for t in FRONT], "trials": FRONT + [_trial("off", 0.5, 2.0)], "best": FRONT[0]}
SINGLE = {"experiment": "smoke", "metric": "val_acc", "mode": "max", "objectives": None, "front": None,
          "trials": [FRONT[1]], "best": FRONT[1]}


@pytest.mark.parametrize("how, max_latency, min_acc, expected", [
    ("best", None, None, "acc"), ("fastest", None, None, "fast"), ("balanced", None, None, "knee"),
    ("fastest", None, 0.95, "knee"), ("best", 1.1, None, "mid"), ("balanced", 1.5, 0.9, "knee"),
])
def test_pick_from_the_front(how, max_latency, min_acc, expected):
    assert pick(MULTI, how, constraints(max_latency, min_acc))["trial_id"] == expected


def test_nothing_on_the_front_meets_the_constraints_names_the_closest_point():
    """Closest: the smallest relative shortfall summed over the constraints (fast: 18 % short of 0.98; mid:
    5 % short of it and 25 % over 0.8 ms)."""
    with pytest.raises(ExportError) as error:
        pick(MULTI, "fastest", constraints(0.8, 0.98))
    assert str(error.value) == ("nothing on the front of pareto satisfies --max-latency-ms 0.8 --min-val-acc 0.98; "
                                "the closest is trial fast (val_acc 0.8, latency_ms 0.5)")


def test_a_single_objective_search():
    assert pick(SINGLE, "best", {})["trial_id"] == "knee"  # as without --pick
    assert pick(SINGLE, "best", constraints(None, 0.9))["trial_id"] == "knee"
    with pytest.raises(ExportError, match=r"^nothing \(its best trial\) of smoke satisfies --min-val-acc 0.98; "
                                          r"the closest is trial knee \(val_acc 0.97\)$"):
        pick(SINGLE, "best", constraints(None, 0.98))
    for how, limits in (("fastest", {}), ("balanced", {}), ("best", constraints(2.0, None))):
        with pytest.raises(ExportError, match=r"needs a multi-objective search with a latency_ms objective; smoke "
                                              r"optimised val_acc alone"):
            pick(SINGLE, how, limits)
