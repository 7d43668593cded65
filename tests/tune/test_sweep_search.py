"""W&B's sweep engine inside Ray Tune, end to end: one real search (wandb_bayes proposing, wandb_hyperband stopping,
W&B offline) whose driver is killed while its 2nd trial is held after epoch 1, then resumed; and the comparison of
that search with a TPE + ASHA search of the same space and data (tests/results/searched.py).

The same search, run with a (fake) W&B key in its environment, shows the key never leaves the driver: no process
it starts (Ray's, the trials', W&B's service) has it in its environment, and no file of Ray's session folder (the
trials' output included) or of the experiment holds it, nor does the console."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest

from infra import hold
from tests.helpers import descendants, kill_group, last_line_path, result_rows, trained_rows
from tests.helpers.search import search_args, start_search
from tests.helpers.searched import tiny_search
from tests.helpers.wandb_records import read_offline_run

pytestmark = pytest.mark.slow  # the module's search (and a --resume of it) runs on a Ray of its own

ENGINE = ["searcher.algorithm=wandb_bayes", "budget.scheduler=wandb_hyperband",
          # A first trial that learns (0.83 at epoch 3 here, where many draws stay at chance, 1/6): W&B's hyperband
          # then has a bar to stop the held trial by at its epoch 2, after the resume, from the replayed first trial.
          "searcher.warm_start=[{model.name: small_cnn, model.cnn.blocks: 3, model.cnn.width: 16, optim.lr: 0.003}]"]


def compare(*args: str) -> subprocess.CompletedProcess:
    """``python results/compare.py ARGS``, run by its main in this process (the search's imports are paid already)."""
    import contextlib
    import io

    from results.compare import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["results/compare.py", *args], code, out.getvalue(), err.getvalue())


def table_rows(page: str) -> list[list[list[str]]]:
    """The body rows of every table of an HTML page, as the text of their cells."""
    tables = re.findall(r"<tbody>(.*?)</tbody>", page, flags=re.S)
    return [[[html.unescape(text) for text in re.findall(r"<td[^>]*>(.*?)</td>", row)]
             for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)] for body in tables]


FAKE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"  # 40 hex digits, the shape of a real W&B key


def files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:  # sockets, files removed while Ray shut down
                continue
    return found


def environ(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "environ").read_bytes()
    except OSError:  # gone since it was listed
        return b""


@pytest.fixture(scope="module")
def engine_search(tiny_data, tmp_path_factory):
    """3 trials x 3 epochs, one at a time (grace 1, eta 3: W&B's band 1 judges a trial at its 2nd epoch); the driver
    and its Ray are killed while the 2nd trial is held after epoch 1's checkpoint, then --resume runs to the end.
    Both sessions run with the fake key, and Ray's temp folder of their own (a short path: Ray's socket paths must
    fit in 107 bytes, and the shared /tmp/ray holds other users' sessions)."""
    root = tmp_path_factory.mktemp("engine")
    storage, holds = root / "runs", root / "hold"
    ray_tmp = Path(tempfile.mkdtemp(prefix="rk-", dir="/tmp"))
    env = {"WANDB_API_KEY": FAKE_KEY, "WANDB_MODE": "offline", "RAY_TMPDIR": str(ray_tmp)}
    args = search_args(tiny_data, storage, "budget.num_samples=3", "trial.epochs=3", "max_concurrent_trials=1",
                       "budget.grace_period=1", "budget.reduction_factor=3", "wandb.enabled=true", *ENGINE)
    first_log = root / "first.log"
    proc = start_search(args, first_log, **env, **{hold.ENV: f"checkpoint:1:{holds}:2"})
    try:
        held = hold.wait_held(holds, 240, alive=lambda: proc.poll() is None)
        # While the trial is held after its first epoch (W&B has logged it, every Ray process is up): the environment
        # of every process the driver started. (The driver's own /proc/<pid>/environ is its environment at exec; it
        # is the one process that holds the key.)
        below = descendants(proc.pid)
        holding = [command for pid, command in below if FAKE_KEY.encode() in environ(pid)]
    finally:
        kill_group(proc)
    experiment = Path(held["experiment_dir"])
    before = {path.parent.name: path.read_text() for path in experiment.glob("trial_*/result.json")}
    resume_log = root / "resume.log"
    proc = start_search(args + ["--resume", str(experiment)], resume_log, **env)
    try:
        assert proc.wait(timeout=300) == 0, resume_log.read_text()[-5000:]
    finally:
        kill_group(proc)
    try:
        yield {"experiment": experiment, "held": held, "before": before, "log": resume_log, "first_log": first_log,
               "processes": " ".join(command for _, command in below), "holding": holding, "ray_tmp": ray_tmp}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_the_wandb_key_stays_in_the_driver(engine_search):
    names = engine_search["processes"]
    assert "gcs_server" in names and "raylet" in names and "wandb-core" in names, names
    assert engine_search["holding"] == [], "processes started with the W&B key in their environment"
    ray_tmp = engine_search["ray_tmp"]
    assert list(ray_tmp.glob("ray/session_*")) and files_holding(ray_tmp, b"raylet")  # the sessions' logs were read
    for root in (ray_tmp, engine_search["experiment"]):
        assert files_holding(root, FAKE_KEY.encode()) == [], f"the W&B key was written under {root}"
    for log in (engine_search["first_log"], engine_search["log"]):
        assert FAKE_KEY not in log.read_text()


@pytest.mark.timeout(600)
def test_a_wandb_engine_search_resumes_exactly_after_a_kill(engine_search):
    experiment, held = engine_search["experiment"], engine_search["held"]
    assert last_line_path(engine_search["log"]) == experiment / "summary.json"
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["num_trials"] == 3 and summary["num_errors"] == 0, summary
    assert all(t["status"] == "TERMINATED" for t in summary["trials"]), summary["trials"]
    # The finished trial was kept as it was; the held one went on at epoch 2, none trained twice.
    finished = [name for name in engine_search["before"] if name != f"trial_{held['trial_id']}"]
    assert len(finished) == 1
    assert (experiment / finished[0] / "result.json").read_text() == engine_search["before"][finished[0]]
    held_epochs = [row["epoch"] for row in trained_rows(experiment / f"trial_{held['trial_id']}")]
    # Stopped at epoch 2 by W&B's hyperband, which judged it against the first trial: a scheduler that had lost its
    # history at the restart would have had no other run to compare it with and let it finish.
    assert held_epochs == [1, 2], held_epochs
    assert "stopped by W&B hyperband at epoch 2/3" in engine_search["log"].read_text()

    # The study is the record: one Optuna trial per Tune trial, PRUNED where W&B's hyperband stopped it.
    study = optuna.load_study(study_name=experiment.name, storage=f"sqlite:///{experiment}/study.db")
    by_id = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert sorted(by_id) == sorted(t["trial_id"] for t in summary["trials"])
    for record in summary["trials"]:
        trial = by_id[record["trial_id"]]
        assert trial.state.name == ("COMPLETE" if record["epochs"] == 3 else "PRUNED")
        rows = result_rows(experiment / f"trial_{record['trial_id']}")
        assert trial.intermediate_values == {row["epoch"]: pytest.approx(row["val_acc"]) for row in rows}

    # Exact resume of the engine: the 3rd trial, proposed after the restart, is what W&B's engine proposes from the
    # first two trials with the same seed (the runs come from study.db, the seed is seed + trials so far).
    from tune.engines.wandb_sweep import SWEEP_ATTR, SweepSearcher, engine_config
    from tune.space import load_search_file

    search = load_search_file(experiment / "search.yaml")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert SWEEP_ATTR not in trials[0].user_attrs  # the warm-start point went first
    assert [t.state.name for t in trials[:2]] == ["COMPLETE", "PRUNED"]  # the 3rd proposal saw a killed run
    again = SweepSearcher(engine_config(search), search.space, search.searcher, metric="val_acc", mode="max",
                          epochs=3, storage_url="sqlite://", study_name="unused")
    for n in (1, 2):
        assert trials[n].user_attrs[SWEEP_ATTR] == again.propose(trials[:n])

    # Every W&B run carries the engine (config and tags), so W&B's UI groups searches by it.
    runs = [read_offline_run(path) for path in sorted((experiment / "wandb").glob("offline-run-*"))]
    # The held trial's run of the killed session may be W&B's bare file header (SIGKILL before W&B wrote a record);
    # its resumed run holds the epochs after the kill.
    runs = [run for run in runs if run.run_id]
    assert {run.run_id for run in runs} == set(by_id)
    for run in runs:
        assert run.config["engine"] == "wandb_bayes+wandb_hyperband" and run.tags == ["wandb_bayes+wandb_hyperband"]

    # The report works on it as on a TPE search (names the engine, reads the study).
    from results.analyze import main as analyze

    assert analyze([str(experiment), "--no-wandb", "--no-evaluate", "--out", str(experiment / "report")]) == 0
    assert "wandb_bayes + W&B hyperband" in (experiment / "report" / "report.md").read_text()


@pytest.mark.timeout(600)
def test_compare_a_tpe_and_a_wandb_search(engine_search, tiny_data, tmp_path_factory, tmp_path):
    from results.comparison.build import reach_rows, summary_rows
    from results.comparison.facts import entry
    from results.report.data import load
    from results.report.html import cell

    tpe = tiny_search(tmp_path_factory, tiny_data)
    engine = engine_search["experiment"]
    out = tmp_path / "compare"
    result = compare(str(tpe), str(engine), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(out / "compare.html")
    page = (out / "compare.html").read_text()
    assert page.count("<img src=\"data:image/png;base64,") == 2

    # Its figures are the experiments' own records: summary.json, evaluation-test.json, result.json rows.
    entries = []
    for folder in (tpe, engine):
        summary = json.loads((folder / "summary.json").read_text())
        best = summary["best"]
        evaluation = json.loads((folder / best["checkpoint"] / "evaluation-test.json").read_text())
        exp = load(str(folder))
        entries.append(entry(exp, evaluation["accuracy"]))
        engine_name = {"tpe": "tpe+asha", "wandb_bayes": "wandb_bayes+wandb_hyperband"}[exp.search.searcher.algorithm]
        cells = [folder.name, engine_name, summary["num_trials"], summary["total_epochs"], round(summary["wall_s"], 1),
                 best["metrics"]["val_acc"], best["trial_id"], evaluation["accuracy"]]
        assert [cell(value) for value in cells] in table_rows(page)[0], cells
        rows = [row for path in folder.glob("trial_*/result.json") for row in trained_rows(path.parent)]
        assert entries[-1].epochs[-1] == len(rows) == summary["total_epochs"]
        assert entries[-1].best[-1] == pytest.approx(max(row["val_acc"] for row in rows))
    assert summary_rows(entries)[1][0][1] == "tpe+asha"
    assert table_rows(page)[1] == [[cell(v) for v in row] for row in reach_rows(entries)[1]]
    # Epochs each needed to reach the other's best, recounted from the trials' result.json rows in completion order.
    bests = [json.loads((folder / "summary.json").read_text())["best"]["metrics"]["val_acc"]
             for folder in (tpe, engine)]
    for i, folder in enumerate((tpe, engine)):
        done = []
        for path in folder.glob("trial_*/result.json"):
            rows = trained_rows(path.parent)
            start = max(row["timestamp"] - row["time_total_s"] for row in rows)
            done += [(start + row["time_total_s"], row["val_acc"]) for row in rows]
        done.sort()
        for j, target in enumerate(bests):
            count = next((n for n, (_, value) in enumerate(done, start=1) if value >= target), None)
            shown = table_rows(page)[1][i][1 + j]
            assert shown == "-" if count is None else shown.startswith(f"{count} / "), (i, j, shown, count)

    # Experiments of other data do not compare: one line, exit 2, nothing written.
    other = tmp_path / "other" / engine.name
    shutil.copytree(engine, other, ignore=shutil.ignore_patterns("wandb", "report", "study.db"))
    changed = json.loads((other / "summary.json").read_text())
    changed["data_fingerprint"] = "f" * 64
    (other / "summary.json").write_text(json.dumps(changed))
    refused = compare(str(tpe), str(other), "--out", str(tmp_path / "refused"))
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"error: {other}: searched other data than {tpe} (fingerprint ffffffffffff against "
        f"{json.loads((tpe / 'summary.json').read_text())['data_fingerprint'][:12]}); only searches of the same data "
        "compare"]
    assert not (tmp_path / "refused").exists()
