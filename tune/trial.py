"""One Tune trial: a function trainable that trains one sampled config.

Ray 2.60 runs Ray Train V2, where a Tune trial is a *driver* function: a multi-worker trial builds a
``TorchTrainer`` whose reports the trial relays to Tune (tune/train_relay.py). A 1-worker trial runs the very
same loop in the trial's own process, which saves the worker-group start (~10 s) on every trial.
"""

from __future__ import annotations

import errno
import math
import sys
from typing import Any, Optional

import ray.tune

from infra.ray_compat import worker_exception
from train.config import ConfigError, TrialConfig, WorkersConfig, parse
from train.data import DataError
from tune.cluster import Capacity, idle_gpu_share, max_trials
from tune.objectives import LATENCY_METRIC

# CPU a multi-worker trial's driver reserves: it only waits on its TorchTrainer.
DRIVER_CPU = 0.05

TRIAL_ERROR = "trial_error"
"""Result key of a trial that ended on a permanent error: its one line."""
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NO_ACCESS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR)

def run_trial(config: dict[str, Any], storage_path: str, metric: str = "val_acc",
              data_key: Optional[str] = None, data_keys: Optional[dict[int, str]] = None,
              latencies: Optional[Any] = None) -> None:
    """Train ``config``; a retried trial resumes from its last checkpoint (Tune's or Train's).

    ``data_key``: the cache entry the search's driver prepared, opened by name (no re-listing of the source).
    ``data_keys``: with ``data.image_size`` searched, the entry the driver prepared for each size (one per
    size: the cache holds resized images). ``latencies``: a multi-objective search's measured latencies
    (tune/latency.py LatencyTable); the trial's ``latency_ms`` is added to every report.

    A configuration or data error, or a full or unwritable folder (:func:`is_permanent`), would
    fail every retry the same way: it ends the trial at once with one report
    ``{metric: nan, TRIAL_ERROR: <its one line>}`` and no exception, so Tune does not retry it
    (Tune retries every exception alike, up to ``FailureConfig.max_failures``). tune/summary.py
    lists such a trial as ERROR with that line. Real faults (a lost node, a killed worker, an OOM
    kill) still raise, and Tune retries them.
    """
    try:
        cfg = parse(config)
        key = (data_keys or {}).get(cfg.data.image_size, data_key)
        latency = latencies.latency_ms(cfg) if latencies is not None else None
        _train(cfg, storage_path, key, {} if latency is None else {LATENCY_METRIC: latency})
    except Exception as error:  # sorted out below: only permanent errors stop here
        cause = permanent_cause(error)
        if cause is None:
            raise
        _end_with(cause, metric, storage_path.rsplit("/", 1)[0])


def _train(cfg: TrialConfig, storage_path: str, data_key: Optional[str], extra: dict[str, Any]) -> None:
    """``extra``: values added to every report (latency_ms)."""
    if cfg.workers.num_workers == 1:
        from train.loop import run
        from train.session import tune_session

        session = tune_session()
        session.tags.update(extra)
        run(cfg, session, data_key=data_key)
        return
    from train.launch import torch_trainer
    from tune.train_relay import RelayReports, fit_reporting
    from tune.trial_checkpoints import train_start

    # The trial's Train runs, named by the trial id; a retried or resumed trial starts a new one from the newest
    # whole checkpoint of the earlier ones.
    runs = f"{storage_path.rstrip('/')}/train_{ray.tune.get_context().get_trial_id()}"
    name, start = train_start(runs)
    relay = RelayReports()
    fit_reporting(torch_trainer(cfg, name=name, storage_path=runs, data_key=data_key, callbacks=[relay], tags=extra,
                                resume_from=start), relay, start, extra)


def is_permanent(error: BaseException) -> bool:
    """An error every retry would hit again: bad config or data, a full or unwritable folder."""
    if isinstance(error, (ConfigError, DataError)):
        return True
    return isinstance(error, OSError) and error.errno in NO_ROOM + NO_ACCESS


def permanent_cause(error: BaseException) -> Optional[BaseException]:
    """``error`` if permanent; for a TorchTrainer's failure, the permanent error every failed worker had."""
    if is_permanent(error):
        return error
    from ray.train import WorkerGroupError

    if not isinstance(error, WorkerGroupError) or not error.worker_failures:
        return None
    causes = [worker_exception(failure) for failure in error.worker_failures.values()]
    return causes[0] if all(is_permanent(cause) for cause in causes) else None


def _end_with(error: BaseException, metric: str, experiment: str) -> None:
    line = one_line(error, experiment)
    trial_id = ray.tune.get_context().get_trial_id()
    print(f"trial {trial_id} failed, not retried: {line}", file=sys.stderr, flush=True)
    # The metric (NaN) keeps Tune's strict check of reported metrics quiet; no "epoch", so ASHA
    # ignores the report; the searcher sees a trial without a value.
    ray.tune.report({metric: math.nan, TRIAL_ERROR: line})


def one_line(error: BaseException, folder: str = "storage") -> str:
    """The error's own one-line message (ConfigError/DataError messages are one line by design); a
    full or unwritable disk names the file, else ``folder`` (the experiment's)."""
    if isinstance(error, OSError) and error.errno in NO_ROOM + NO_ACCESS:
        where = error.filename or folder
        return f"{where}: {error.strerror} (free space or choose another folder, then --resume)"
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def reuse_trial_processes(workers: WorkersConfig) -> bool:
    """Whether Tune may hand a finished trial's process to the next trial (``TuneConfig.reuse_actors``).

    Yes for 1-worker trials: the loop runs in the trial's own thread, which sees Tune's stop at its next
    ``ray.tune.report`` and ends, so Tune's ``reset_config`` finds it gone, and the next trial skips the
    process start and the torch/timm imports (~5 s). No for multi-worker trials: the TorchTrainer a stopped
    trial started (its controller and workers) goes on training until the trial's process ends, so a reused
    process would fail Tune's ``reset_config`` and error the next trial; a fresh process per trial ends the old
    one, and with it its TorchTrainer and workers.
    """
    return workers.num_workers == 1


def describe_workers(workers: WorkersConfig) -> str:
    """What one trial reserves, for messages: e.g. "2 worker(s) x 0.5 CPU" or "1 worker(s) x 4 CPU + 0.5 GPU"."""
    gpus = f" + {workers.gpus_per_worker:g} GPU" if workers.gpus_per_worker > 0 else ""
    return f"{workers.num_workers} worker(s) x {workers.cpus_per_worker:g} CPU{gpus}"


def trial_resources(workers: WorkersConfig) -> dict[str, float]:
    """What Tune reserves for the trial itself (a multi-worker trial's workers reserve their own)."""
    if workers.num_workers > 1:
        return {"cpu": DRIVER_CPU}
    return {"cpu": workers.cpus_per_worker, "gpu": workers.gpus_per_worker}


def max_concurrent_trials(workers: WorkersConfig, setting: int | str, capacity: Capacity) -> int:
    """``setting``, or for "auto" the trials that fit at once on what the cluster can grow to.

    ``capacity`` (:func:`tune.cluster.cluster_capacity`) counts every node type of an autoscaling
    cluster at its max_workers, not just the nodes up now: Tune must queue enough trials for the
    autoscaler to see demand for them. Workers are packed per node (a GPU worker never lands on a
    CPU-only head), fractional GPUs put several workers on one GPU. Cores of this machine that other Ray
    instances on it hold (another search, a server) are not counted (``Capacity.free_here``), down to one trial.
    """
    if setting != "auto":
        return int(setting)
    per_worker = {"CPU": workers.cpus_per_worker, "GPU": workers.gpus_per_worker}

    def fitting(on: Capacity) -> int:
        return max_trials(on, per_worker, workers.num_workers,
                          driver_cpu=DRIVER_CPU if workers.num_workers > 1 else 0.0,
                          one_node=workers.placement == "strict_pack")

    if fitting(capacity) < 1:
        wanted = ", ".join(f"{value:g} {key}" for key, value in per_worker.items() if value > 0)
        together = " on one node (workers.placement: strict_pack)" if workers.placement == "strict_pack" else ""
        raise ConfigError(f"resources: no node of this cluster, now or after autoscaling, fits a trial "
                          f"({workers.num_workers} worker(s) of {wanted}{together}); cluster: {capacity.describe()}")
    return max(1, fitting(capacity.free_here()))


def idle_gpu_warnings(workers: WorkersConfig, capacity: Capacity) -> list[str]:
    """One line per node type whose GPUs a trial of this shape leaves partly idle (e.g. 4 CPUs + 0.5 GPU per
    trial on a 4-CPU, 1-GPU node: one trial fits, by CPU, and half the GPU idles)."""
    per_worker = {"CPU": workers.cpus_per_worker, "GPU": workers.gpus_per_worker}
    lines = []
    for group in capacity.groups:
        idle = idle_gpu_share(group.resources, per_worker, workers.num_workers)
        if idle > 1e-9:
            lines.append(f"warning: a {group.name} node ({group.resources.get('CPU', 0):g} CPU, "
                         f"{group.resources.get('GPU', 0):g} GPU) leaves {idle:g} GPU idle with trials of "
                         f"{describe_workers(workers)}: fewer CPUs per worker would fit more trials on it")
    return lines
