"""GET /metadata carries model.json's recorded latency (what the search measured for the exported trial), null for a
model without one; asked over HTTP of the plain server (no Ray: it starts in a second), which answers /metadata
from the same ModelService as the Ray Serve replica."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from results.exporter.model_card import recorded_latency
from tests.helpers import kill_group
from tests.helpers.deploy_models import exported_model
from tests.helpers.serve_process import start

pytestmark = pytest.mark.slow  # results/serve.py as a process, on a Ray of its own


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_data):
    return exported_model(tmp_path_factory, tiny_data)


def test_metadata_has_the_recorded_latency(model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    meta = json.loads((folder / "model.json").read_text())
    assert "latency" not in meta  # exported from a search without a latency objective
    # As results/export.py records it for a trial of a multi-objective search.
    meta["latency"] = recorded_latency(SimpleNamespace(
        trial={"metrics": {"latency_ms": 0.2512}},
        summary={"latency": {"batch_size": 1, "threads": 1, "execution_provider": "cpu", "warmup": 10,
                             "repeats": 100, "rounds": 3}}))
    (folder / "model.json").write_text(json.dumps(meta))
    for served, latency in ((folder, meta["latency"]), (model_dir, None)):
        server = start(served, tmp_path / f"{served.name}.log", plain=True)
        try:
            status, answer = server.request("GET", "/metadata")
            assert (status, answer["latency"]) == (200, latency)
        finally:
            kill_group(server.proc)
