"""Every use of a private Ray or Optuna name, in one place, each with the reason no public API does it.

An upgrade of Ray or Optuna that moves one of these breaks tests/infra/test_ray_compat.py (one test per use,
its message naming the function here to update), not a search at run time. Everything is imported inside
the function that needs it, so importing this module costs nothing. It is the one home of private names for
every floor (infra/connect.py, tune/ and results/ use it), so it lives on the floor below them all, even for
the names only one floor uses (Serve's HAProxy and gRPC hook, the autoscaler's): one place to look on an upgrade.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""false makes Ray take 127.0.0.1 as the node's IP (its macOS/Windows default), so its servers bind to loopback;
the processes Ray starts read it from the environment (ray._private.ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)."""


@contextmanager
def loopback_node() -> Iterator[None]:
    """While Ray starts here, make it take 127.0.0.1 as this node's IP (infra/connect.py's embedded Ray).

    Private because ray.init has no public option to bind a local node's servers to loopback. Ray reads the
    switch when it is imported, so this process's copy (``ray_constants.ENABLE_RAY_CLUSTER``) is set for the
    start as well as the environment; both are put back afterwards (a started Ray keeps its address).
    """
    from ray._private import ray_constants

    saved_env, saved_constant = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        if saved_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = saved_env


def cluster_config_tools() -> tuple[Callable, Callable, Callable, Callable]:
    """(get_default_config, prepare_config, validate_config, fill_node_type_min_max_workers): what ``ray up``
    runs on a cluster YAML (ray/autoscaler/_private/commands.py), for tune/cluster.py's check.

    Private because Ray has no public call that checks a cluster YAML the way ``ray up`` does; using the very
    functions ``ray up`` runs keeps the check in agreement with it.
    """
    from ray.autoscaler._private.providers import _get_default_config
    from ray.autoscaler._private.util import fill_node_type_min_max_workers, prepare_config, validate_config

    return _get_default_config, prepare_config, validate_config, fill_node_type_min_max_workers


def replay_into_asha(scheduler: Any, trial: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Feed a restored trial's reported rows into its ASHA bracket (tune/schedulers/asha.py's ResumableASHA).

    Private because Tune saves no scheduler state with an experiment and exposes no way to seed one:
    ASHAScheduler keeps each trial's bracket, its time attribute, metric and sign in private attributes, and
    replaying through the bracket's own on_result records exactly what a live result would have.
    """
    import math

    bracket = scheduler._trial_info[trial.trial_id]
    time_attr, metric, sign = scheduler._time_attr, scheduler._metric, scheduler._metric_op
    for row in rows:
        step, value = row.get(time_attr), row.get(metric)
        if isinstance(step, (int, float)) and isinstance(value, (int, float)) and math.isfinite(value):
            bracket.on_result(trial, step, sign * value)


def raise_sample_budget(generator: Any, total: int) -> None:
    """Give a restored SearchGenerator a larger sample budget (tune/resume.py's ExtendableSearch).

    Private because Tuner.restore takes no new TuneConfig, and SearchGenerator keeps its budget and its
    "no more trials" flag in private attributes restored from the experiment.
    """
    if total > generator._total_samples:
        generator._total_samples = total
        generator._finished = False


def count_restored_trials(generator: Any, restored: int) -> None:
    """Make a restored SearchGenerator count at least the trials Tune's saved state restores (tune/resume.py).

    Private because SearchGenerator keeps its count of created trials in a private attribute. Tune saves that count
    (search_gen_state-*.json) and the trial list (experiment_state-*.json) in separate files of one copy to storage,
    so a driver killed during the copy can leave a count one behind the list: the resumed search would then sample
    one trial more than its budget.
    """
    if restored > generator._counter:
        generator._counter = restored


def status_table(reporter: Any, trials: list, done: bool, *extra: str) -> str:
    """The status block and trial table a CLIReporter would print (tune/progress.py's compact display).

    Private because CLIReporter's public report() prints the text itself; the compact display edits two of
    its lines first (Ray's staging "Result logdir", its full-precision best line).
    """
    return reporter._progress_str(trials, done, *extra)


def worker_exception(failure: BaseException) -> BaseException:
    """The exception a Ray Train worker raised, behind Ray Train's wrapper (tune/trial.py).

    Private because Ray Train wraps it (UserExceptionWithTraceback) with its traceback text and keeps the
    original as ``__cause__`` or, in Ray 2.60, as ``_base_exc``; no public accessor exists.
    """
    return failure.__cause__ or getattr(failure, "_base_exc", failure)


def session_dir() -> Path:
    """This Ray session's folder (``<temp>/session_<time>/``), whose logs/train/ holds Ray Train's own
    structured logs (bench/train_overhead.py reads its phase timings there).

    Private because Ray exposes the session folder of the connected node only through its global worker.
    """
    import ray

    return Path(ray._private.worker.global_worker.node.get_session_dir_path())


def distribution_contains(distribution: Any, value: Any) -> bool:
    """Whether ``value`` lies in an Optuna distribution (results/report/study.py's rebuilt study).

    Private because ``_contains`` is exactly the check optuna.trial.create_trial applies and has no public
    twin; a value outside (a warm-start point beyond the range) would make create_trial refuse the trial.
    """
    try:
        return distribution._contains(distribution.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def auto_address(legacy: bool = False) -> tuple[str | None, str]:
    """The GCS address to join when no address is given, and where it was found: (None, "") when none.

    With no address Ray's ``ray.init()`` joins the cluster ``ray start`` recorded in the ``ray_current_cluster``
    file of its temp folder (``$RAY_TMPDIR``/ray, else /tmp/ray), else starts its own: never another driver's
    embedded Ray, which no file records. ``legacy`` is ``--address auto``: that file, else Ray's legacy lookup of
    any GCS process among this machine's processes (``ray.init("auto")``), which may be someone else's embedded
    Ray. Private because Ray has no public way to ask which cluster either means without connecting, and
    connecting to a dead GCS (a file left by a Ray that was killed, not stopped) retries for minutes;
    infra/connect.py checks the address found here answers and joins exactly it.
    """
    from ray._common.utils import get_ray_address_file
    from ray._private.services import find_gcs_addresses

    cluster_file = get_ray_address_file(None)
    try:
        named = Path(cluster_file).read_text().strip()
    except OSError:  # no file: no cluster was started here with `ray start`, or it was stopped
        named = ""
    if named:
        return named, cluster_file
    if legacy:
        found = sorted(find_gcs_addresses())  # Ray's "auto" takes any one of them
        if found:
            return found[0], "a GCS process running on this machine"
    return None, ""


def ray_instances_here() -> list[tuple[str, float]]:
    """(GCS address, CPUs) of every Ray node running on this machine, from its raylet's command line.

    Private because Ray has no public view of the Ray instances on a machine other than the one a driver is
    connected to: another driver's embedded Ray records itself nowhere. The raylet's ``--gcs-address`` and
    ``--static_resource_list`` (``CPU,2.0,...``) flags are what Ray's own "auto" lookup
    (``ray._private.services._find_address_from_flag``) parses.
    """
    import ray  # noqa: F401  (puts Ray's bundled psutil on sys.path)
    # isort: split
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            args = process.info.get("cmdline") or []
        except psutil.Error:
            continue
        if not args or not args[0].endswith("/raylet"):
            continue
        flags = dict(arg[2:].split("=", 1) for arg in args[1:] if arg.startswith("--") and "=" in arg)
        resources = flags.get("static_resource_list", "").split(",")
        cpus = dict(zip(resources[::2], resources[1::2])).get("CPU", "0")
        try:
            found.append((flags.get("gcs-address", ""), float(cpus)))
        except ValueError:
            continue
    return found


def replica_grpc_binder() -> tuple[Any, str]:
    """(the module, the name) of the helper with which a Ray Serve replica binds its inter-deployment gRPC server
    (results/serving/loopback.py swaps it inside each replica).

    Why private: Serve 2.60 binds that server on ``[::]:0`` (every interface) after the replica's constructor,
    with no public setting for its address; a service told to stay on loopback must not listen beyond it.
    """
    from ray.serve._private import replica

    return replica, "add_port_to_grpc_server"


SERVE_HAPROXY_SETTINGS = (
    "RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "RAY_SERVE_HAPROXY_BINARY_PATH",
    "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_SERVER_STATE_BASE",
    "RAY_SERVE_HAPROXY_SERVER_STATE_FILE", "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH", "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT")
"""Environment settings of Ray Serve's HAProxy ingress that results/serving/ingress.py sets before Ray starts.
Why: Ray Serve 2.60 documents no API for its HAProxy ingress; it reads these names in its private constants
module (ray/serve/_private/constants.py), which a test checks still names each of them."""


def serve_constants_source() -> str:
    """The text of Ray Serve's private constants module, where it reads SERVE_HAPROXY_SETTINGS (for the test)."""
    from ray.serve._private import constants

    return Path(constants.__file__).read_text()


def fake_multinode_provider() -> type:
    """Ray's fake multi-node provider class (cluster/local.yaml's nodes), for tune/fake_nodes.py to subclass.

    Private because Ray ships no public provider that runs nodes on one machine; the subclass also reads the
    provider's node table (``_nodes``, ``lock``, ``_terminate_node``) to drop a node whose raylet has died.
    """
    from ray.autoscaler._private.fake_multi_node.node_provider import FakeMultiNodeProvider

    return FakeMultiNodeProvider
