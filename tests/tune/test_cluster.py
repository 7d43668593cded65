"""tune.cluster: what "auto" concurrency counts (node types x max_workers, per-node packing, the global
cap), how the autoscaling config is found from the cluster's autoscaler process, and config checks."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import REPO, free_port
from train.config import ConfigError, WorkersConfig
from tune.cluster import (
    Capacity,
    NodeGroup,
    autoscaling_config_path,
    capacity_from_config,
    capacity_from_nodes,
    max_trials,
)
from tune.trial import max_concurrent_trials

LOCAL = yaml.safe_load((REPO / "cluster" / "local.yaml").read_text())
AWS = yaml.safe_load((REPO / "cluster" / "cluster.yaml").read_text())
HEAD_ONLY = capacity_from_nodes([{"NodeID": "f" * 56, "Alive": True,
                                  "Resources": {"CPU": 1.0, "memory": 1e9, "node:__internal_head__": 1.0}}])


def _workers(n: int = 1, cpus: float = 1.0, gpus: float = 0.0, placement: str = "strict_pack") -> WorkersConfig:
    return WorkersConfig(num_workers=n, cpus_per_worker=cpus, gpus_per_worker=gpus, placement=placement)


def test_capacity_of_an_autoscaling_config_counts_every_type_at_max_workers():
    capacity = capacity_from_config(LOCAL)
    shapes = {group.name: (group.count, group.autoscaled, group.resources.get("GPU", 0.0)) for group in capacity.groups}
    assert shapes == {"ray.head.default": (1, False, 0.0), "gpu.small": (2, True, 1.0), "gpu.multi": (1, True, 2.0)}
    assert capacity.max_workers == 3
    assert "object_store_memory" not in dict(capacity.groups[1].resources)  # says nothing about trials


@pytest.mark.parametrize("workers, expected", [
    (_workers(gpus=1), 4),                 # 2 x gpu.small (1 GPU) + gpu.multi (2 GPUs); the head has none
    (_workers(cpus=0.5, gpus=0.5), 8),     # fractional GPUs: two trials per GPU
    (_workers(cpus=1, gpus=0.25), 4),      # ... but a gpu.small's single CPU still holds only one
    (_workers(n=2, gpus=1), 1),            # DDP trials on one node: only gpu.multi holds both workers
    (_workers(n=2, gpus=1, placement="pack"), 2),   # allowed to span nodes: 4 GPU workers in all
    (_workers(n=4, gpus=1, placement="pack"), 1),
    (_workers(cpus=1), 5),                 # CPU-only trials may also use the head's CPU
])
def test_auto_concurrency_on_the_local_fake_cluster(workers, expected):
    assert max_concurrent_trials(workers, "auto", capacity_from_config(LOCAL)) == expected


def test_auto_concurrency_on_aws_respects_the_global_max_workers():
    capacity = capacity_from_config(AWS)
    # gpu.multi (4 GPUs) is filled first, then gpu.small until max_workers (5) is spent: 4 + 4.
    assert max_concurrent_trials(_workers(gpus=1), "auto", capacity) == 8
    assert max_concurrent_trials(_workers(gpus=0.25), "auto", capacity) == 32
    capped = Capacity(capacity.groups, max_workers=2, source="test")
    assert max_concurrent_trials(_workers(gpus=1), "auto", capped) == 4 + 1


def test_the_head_alone_would_have_queued_one_trial_and_the_cluster_never_grown():
    """The reason "auto" reads the autoscaling config: a GPU trial fits nowhere on the head."""
    with pytest.raises(ConfigError, match="no node of this cluster, now or after autoscaling, fits a trial"):
        max_concurrent_trials(_workers(gpus=1), "auto", HEAD_ONLY)
    assert max_concurrent_trials(_workers(gpus=1), 3, HEAD_ONLY) == 3  # an explicit number is kept


def test_a_multi_worker_trial_driver_needs_cpu_too():
    two_cpus = capacity_from_nodes([{"NodeID": "a" * 56, "Alive": True, "Resources": {"CPU": 2.0}}])
    assert max_trials(two_cpus, {"CPU": 1.0}, workers=2) == 1
    # 2 workers x 1 CPU + the trial driver's 0.05 CPU do not fit 2 CPUs: Ray would wait forever.
    with pytest.raises(ConfigError, match="2 worker"):
        max_concurrent_trials(_workers(n=2, cpus=1), "auto", two_cpus)
    assert max_concurrent_trials(_workers(n=2, cpus=0.9), "auto", two_cpus) == 1


def test_a_trial_whose_workers_fit_no_single_node_is_one_line_with_strict_pack():
    with pytest.raises(ConfigError,
                       match=r"4 worker\(s\) of 1 CPU, 1 GPU on one node \(workers.placement: strict_pack\)"):
        max_concurrent_trials(_workers(n=4, gpus=1), "auto", capacity_from_config(LOCAL))


@pytest.mark.parametrize("space", ["gtsrb", "asl"])
def test_shipped_gpu_spaces_leave_no_gpu_of_the_aws_cluster_idle(space):
    """Every node type of cluster/cluster.yaml that fits a trial of the space has all its GPUs used (gtsrb's
    4 CPUs + 0.5 GPU per trial once left half of each g5.xlarge's GPU idle), and there is no warning."""
    from tune.cluster import idle_gpu_share
    from tune.space import load_search_file
    from tune.trial import idle_gpu_warnings

    workers = load_search_file(REPO / "search_spaces" / f"{space}.yaml").trial.workers
    capacity = capacity_from_config(AWS)
    per_worker = {"CPU": workers.cpus_per_worker, "GPU": workers.gpus_per_worker}
    assert all(idle_gpu_share(group.resources, per_worker, workers.num_workers) == 0 for group in capacity.groups)
    assert idle_gpu_warnings(workers, capacity) == []
    assert max_concurrent_trials(workers, "auto", capacity) >= 2
    wasteful = WorkersConfig(num_workers=1, cpus_per_worker=4, gpus_per_worker=0.5)
    warning = idle_gpu_warnings(wasteful, capacity)[0]
    assert warning.startswith("warning: a gpu.small node (4 CPU, 1 GPU) leaves 0.5 GPU idle")


def test_workers_are_packed_per_node_not_pooled():
    # Two nodes with 1.5 CPUs each hold two 1-CPU workers, not three.
    nodes = Capacity((NodeGroup("a", {"CPU": 1.5}, 1), NodeGroup("b", {"CPU": 1.5}, 1)))
    assert max_trials(nodes, {"CPU": 1.0}, workers=1) == 2


def test_dead_nodes_do_not_count():
    nodes = [{"NodeID": "a" * 56, "Alive": True, "Resources": {"CPU": 2.0}},
             {"NodeID": "b" * 56, "Alive": False, "Resources": {"CPU": 8.0}}]
    assert max_trials(capacity_from_nodes(nodes), {"CPU": 1.0}, workers=1) == 2


@pytest.fixture
def fake_monitor(tmp_path):
    """A process that looks like a cluster's autoscaler (monitor.py) to the process table."""
    started = []

    def start(*args: str) -> None:
        script = tmp_path / "autoscaler" / "monitor.py"
        script.parent.mkdir(exist_ok=True)
        script.write_text("import time\ntime.sleep(60)\n")
        started.append(subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path))
        time.sleep(0.3)

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_the_autoscaling_config_is_found_from_the_clusters_autoscaler(fake_monitor, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/ray_bootstrap_config.yaml
    port, other = free_port(), free_port()
    fake_monitor("--logs-dir=/tmp/x", f"--gcs-address=10.0.0.1:{port}", "--autoscaling-config=cluster/local.yaml")
    fake_monitor(f"--gcs-address=10.0.0.1:{other}")  # a cluster started without an autoscaling config
    # A relative path is relative to the directory the autoscaler was started in.
    assert autoscaling_config_path(f"10.0.0.1:{port}") == tmp_path / "cluster" / "local.yaml"
    assert autoscaling_config_path(f"10.0.0.1:{other}") is None
    assert autoscaling_config_path(f"10.0.0.1:{free_port()}") is None


def test_a_ray_up_head_is_recognised_by_its_bootstrap_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump(AWS))
    # No autoscaler process of that cluster on this machine: `ray up`'s file on the head is used.
    assert autoscaling_config_path(f"127.0.0.1:{free_port()}") == tmp_path / "ray_bootstrap_config.yaml"
