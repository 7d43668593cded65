"""One test per private Ray or Optuna name that infra/ray_compat.py uses: an upgrade that moves one fails here,
with the function to update named, instead of failing a search at run time."""

from __future__ import annotations

import os

import pytest

from infra import ray_compat


def _moved(function: str, what: str) -> str:
    return f"{what}: a Ray/Optuna upgrade moved it; update infra/ray_compat.py {function}() (and its reason)"


def test_loopback_node_switch_is_where_ray_reads_it():
    from ray._private import ray_constants

    assert getattr(ray_constants, "ENABLE_RAY_CLUSTERS_ENV_VAR", None) == ray_compat.LOCAL_ONLY_ENV, \
        _moved("loopback_node", "ray._private.ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR")
    before = ray_constants.ENABLE_RAY_CLUSTER
    with ray_compat.loopback_node():
        assert ray_constants.ENABLE_RAY_CLUSTER is False and os.environ[ray_compat.LOCAL_ONLY_ENV] == "0"
    assert ray_constants.ENABLE_RAY_CLUSTER == before


def test_cluster_config_tools_check_a_cluster_yaml():
    try:
        get_default, prepare, validate, fill = ray_compat.cluster_config_tools()
    except ImportError as error:
        pytest.fail(_moved("cluster_config_tools", f"ray.autoscaler._private ({error})"))
    config = get_default({"type": "aws"})
    assert "available_node_types" in config, _moved("cluster_config_tools", "_get_default_config")
    assert callable(prepare) and callable(validate) and callable(fill)


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def test_replay_into_asha_records_rungs():
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(metric="val_acc", mode="max", time_attr="epoch", max_t=9, grace_period=1,
                              reduction_factor=3)
    trial = _Trial("t1")
    for name in ("_trial_info", "_time_attr", "_metric", "_metric_op"):
        assert hasattr(scheduler, name), _moved("replay_into_asha", f"ASHAScheduler.{name}")
    scheduler._trial_info[trial.trial_id] = scheduler._brackets[0]
    bracket = scheduler._brackets[0]
    ray_compat.replay_into_asha(scheduler, trial, iter([{"epoch": 1, "val_acc": 0.5}, {"epoch": 3, "val_acc": 0.7}]))
    recorded = {milestone: dict(values) for milestone, values in bracket._rungs}
    assert recorded[1] == {"t1": 0.5} and recorded[3] == {"t1": 0.7}, _moved("replay_into_asha", "_Bracket.on_result")


def test_raise_sample_budget():
    from ray.tune.search import Searcher, SearchGenerator

    generator = SearchGenerator(Searcher(metric="val_acc", mode="max"))
    for name in ("_total_samples", "_finished"):
        assert hasattr(generator, name), _moved("raise_sample_budget", f"SearchGenerator.{name}")
    generator.set_finished()
    ray_compat.raise_sample_budget(generator, 8)
    assert (generator._total_samples, generator.is_finished()) == (8, False)


def test_count_restored_trials():
    from ray.tune.search import BasicVariantGenerator, SearchGenerator
    from ray.tune.search.optuna import OptunaSearch

    generator = SearchGenerator(OptunaSearch())
    assert hasattr(generator, "_counter") and not isinstance(generator, BasicVariantGenerator), \
        _moved("count_restored_trials", "SearchGenerator._counter")
    ray_compat.count_restored_trials(generator, 3)
    assert generator._counter == 3


def test_status_table():
    from ray.tune import CLIReporter

    text = ray_compat.status_table(CLIReporter(metric="val_acc", mode="max"), [], False)
    assert isinstance(text, str), _moved("status_table", "CLIReporter._progress_str")


def test_worker_exception_finds_the_original():
    from ray.train.v2._internal.exceptions import UserExceptionWithTraceback

    original = ValueError("model.name: unknown model 'x'")
    wrapped = UserExceptionWithTraceback(original, traceback_str="Traceback ...")
    assert ray_compat.worker_exception(wrapped) is original, _moved("worker_exception", "UserExceptionWithTraceback")


def test_distribution_contains():
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    assert hasattr(FloatDistribution, "_contains"), _moved("distribution_contains", "BaseDistribution._contains")
    assert ray_compat.distribution_contains(FloatDistribution(0.1, 1.0, log=True), 0.5)
    assert not ray_compat.distribution_contains(FloatDistribution(0.1, 1.0), 2.0)
    assert not ray_compat.distribution_contains(CategoricalDistribution(["a", "b"]), "c")


@pytest.mark.slow
def test_session_dir():
    import ray

    ray.init(num_cpus=1, include_dashboard=False)
    try:
        assert ray_compat.session_dir().name.startswith("session_"), _moved("session_dir", "global_worker.node")
    finally:
        ray.shutdown()


def test_auto_address_reads_rays_cluster_file(tmp_path, monkeypatch):
    """Ray's own lookup of the cluster "auto" means, read without connecting (infra/connect.py checks it answers)."""
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        found = ray_compat.auto_address()
    except (ImportError, AttributeError, TypeError) as error:
        raise AssertionError(_moved("auto_address", f"ray's cluster-file lookup ({error})")) from None
    assert found == ("127.0.0.1:1", str(tmp_path / "ray" / "ray_current_cluster"))
    (tmp_path / "ray" / "ray_current_cluster").unlink()
    # No file: no address means none, whatever GCS processes (other drivers' embedded Rays) run here.
    assert ray_compat.auto_address() == (None, "")


@pytest.mark.slow
def test_ray_instances_here_reads_the_raylets_flags():
    import ray

    ray.init(num_cpus=1, include_dashboard=False)
    try:
        own = ray.get_runtime_context().gcs_address
        assert (own, 1.0) in ray_compat.ray_instances_here(), \
            _moved("ray_instances_here", "the raylet's --gcs-address / --static_resource_list flags")
    finally:
        ray.shutdown()


def test_replica_grpc_binder():
    module, name = ray_compat.replica_grpc_binder()
    assert callable(getattr(module, name, None)), _moved("replica_grpc_binder", f"ray.serve._private.replica.{name}")


def test_serve_haproxy_settings_are_read_by_ray_serve():
    source = ray_compat.serve_constants_source()
    missing = [name for name in ray_compat.SERVE_HAPROXY_SETTINGS if f'"{name}"' not in source]
    assert not missing, _moved("SERVE_HAPROXY_SETTINGS", f"Ray Serve no longer reads {', '.join(missing)}")


def test_the_serve_ingress_sets_only_settings_ray_serve_reads():
    import shutil

    from results.serving.ingress import haproxy_environment

    env, folder = haproxy_environment("127.0.0.1")
    shutil.rmtree(folder)
    assert {name for name in env if name.startswith("RAY_")} <= set(ray_compat.SERVE_HAPROXY_SETTINGS)


def test_fake_multinode_provider_has_the_node_table_fake_nodes_reads():
    try:
        provider = ray_compat.fake_multinode_provider()
    except ImportError as error:
        pytest.fail(_moved("fake_multinode_provider", f"FakeMultiNodeProvider ({error})"))
    os.environ.setdefault("RAY_FAKE_CLUSTER", "1")  # the provider refuses to start without it
    instance = provider({"type": "external"}, "compat")
    assert isinstance(instance._nodes, dict) and hasattr(instance, "lock") and callable(instance._terminate_node), \
        _moved("fake_multinode_provider", "FakeMultiNodeProvider._nodes/lock/_terminate_node")
    from ray._private import ray_constants

    from tune.fake_nodes import RAYLET

    assert ray_constants.PROCESS_TYPE_RAYLET == RAYLET, _moved("fake_multinode_provider", "PROCESS_TYPE_RAYLET")
