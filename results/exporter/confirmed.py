"""The confirmed winner as export.py's default (tune/confirmation/): of a search with a finished confirmation stage,
the winner's median-seed run ships (summary.json ``confirmation.shipped``: the middle score of its seeds, of two middle
ones the worse, never the luckiest seed), and model.json / MODEL_CARD.md record which run and what the seeds said."""

from __future__ import annotations

from typing import Any, Optional

SHIPPED_RULE = "the confirmed winner's median seed (of two middle scores the worse): never its luckiest seed"


def confirmation_meta(source) -> Optional[dict[str, Any]]:
    """model.json's ``confirmation``: which run ships and the seed statistics behind it; None when the exported
    trial is not a confirmation run."""
    trial, summary = source.trial or {}, source.summary or {}
    confirmation = summary.get("confirmation")
    if "confirms" not in trial or not confirmation:
        return None
    finalist = next(f for f in confirmation["finalists"] if f["trial_id"] == trial["confirms"])
    return {"finalist": finalist["trial_id"], "seed": trial["seed"], "run": trial["trial_id"], "shipped": SHIPPED_RULE,
            "seeds": confirmation["seeds"], "metric": confirmation["metric"], "search_score": finalist["search_score"],
            "val": finalist["val"], "test": finalist["test"], "optimism": finalist["optimism"],
            "distinguishable_from_runner_up": confirmation["distinguishable"], "verdict": confirmation["verdict"]}


def card_lines(meta: dict[str, Any]) -> list[str]:
    """MODEL_CARD.md's confirmation section (none without one)."""
    c = meta.get("confirmation")
    if not c:
        return []
    val = c["val"]
    half = f" ± {val['high'] - val['mean']:.4f}" if val.get("high") is not None else ""
    lines = ["## Confirmation over seeds", "",
             f"Configuration of search trial `{c['finalist']}` trained again from scratch with seeds {c['seeds']} "
             f"(the validation split unchanged): `{c['metric']}` {val['mean']:.4f}{half} (mean ± 95 % Student-t "
             f"interval; the search reported {c['search_score']:.4f}, optimism {c['optimism']:+.4f}).",
             ""]
    if c["test"]:
        test = c["test"]
        half = f" ± {test['high'] - test['mean']:.4f}" if test.get("high") is not None else ""
        lines += [f"Test accuracy over the seeds: {test['mean']:.4f}{half}.", ""]
    return lines + [f"This model is run `{c['run']}`, seed {c['seed']}: {c['shipped']}.", "", c["verdict"] or "", ""]
