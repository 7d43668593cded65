"""Which configurations of a finished search the confirmation stage trains again: the ``top_k`` best distinct ones
(a multi-objective search: its Pareto front, best first on the first objective, up to ``top_k``)."""

from __future__ import annotations

import json

from tune.experiment.confirmation import Finalist
from tune.experiment.records import TERMINATED, Summary, TrialRecord


def _key(trial: TrialRecord) -> str:
    """What makes two trials the same configuration: their sampled values (a warm-start point the sampler proposed
    again trains the same config twice; it is one finalist)."""
    return json.dumps(trial.params, sort_keys=True, default=str)


def pick_finalists(summary: Summary, top_k: int) -> list[Finalist]:
    """The finalists in the search's order; trials that failed or have no score are never among them."""
    scored = [t for t in summary.trials if t.status == TERMINATED and t.metrics.get(summary.metric) is not None]
    if summary.front is not None:
        by_id = {t.trial_id: t for t in scored}
        ordered = [by_id[i] for i in summary.front if i in by_id]
    else:
        sign = -1.0 if summary.mode == "max" else 1.0
        ordered = sorted(scored, key=lambda t: sign * t.metrics[summary.metric])  # stable: ties in trial order
    finalists, seen = [], set()
    for trial in ordered:
        if _key(trial) in seen:
            continue
        seen.add(_key(trial))
        finalists.append(Finalist(trial_id=trial.trial_id, params=trial.params, config=trial.config,
                                  search_score=trial.metrics[summary.metric]))
        if len(finalists) == top_k:
            break
    return finalists
