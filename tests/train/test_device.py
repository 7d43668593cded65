"""Which device and process-group backend each rank gets, decided from what Ray assigned: tested with Ray's
logical GPUs on a real local Ray (this machine has no CUDA), and the one-line stop when torch sees no CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import REPO
from train.config import ConfigError, WorkersConfig, parse
from train.device import GpuUnavailable, amp_dtype, pick_device, visible_index
from train.launch import process_group_backend


def test_backend_is_nccl_only_for_real_gpus():
    assert process_group_backend(WorkersConfig(num_workers=2)) == "gloo"
    assert process_group_backend(WorkersConfig(num_workers=2, gpus_per_worker=1)) == "nccl"
    assert process_group_backend(WorkersConfig(num_workers=2, gpus_per_worker=1, fake_gpus=True)) == "gloo"


def test_visible_index_follows_rays_assignment():
    # Ray Train shows every GPU of the node to each of its workers there: rank on GPU 3 must use cuda:1.
    assert visible_index("3", "2,3") == 1
    assert visible_index("2", "2,3") == 0
    # RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES=1: every GPU visible, Ray's id is the device index.
    assert visible_index("3", None) == 3 and visible_index("1", "") == 1


def test_a_gpu_id_missing_from_cuda_visible_devices_is_one_line_not_gpu_0():
    """It once fell back to cuda:0 silently: every trial of the node on one GPU."""
    with pytest.raises(GpuUnavailable, match=r"Ray assigned GPU '3' but CUDA_VISIBLE_DEVICES='0,1' does not list it"):
        visible_index("3", "0,1")
    with pytest.raises(GpuUnavailable, match="device index is unknown"):
        visible_index("GPU-5d1c", None)


def test_more_than_one_gpu_per_worker_is_refused():
    with pytest.raises(ConfigError,
                       match=r"workers.gpus_per_worker: got 2.0, allowed: 0..1 \(a worker trains on one GPU"):
        parse({"workers": {"gpus_per_worker": 2}})


def test_gpus_that_torch_cannot_see_stop_the_worker_with_one_line():
    workers = WorkersConfig(gpus_per_worker=1)
    with pytest.raises(GpuUnavailable) as error:
        pick_device(workers, ["0"], assigned=lambda: torch.device("cuda", 0), cuda_available=lambda: False)
    message = str(error.value)
    assert "\n" not in message and "sees no CUDA device" in message and "fake_gpus" in message
    # Fake (logical) GPUs and CPU workers train on the CPU.
    assert pick_device(WorkersConfig(gpus_per_worker=1, fake_gpus=True), ["0"], assigned=None) == torch.device("cpu")
    assert pick_device(WorkersConfig(), [], assigned=None) == torch.device("cpu")


def test_amp_is_off_on_the_cpu():
    assert amp_dtype(torch.device("cpu"), enabled=True) is None


def test_fractional_gpus_are_refused_for_multi_worker_trials():
    with pytest.raises(ConfigError, match="NCCL cannot run two ranks on one GPU"):
        parse({"workers": {"num_workers": 2, "gpus_per_worker": 0.5}})
    parse({"workers": {"num_workers": 1, "gpus_per_worker": 0.25}})  # 1-worker trials may share a GPU
    parse({"workers": {"num_workers": 2, "gpus_per_worker": 0.5, "fake_gpus": True}})


RANKS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import ray, ray.train, torch.distributed as dist
    from ray.train import RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from train.config import WorkersConfig
    from train.device import ray_gpu_ids, visible_index
    from train.launch import process_group_backend, scaling_config

    def loop(config):
        ids, rank = ray_gpu_ids(), ray.train.get_context().get_world_rank()
        row = {"rank": rank, "gpu_ids": ids, "backend": dist.get_backend(),
               "index": visible_index(ids[0], os.environ.get("CUDA_VISIBLE_DEVICES"))}
        with open(os.path.join(config["out"], f"rank{rank}.json"), "w") as out:
            json.dump(row, out)

    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
    workers = WorkersConfig(num_workers=2, cpus_per_worker=0.5, gpus_per_worker=1, fake_gpus=True)
    TorchTrainer(loop, train_loop_config={"out": sys.argv[1]}, scaling_config=scaling_config(workers),
                 torch_config=TorchConfig(backend=process_group_backend(workers)),
                 run_config=RunConfig(storage_path=sys.argv[1])).fit()
""")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_each_rank_is_told_its_own_gpu_and_logical_gpus_use_gloo(tmp_path):
    """Two ranks on one node with Ray's logical GPUs: different GPU ids, hence different device indices
    under the CUDA_VISIBLE_DEVICES Ray Train shares between them, and a gloo process group."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_TMPDIR": str(tmp_path.parent)}
    out = subprocess.run([sys.executable, "-c", RANKS_SCRIPT, str(tmp_path)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=220)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [row["rank"] for row in rows] == [0, 1]
    assert len({tuple(row["gpu_ids"]) for row in rows}) == 2, rows
    assert sorted(row["index"] for row in rows) == [0, 1], rows
    assert {row["backend"] for row in rows} == {"gloo"}
