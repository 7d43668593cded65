"""Hold points give up: a test runner killed mid-test never leaves a held search (and its Ray) waiting forever."""

from __future__ import annotations

import json
import time

from infra import hold


def test_a_hold_nobody_releases_goes_on_after_its_timeout(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(hold.ENV, f"summary:0:{tmp_path}")
    monkeypatch.setenv(hold.TIMEOUT_ENV, "0.3")
    start = time.monotonic()
    hold.at("summary", 0)
    assert 0.3 <= time.monotonic() - start < 5
    assert json.loads((tmp_path / hold.MARKER).read_text())["point"] == "summary"
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"hold: nobody released summary at {tmp_path} within 0.3 s ($SIGNSEARCH_HOLD_TIMEOUT_S); going on")


def test_only_the_named_point_and_number_hold(tmp_path, monkeypatch):
    monkeypatch.setenv(hold.ENV, f"result:2:{tmp_path}")
    hold.at("result", 1)
    hold.at("complete", 2)
    assert not (tmp_path / hold.MARKER).exists()
    hold.release(tmp_path)
    hold.at("result", 2)  # released already: marks and goes on
    assert json.loads((tmp_path / hold.MARKER).read_text())["epoch"] == 2
