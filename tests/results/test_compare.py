"""results/compare.py over several searches per engine (no Ray, nothing trained: the experiments are written through
the experiment contract by tests/helpers/recorded_searches.py): the expected-best estimator against brute force, the
engines' table and console, one seed per engine, the UNFINISHED marker, and the refusals. The comparison of two real
searches is tests/tune/test_sweep_search.py::test_compare_a_tpe_and_a_wandb_search."""

from __future__ import annotations

import contextlib
import html
import io
import itertools
import math
import re
import statistics

import pytest

from results.comparison.expected import expected_best
from tests.helpers.recorded_searches import recorded_search

# Per search: val_acc per epoch of each trial. TPE: 3 trials, ASHA-like (the first stopped at epoch 1).
TPE = [[[0.2], [0.3, 0.5, 0.6], [0.4, 0.7, 0.8]],
       [[0.1], [0.5, 0.6, 0.7], [0.3, 0.4, 0.9]],
       [[0.3], [0.2, 0.3, 0.5], [0.6, 0.65, 0.75]]]
RANDOM = [[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
          [[0.2, 0.4, 0.85], [0.1, 0.1, 0.2]],
          [[0.3, 0.3, 0.3], [0.5, 0.55, 0.65]]]


def brute_force(scores: list[float], n: int, best=max) -> tuple[float, float]:
    """Mean and standard deviation of the best of n draws with replacement, over every one of the N^n draws."""
    bests = [best(draw) for draw in itertools.product(scores, repeat=n)]
    mean = sum(bests) / len(bests)
    return mean, math.sqrt(sum((b - mean) ** 2 for b in bests) / len(bests))


@pytest.mark.parametrize("scores", [[0.5], [0.3, 0.9], [0.2, 0.7, 0.7, 0.1], [0.9, 0.4, 0.6, 0.8, 0.55]])
@pytest.mark.parametrize("mode", ["max", "min"])
def test_expected_best_is_exact_against_enumeration(scores, mode):
    got = expected_best(scores, mode, up_to=len(scores) + 1)  # past N: still draws with replacement
    assert [e.n for e in got] == list(range(1, len(scores) + 2))
    for e in got:
        mean, std = brute_force(scores, e.n, max if mode == "max" else min)
        assert e.mean == pytest.approx(mean, abs=1e-12) and e.std == pytest.approx(std, abs=1e-9)
    assert got[0].mean == pytest.approx(statistics.mean(scores))  # one draw: the mean of the scores
    assert expected_best([], mode) == []


def compare(*args: str) -> tuple[int, str, str]:
    from results.compare import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def tables(page: str) -> dict[str, list[list[str]]]:
    """Each table's body rows (cells' text) by the heading above it."""
    found = {}
    for heading, body in re.findall(r"<h2>(.*?)</h2>\s*<div class=\"scroll\"><table>.*?<tbody>(.*?)</tbody>", page,
                                    flags=re.S):
        found[html.unescape(heading)] = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
                                         for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]
    return found


@pytest.fixture
def searches(tmp_path):
    runs = tmp_path / "runs"
    tpe = [recorded_search(runs / f"tpe-{i}", "tpe+asha", curves) for i, curves in enumerate(TPE)]
    rnd = [recorded_search(runs / f"random-{i}", "random+none", curves) for i, curves in enumerate(RANDOM)]
    return tpe, rnd


def test_three_and_three_searches_per_engine(searches, tmp_path):
    tpe, rnd = searches
    out = tmp_path / "page"
    code, stdout, stderr = compare(*map(str, tpe), "--", *map(str, rnd), "--out", str(out), "--no-evaluate")
    assert code == 0, stderr
    assert stdout.splitlines()[-1] == str(out / "compare.html")
    page = (out / "compare.html").read_text()
    # Self-contained: both figures embedded, nothing loaded from elsewhere.
    assert page.count('<img src="data:image/png;base64,') == 2 and 'src="http' not in page
    engines = tables(page)["Engines over seeds"]
    assert [row[:2] for row in engines] == [["tpe+asha", "3 searches"], ["random+none", "3 searches"]]
    # Medians of the searches' bests (min – max), and the expected best of 2 trials (the fewest one search had)
    # from the 9 + 6 trials' last scores, recounted by brute force.
    tpe_scores = [curve[-1] for search in TPE for curve in search]
    rnd_scores = [curve[-1] for search in RANDOM for curve in search]
    assert engines[0][2] == "0.8 (0.75 – 0.9)" and engines[1][2] == "0.65 (0.6 – 0.85)"
    assert [row[3] for row in engines] == ["9", "6"]
    for row, scores in zip(engines, (tpe_scores, rnd_scores)):
        mean, std = brute_force(scores, 2)
        assert row[4] == f"{mean:.4g} ± {std:.2g}"
    # Epochs to reach the other engine's median best (columns after the expected best of 2 and of 3 trials): TPE's
    # searches reach 0.65 (random's median) after 6, 4 and 6 epochs; random's reach 0.8 (TPE's) only in its 2nd
    # search: the median is 'never'.
    assert engines[0][7] == "6 (3 of 3 reached)"
    assert engines[1][6] == "never (1 of 3 reached)"
    lines = stdout.splitlines()
    assert lines[0].startswith("tpe+asha: 3 searches; best val_acc median 0.8000 (min 0.7500, max 0.9000); "
                               "expected best of 3 trials ")
    assert "to reach random+none's median best 0.6500: 6 epochs (median; 3 of 3 searches reached it)" in stdout
    assert "UNFINISHED" not in page and stderr == ""

    # Without '--': grouped by the engine each search recorded (search.yaml), to the same table.
    again = tmp_path / "again"
    code, stdout, stderr = compare(*map(str, rnd[:1] + tpe + rnd[1:]), "--out", str(again), "--no-evaluate")
    assert code == 0, stderr
    grouped = tables((again / "compare.html").read_text())["Engines over seeds"]
    # The engines in the order they first appear (random first here): the same rows, the reach columns swapped.
    assert [row[:6] + row[6:][::-1] for row in grouped] == engines[::-1]


def test_one_search_per_engine_says_it_is_one_seed(searches, tmp_path):
    tpe, rnd = searches
    code, stdout, stderr = compare(str(tpe[0]), str(rnd[0]), "--out", str(tmp_path / "page"), "--no-evaluate")
    assert code == 0, stderr
    page = (tmp_path / "page" / "compare.html").read_text()
    engines = tables(page)["Engines over seeds"]
    assert [row[1] for row in engines] == ["1 search (one seed: no spread)"] * 2
    assert engines[0][2] == "0.8"  # no min – max with one search
    assert stdout.splitlines()[0].startswith("tpe+asha: 1 search (one seed: no spread); best val_acc median 0.8000;")

    # Groups given with '--' of one engine each side are named as groups, not as the engine.
    code, stdout, stderr = compare(str(tpe[0]), "--", str(tpe[1]), str(tpe[2]), "--out", str(tmp_path / "same"),
                                   "--no-evaluate")
    assert code == 0, stderr
    rows = tables((tmp_path / "same" / "compare.html").read_text())["Engines over seeds"]
    assert [row[:2] for row in rows] == [["group 1 (tpe+asha)", "1 search (one seed: no spread)"],
                                         ["group 2 (tpe+asha)", "2 searches"]]


def test_an_interrupted_search_is_marked(searches, tmp_path):
    tpe, _ = searches
    cut = recorded_search(tmp_path / "runs" / "cut", "tpe+asha", [[0.3, 0.4], [0.5]], interrupted=True,
                          num_samples=3)
    code, stdout, stderr = compare(str(tpe[0]), str(cut), "--out", str(tmp_path / "page"), "--no-evaluate")
    assert code == 0, stderr
    marker = "interrupted: 1 of 3 trials finished, 3 epochs; its budget is not the others'"
    assert stderr.splitlines() == [f"warning: cut is unfinished ({marker})"]
    page = (tmp_path / "page" / "compare.html").read_text()
    assert f"UNFINISHED: cut: {marker}" in html.unescape(page)
    assert [row[0] for row in tables(page)["Searches"]] == ["tpe-0", "cut [UNFINISHED]"]
    # Its trials count towards the expected best but the one the interrupt cut short: 3 + 1 pooled.
    assert tables(page)["Engines over seeds"][0][3] == "4"


def test_the_same_experiment_twice_is_refused(searches, tmp_path):
    tpe, rnd = searches
    out = tmp_path / "page"
    again = tpe[0].parent / ".." / "runs" / tpe[0].name  # another spelling of the same folder
    code, stdout, stderr = compare(str(tpe[0]), str(rnd[0]), str(again), "--out", str(out), "--no-evaluate")
    assert code == 2 and stdout == "" and not out.exists()
    assert stderr.splitlines() == [f"error: {tpe[0]}: given twice (as {tpe[0]} and {again}); each experiment is "
                                   "compared once: give it once, and several searches per engine as different "
                                   "experiments"]
    code, stdout, stderr = compare(str(tpe[0]), "--", "--", str(rnd[0]), "--out", str(out), "--no-evaluate")
    assert code == 2 and len(stderr.splitlines()) == 1 and "at least one experiment on each side" in stderr
    assert not out.exists()


def test_a_search_cut_before_any_trial_finished_still_compares(searches, tmp_path):
    _, rnd = searches
    cut = recorded_search(tmp_path / "runs" / "cut", "tpe+asha", [[0.3, 0.4]], interrupted=True, num_samples=3)
    code, stdout, stderr = compare(str(cut), str(rnd[0]), "--out", str(tmp_path / "page"), "--no-evaluate")
    assert code == 0, stderr
    engines = tables((tmp_path / "page" / "compare.html").read_text())["Engines over seeds"]
    assert engines[0][:5] == ["tpe+asha", "1 search (one seed: no spread)", "0.4", "0", "-"]  # nothing to draw from
    assert "expected best of 1 trials - (from 0 trials)" in stdout
