"""The best trial's test evaluation for the report: ``evaluation-test.json`` beside its checkpoint, or made now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional


def best_test_evaluation(exp, run_evaluate: bool, scratch: Path) -> tuple[Optional[dict[str, Any]], str]:
    """(the best trial's test evaluation or None, where it came from / how to make it)."""
    from results.evaluate import has_checkpoint
    from train.data import DataError
    from tune.experiment import storage
    from tune.experiment.records import ExperimentError

    best = exp.best
    if not best.checkpoint:
        raise ExperimentError(f"{exp.location}: the best trial {best.trial_id} has no checkpoint in summary.json")
    existing = storage.join(best.checkpoint, "evaluation-test.json")
    if storage.is_file(existing):
        return json.loads(storage.read_text(existing)), existing
    command = f"python results/evaluate.py {exp.location}"
    if not run_evaluate:
        return None, f"not evaluated yet (--no-evaluate): {command}"
    if not has_checkpoint(best.checkpoint):
        from train.checkpoint import CHECKPOINT_FILE

        raise ExperimentError(f"{exp.location}: the best trial's checkpoint {best.checkpoint} is missing (no "
                              f"{CHECKPOINT_FILE}); --no-evaluate reports without the test split")
    from results.evaluate import evaluate, write_outputs

    local = storage.local_copy(best.checkpoint, scratch)
    try:
        result = evaluate(local, "test")
    except DataError as error:
        raise DataError(f"{error} (the best trial's test evaluation needs its data set here; "
                        "--no-evaluate reports without it)") from None
    result["checkpoint"] = best.checkpoint
    json_path, png_path = write_outputs(result, local)  # beside the checkpoint (a copy, for object storage)
    if storage.is_uri(best.checkpoint):
        for path in (json_path, png_path):
            storage.write_bytes(storage.join(best.checkpoint, path.name), path.read_bytes())
    return result, existing
