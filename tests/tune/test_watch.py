"""tune.watch: the stall guard's decision over the trials Tune shows it, step by step."""

from __future__ import annotations

import pickle
import time
from types import SimpleNamespace

from tune.experiment.storage import Experiment
from tune.watch import STALL_FILE, StallGuard, clear_stall


def _trials(*statuses: str) -> list:
    return [SimpleNamespace(status=status, trial_id=f"t{i}") for i, status in enumerate(statuses)]


def test_pending_trials_with_none_running_stop_the_search_after_the_timeout(tmp_path):
    experiment = Experiment.create(str(tmp_path), "exp")
    guard = StallGuard(experiment.uri, timeout_s=0.2, resources_text="2 worker(s) x 0.5 CPU")
    guard.on_step_end(1, _trials("TERMINATED", "PENDING"))
    assert not guard.stop_all()  # the clock has just started
    guard.on_step_end(2, _trials("RUNNING", "PENDING"))  # a trial runs: never a stall, the clock restarts
    time.sleep(0.3)
    guard.on_step_end(3, _trials("TERMINATED", "PENDING"))
    assert not guard.stop_all()
    time.sleep(0.3)
    guard.on_step_end(4, _trials("TERMINATED", "PENDING", "PENDING"))
    assert guard.stop_all() and not guard("t1", {})  # stops everything, never one trial on its own
    clear_stall(experiment.uri)
    line = experiment.read_text(STALL_FILE)
    assert line.startswith("2 trial(s) waited 0.2 s for resources with no trial running (each needs 2 worker(s) "
                           "x 0.5 CPU; Ray has unknown free)") and "\n" not in line


def test_a_search_with_nothing_left_to_start_is_no_stall(tmp_path):
    guard = StallGuard(Experiment.create(str(tmp_path), "exp").uri, timeout_s=0.0, resources_text="1 worker(s) x 1 CPU")
    guard.on_step_end(1, _trials("TERMINATED", "ERROR"))
    guard.on_step_end(2, _trials("TERMINATED", "ERROR"))
    assert not guard.stop_all()


def test_a_resumed_guard_starts_its_own_clock():
    """Tune pickles the guard with the run config (tuner.pkl); a restored one must not carry a verdict."""
    guard = StallGuard("/nowhere", timeout_s=5, resources_text="x")
    guard.reason, guard._idle_since = "stalled", 1.0
    restored = pickle.loads(pickle.dumps(guard))
    assert restored.reason is None and restored._idle_since is None and restored.timeout_s == 5


def test_a_restored_guard_stops_the_search_through_its_separate_stopper_copy(tmp_path):
    """Tuner.restore unpickles the run's callbacks and its stopper as separate copies of the one guard (seen with
    Ray 2.60): the copy that sees the trials must still stop the search through the other."""
    experiment = Experiment.create(str(tmp_path), "exp")
    guard = StallGuard(experiment.uri, timeout_s=0.0, resources_text="1 worker(s) x 1 CPU")
    callback, stopper = pickle.loads(pickle.dumps(guard)), pickle.loads(pickle.dumps(guard))
    assert callback is not stopper and not stopper.stop_all()
    callback.on_step_end(1, _trials("PENDING"))
    assert stopper.stop_all()
    clear_stall(experiment.uri)  # the driver handled it: a resumed search starts clean
    assert not stopper.stop_all()
