"""tune/run_search.py as a real process for the search tests: the smoke space on the tiny synthetic set on a
private 2-CPU Ray, started in a session of its own (so it and its Ray can be killed together)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.helpers import dotted, kill_group, start_in_session, trained_rows

SMOKE = REPO / "search_spaces" / "smoke.yaml"
RUN_SEARCH = REPO / "tune" / "run_search.py"


def search_args(tiny_data: dict, storage: Path | str, *overrides: str) -> list[str]:
    """CLI arguments running the smoke space on the tiny synthetic set on a private 2-CPU Ray."""
    data = [f"trial.data.{key}={value}" for key, value in dotted(tiny_data)]
    return ["--config", str(SMOKE), "--storage", str(storage), "--address", "local", "--num-cpus", "2",
            "--set", *data, "wandb.enabled=false", *overrides]


def start_search(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, **env}
    environ.pop("RAY_ADDRESS", None)
    return start_in_session([sys.executable, str(RUN_SEARCH), *args], log, environ)


def search_to_the_end(args: list[str], log: Path, timeout: float) -> None:
    """Run a search (or a --resume) in a session of its own and require exit 0; nothing of it is left running."""
    proc = start_search(args, log)
    try:
        assert proc.wait(timeout=timeout) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)


def epochs_of(trial_dir: Path) -> list[int]:
    """The epochs a trial trained, in order (rows a resumed run reports again left out)."""
    return [row["epoch"] for row in trained_rows(trial_dir)]
