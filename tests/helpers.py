"""Process and file helpers shared by the tests that run the real CLIs in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

from tests.conftest import REPO


def dotted(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(dotted.key, value) for every leaf of a nested dict, as ``--set`` takes them."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from dotted(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def start_in_session(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Run ``command`` in a process session of its own, so it and every Ray process it starts can be
    stopped together by :func:`kill_group`, without touching anything else on the machine."""
    return subprocess.Popen(command, cwd=REPO, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group started by :func:`start_in_session` (its own id, nothing broader)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def result_rows(trial_dir: Path) -> list[dict]:
    """The rows of a Tune trial's result.json (one per report)."""
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_line_path(log: Path) -> Path:
    """The path a CLI printed as its last line (summary.json, a checkpoint)."""
    return Path(log.read_text().strip().splitlines()[-1])
