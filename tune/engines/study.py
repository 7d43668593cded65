"""The search's own Ray Tune searcher: Optuna's ask-and-tell over a study kept in ``<experiment>/study.db``, asking
the sampler of the engine named by ``searcher.algorithm`` (tune/engines/).

Why not Ray's ``OptunaSearch``: it tells Optuna that a trial ASHA stopped is COMPLETE with its last
(early) value, so TPE models "accuracy after one epoch" as if it were final and favours fast starters,
and it keeps the study in memory (pickled with the searcher state). Here:

* every epoch's metric is an Optuna *intermediate value* (step = epoch, 1-based);
* a trial that ends before ``trial.epochs`` (ASHA stopped it) is told as PRUNED, so TPE ranks it
  by how far it got and what it reached there (Optuna's own pruned-trial handling); a trial that ran
  every epoch is COMPLETE with its last value; an errored one is FAIL;
* the study lives in SQLite (Optuna's RDB storage), one study named after the experiment folder,
  parameters named by their dotted config keys, each trial with user_attr ``ray_trial_id``, so
  ``optuna-dashboard sqlite:///.../study.db`` shows the search live and ``--resume`` reattaches to it.

Ray calls ``on_trial_complete`` with the trial's last result both when ASHA stops a trial and when a
trial reaches ASHA's ``max_t`` (ASHA answers STOP there too), so the scheduler's decision itself is not
visible; the trial's own epoch count against ``trial.epochs`` is, and holds for FIFO as well.

A multi-objective search (``objectives``) keeps one study with one direction per objective, named after the
metrics (optuna-dashboard shows it as multi-objective, with its Pareto front). Optuna has no intermediate values
in multi-objective studies (``Trial.report`` raises there, and TPE's ranking of pruned trials reads the single
``study.direction``), so none are stored: a trial ASHA stopped is PRUNED without values (off the front; TPE
counts it among the pruned trials, after the finished ones), its per-epoch numbers stay in its result.json. A
COMPLETE trial is told every objective's last value (latency_ms is in every report, tune/latency.py). Each
proposal comes from a sampler seeded with seed + the trials asked before it, so that a resumed search proposes
what the uninterrupted one would have: the same front (a single-objective search keeps its one sampler).

Only the driver touches the study. What Ray pickles with the searcher (``tuner.pkl``, the
``searcher-state-*.pkl`` snapshots) is the settings and the Tune-trial -> Optuna-trial map, never the
study: on ``Tuner.restore`` the study is reopened from ``study.db``.
"""

from __future__ import annotations

import math
import pickle
import warnings
from typing import TYPE_CHECKING, Any, Optional

from ray.tune.search import Searcher

from infra.overrides import set_dotted
from tune.distributions import Param, define_by_run
from tune.engines import get_engine
from tune.objectives import Objective, direction

if TYPE_CHECKING:  # annotations only: tune/space.py imports this package's registry
    from tune.space import SearcherConfig

TRIAL_ATTR = "ray_trial_id"
"""User attribute of each Optuna trial: the Tune trial id (summary.json's trial_id)."""


class StudySearcher(Searcher):
    """An engine's sampler over ``space`` that learns from early stopping; see the module docstring."""

    def __init__(self, space: dict[str, Param], settings: SearcherConfig, *, metric: str, mode: str,
                 epochs: int, storage_url: str, study_name: str, concurrency: int = 1,
                 time_attr: str = "epoch", objectives: Optional[list[Objective]] = None):
        super().__init__(metric=metric, mode=mode)
        self.objectives = objectives
        """Several objectives (a multi-objective study); None: the one metric/mode."""
        self.space = space
        self.settings = settings
        self.epochs = epochs
        """Epochs of a trial that ran to the end; a trial that stopped before is PRUNED."""
        self.storage_url = storage_url
        self.study_name = study_name
        self.concurrency = concurrency
        self.time_attr = time_attr
        """Result key of the 1-based epoch (Tune's training_iteration restarts when a multi-worker trial is retried)."""
        self._numbers: dict[str, int] = {}
        """Tune trial id -> Optuna trial number, for every trial this searcher proposed."""
        self._study: Any = None
        self._storage: Any = None
        self._study_id: Optional[int] = None
        self._reported: dict[str, set[int]] = {}
        """Epochs already stored per trial (rebuilt from the study on reopening)."""
        self._closed: set[str] = set()
        """Trials told to Optuna already (rebuilt from the study on reopening): finished trials take no values."""

    # -- the study --------------------------------------------------------------------------------
    @property
    def study(self):
        """The Optuna study, created on first use or reopened from ``storage_url``."""
        return self.open()

    def open(self):
        """Create the study (with the warm-start points enqueued) or reattach to it; idempotent."""
        if self._study is None:
            self._study = self._open()
        return self._study

    def _open(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress display says what finished
        # The storage API (optuna.storages.BaseStorage) is public; the searcher uses it where a resumed
        # search, a new process, no longer has the Trial objects of its asks.
        self._storage = optuna.storages.RDBStorage(self.storage_url)
        try:
            trials_before = self._storage.get_n_trials(self._storage.get_study_id_from_name(self.study_name))
            new = False
        except KeyError:
            trials_before, new = 0, True
        if self.objectives:
            directions = {"directions": [direction(o.mode) for o in self.objectives]}
        else:
            directions = {"direction": direction(self.mode)}
        study = optuna.create_study(storage=self._storage, study_name=self.study_name, load_if_exists=True,
                                    sampler=self._sampler(trials_before), **directions)
        self._study_id = self._storage.get_study_id_from_name(self.study_name)
        if new:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # optuna-dashboard labels the objectives with them
                study.set_metric_names([o.metric for o in self.objectives] if self.objectives else [self.metric])
            study.set_user_attr("epochs", self.epochs)
            for point in self.settings.warm_start:
                study.enqueue_trial(dict(point))
        self._attach(study)
        return study

    def _sampler(self, trials_before: int):
        # A resumed search must not replay the random draws it made before the interruption.
        return get_engine(self.settings.algorithm).sampler(self.settings, self.space, self.concurrency,
                                                       self.settings.seed + trials_before)

    def _attach(self, study) -> None:
        """Map this searcher's Tune trials onto the study's trials; fail the ones Tune never heard of.

        A trial the searcher proposed after Ray's last saved experiment state (the driver was killed in
        between) stays RUNNING in the study, but the resumed Tune run does not know it and will never
        report it: it is told FAIL so TPE stops counting it as running and the dashboard shows it ended.
        """
        from optuna.trial import TrialState

        for frozen in study.get_trials(deepcopy=False):
            tune_id = frozen.user_attrs.get(TRIAL_ATTR)
            if tune_id in self._numbers:
                self._reported[tune_id] = set(frozen.intermediate_values)
                if frozen.state.is_finished():
                    self._closed.add(tune_id)
            elif frozen.state == TrialState.RUNNING:
                self._storage.set_trial_user_attr(self._storage_id(frozen.number), "orphaned",
                                                  "proposed after the search's last saved state; never ran")
                study.tell(frozen.number, state=TrialState.FAIL)

    def _storage_id(self, number: int) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    # -- Searcher hooks ---------------------------------------------------------------------------
    def set_search_properties(self, metric: Optional[str], mode: Optional[str], config: dict, **spec) -> bool:
        return False  # the space, metric and mode come from the search file, never from Tune

    def suggest(self, trial_id: str) -> Optional[dict]:
        if self.objectives:
            # A multi-objective study draws each proposal from a sampler seeded by how many trials were asked
            # before it: a resumed search proposes exactly what the uninterrupted one would have (given the same
            # finished trials), so its front is the same. Study.sampler is a public attribute.
            self.study.sampler = self._sampler(asked(self.study))
        trial = self.study.ask()
        trial.set_user_attr(TRIAL_ATTR, trial_id)
        self._numbers[trial_id] = trial.number
        self._reported[trial_id] = set()
        config: dict[str, Any] = {}
        for key, value in define_by_run(self.space)(trial).items():
            set_dotted(config, key, value)  # Tune merges this nested dict over the base config
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        from optuna.trial import TrialState

        number = self._numbers.get(trial_id)
        study = self.study  # a resumed search opens it (and rebuilds _closed) here
        if number is None or trial_id in self._closed:
            return
        names = [o.metric for o in self.objectives] if self.objectives else [self.metric]
        values = [_finite(result.get(name)) for name in names] if result else [None]
        if error or None in values:
            state = TrialState.FAIL
        else:
            self._report(trial_id, result)  # the last epoch's result never reaches on_trial_result
            # ASHA's STOP and the end of the budget look the same here; the epoch count tells them apart.
            state = TrialState.PRUNED if int(result.get(self.time_attr, 0)) < self.epochs else TrialState.COMPLETE
        # Optuna takes a single-objective PRUNED trial's value from its last intermediate value.
        told = (values if self.objectives else values[0]) if state == TrialState.COMPLETE else None
        study.tell(number, told, state=state)
        self._closed.add(trial_id)

    def _report(self, trial_id: str, result: dict) -> None:
        """Store the result's metric as the intermediate value at its epoch, once per epoch (a retried
        trial reports again the epochs after its checkpoint). This is the storage call Trial.report
        makes; a resumed search no longer has the Trial objects of its asks."""
        value, step, number = _finite(result.get(self.metric)), result.get(self.time_attr), self._numbers.get(trial_id)
        if value is None or step is None or number is None or self.objectives:
            return
        _ = self.study  # a resumed search opens it (and rebuilds _reported) here
        reported = self._reported.setdefault(trial_id, set())
        if int(step) in reported or trial_id in self._closed:
            return
        self._storage.set_trial_intermediate_value(self._storage_id(number), int(step), value)
        reported.add(int(step))

    # -- what Ray pickles -------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_study=None, _storage=None, _study_id=None, _reported={}, _closed=set())  # from the study
        return state

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump({"numbers": self._numbers}, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self._numbers = pickle.load(handle)["numbers"]
        self._study = self._storage = None  # reattach (and fail orphans) against the restored map on first use
        self._reported, self._closed = {}, set()


def asked(study) -> int:
    """Trials asked for so far (every trial but the enqueued ones still waiting)."""
    from optuna.trial import TrialState

    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return len(study.get_trials(deepcopy=False)) - len(waiting)


def _finite(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
