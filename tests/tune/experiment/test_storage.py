"""Experiment storage: the same operations on a local folder and on a URI (file:// here, s3:// on a cluster)."""

from __future__ import annotations

import pytest

from tune.experiment.storage import Experiment, experiments, read_text


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "uri"])
def test_write_read_and_find_experiments(tmp_path, as_uri):
    root = f"file://{tmp_path}" if as_uri else str(tmp_path)
    older, newer = Experiment(root, "smoke-20260101-000000"), Experiment(root, "smoke-20260102-000000")
    for experiment in (older, newer):
        experiment.write_text("search.yaml", "experiment: smoke\n")
    Experiment(root, "smoke-unfinished").write_text("other.txt", "no search file")
    Experiment(root, "gtsrb-20260103-000000").write_text("search.yaml", "experiment: gtsrb\n")

    assert experiments(root, "smoke-", "search.yaml") == [older, newer]
    assert experiments(root + "/absent", "smoke-", "search.yaml") == []
    written = newer.write_text("summary.json", "{}")
    assert written == f"{root}/smoke-20260102-000000/summary.json"
    assert read_text(written) == "{}" and newer.read_text("search.yaml") == "experiment: smoke\n"
    assert Experiment.at(newer.uri) == newer and newer.has("summary.json") and not older.has("summary.json")
    assert (tmp_path / "smoke-20260102-000000" / "summary.json").read_text() == "{}"
    assert not list(tmp_path.glob("smoke-20260102-000000/.summary.json*")), "temp file left behind"


def test_local_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    experiment = Experiment.at("runs/smoke-1")
    assert experiment.root == str(tmp_path / "runs") and experiment.local_dir() == tmp_path / "runs" / "smoke-1"
    assert Experiment.at("s3://bucket/prefix/smoke-1/").root == "s3://bucket/prefix"
    assert Experiment("s3://bucket/prefix", "smoke-1").local_dir().name == "smoke-1"


def _create(root: str) -> str:
    return Experiment.create(root, "smoke-20260101-000000").name


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "uri"])
def test_experiment_folders_are_never_shared(tmp_path, as_uri):
    """Searches started in the same second get folders of their own (-2, -3, ...), created exclusively."""
    root = f"file://{tmp_path}" if as_uri else str(tmp_path)
    first, second = Experiment.create(root, "smoke-1"), Experiment.create(root, "smoke-1")
    assert (first.name, second.name) == ("smoke-1", "smoke-1-2")
    assert (tmp_path / "smoke-1").is_dir() and (tmp_path / "smoke-1-2").is_dir()
    if as_uri:
        return
    # Eight processes at once (a local folder: mkdir is the exclusive step).
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(8) as pool:
        names = list(pool.map(_create, [root] * 8))
    assert len(set(names)) == 8, names
