"""Helpers shared by the tests; no test module imports another. This module: process and file helpers of the
tests that run the real CLIs in subprocesses. Beside it: search (tune/run_search.py as a process), cli (a CLI's
main(argv) in this process), searched (the session's shared tiny search), deploy_models and serve_process (the
deploy tests' models and server), wandb_records (offline W&B runs read back), layouts (data sets on disk)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
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
    """SIGKILL what :func:`start_in_session` started: its process group and every process below it, each
    by its own id, and wait until they are gone. Ray starts its workers (Train controller and workers,
    trial actors) in sessions of their own: a group kill alone leaves them running for ~2 s more, long
    enough to train another epoch and commit its checkpoint."""
    below = [pid for pid, _ in descendants(proc.pid)]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in below):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (killed children of a killed raylet are reaped late here)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            try:
                cmdline = (Path("/proc") / str(child) / "cmdline").read_bytes()
                found.append((child, cmdline.replace(b"\0", b" ").decode()))
            except OSError:
                continue
            stack.append(child)
    return found


def result_rows(trial_dir: Path) -> list[dict]:
    """The rows of a Tune trial's result.json (one per report)."""
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trained_rows(trial_dir: Path) -> list[dict]:
    """The rows of epochs trained, without the rows a resumed run reports again (train/metrics.py REPORTED_AGAIN)."""
    from train.metrics import REPORTED_AGAIN

    return [row for row in result_rows(trial_dir) if not row.get(REPORTED_AGAIN)]


def last_line_path(log: Path) -> Path:
    """The path a CLI printed as its last line (summary.json, a checkpoint)."""
    return Path(log.read_text().strip().splitlines()[-1])


def wait_held(proc: subprocess.Popen, folder: Path, log: Path, timeout: float = 240) -> dict:
    """The marker of the process held at ``folder`` (infra/hold.py) while ``proc`` runs; the log on failure."""
    from infra import hold

    try:
        return hold.wait_held(folder, timeout, alive=lambda: proc.poll() is None)
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{log.read_text()[-5000:]}") from None


def fixed_model_smoke() -> dict:
    """search_spaces/smoke.yaml without its model choice (and the warm start naming it): every trial trains
    ``trial.model``, here the small CNN."""
    import yaml

    raw = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    raw["space"] = {key: param for key, param in raw["space"].items() if not key.startswith("model.")}
    raw["searcher"]["warm_start"] = []
    raw["trial"]["model"]["name"] = "small_cnn"
    return raw


def stop_when_held(proc: subprocess.Popen, folder: Path, log: Path, send, expected: int, timeout: float = 300) -> dict:
    """Wait until ``proc`` holds at ``folder``, call ``send(pid)`` (the fault: a signal to it or its group), then
    assert it exits with ``expected``; whatever happens, stop everything it started. The hold marker."""
    try:
        held = wait_held(proc, folder, log)
        send(proc.pid)
        assert proc.wait(timeout=timeout) == expected, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    return held
