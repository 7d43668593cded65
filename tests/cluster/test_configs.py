"""cluster/cluster.yaml and cluster/local.yaml pass Ray's own cluster-config validation, describe the
same node types, pin the project's Ray and Python, and a broken node type fails with a clear line."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from importlib import metadata

import pytest
import ray
import torch
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO
from tests.helpers.cli import run_main
from tune.cluster import ClusterConfigError, validate_cluster_config

AWS = REPO / "cluster" / "cluster.yaml"
GCP = REPO / "cluster" / "gcp.yaml"
LOCAL = REPO / "cluster" / "local.yaml"
# Every top-level key of Ray's fake_multinode example.yaml (which the wheel does not ship): the fake
# provider's autoscaler reads the file as it is, with no defaults filled in.
FAKE_PROVIDER_KEYS = {"cluster_name", "max_workers", "provider", "available_node_types", "head_node_type", "auth",
                      "upscaling_speed", "idle_timeout_minutes", "docker", "initialization_commands",
                      "setup_commands", "head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
                      "worker_start_ray_commands", "file_mounts", "cluster_synced_files",
                      "file_mounts_sync_continuously", "rsync_exclude", "rsync_filter"}


def _load(path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path, provider", [(AWS, "aws"), (GCP, "gcp")], ids=["cluster.yaml", "gcp.yaml"])
def test_cloud_configs_pass_rays_validator_as_ray_up_runs_it(path, provider):
    config = prepare_config(_load(path))  # ray up: provider defaults filled in, then the schema
    validate_config(config)
    assert config["provider"]["type"] == provider
    assert validate_cluster_config(path)["available_node_types"].keys() == config["available_node_types"].keys()


def test_local_yaml_passes_rays_validator_as_the_autoscaler_reads_it():
    config = _load(LOCAL)
    validate_config(config)  # what the fake cluster's autoscaler runs on the file
    # Ray's fake_multinode provider, subclassed so that a lost node is reported gone (tune/fake_nodes.py)
    provider = config["provider"]
    assert (provider["type"], provider["module"]) == ("external", "tune.fake_nodes.FakeNodeProvider")
    assert FAKE_PROVIDER_KEYS <= set(config), sorted(FAKE_PROVIDER_KEYS - set(config))
    validate_cluster_config(LOCAL)


def _gpu_types(config: dict) -> dict[str, dict]:
    return {name: spec for name, spec in config["available_node_types"].items()
            if spec["resources"].get("GPU", 0) > 0}


@pytest.mark.parametrize("path", [AWS, GCP, LOCAL], ids=["cluster.yaml", "gcp.yaml", "local.yaml"])
def test_a_cpu_head_and_single_and_multi_gpu_worker_types(path):
    config = validate_cluster_config(path)
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0
    gpus = {spec["resources"]["GPU"] for spec in _gpu_types(config).values()}
    assert 1 in gpus and max(gpus) > 1, gpus
    for spec in _gpu_types(config).values():
        assert spec["min_workers"] == 0 < spec["max_workers"] <= config["max_workers"]
    assert config["idle_timeout_minutes"] > 0


def test_local_yaml_has_the_node_types_of_cluster_yaml():
    aws, local = _load(AWS), _load(LOCAL)
    assert set(_gpu_types(local)) == set(_gpu_types(aws)) == set(_gpu_types(_load(GCP))) == {"gpu.small", "gpu.multi"}
    for name in ("gpu.small", "gpu.multi"):
        local_gpus = local["available_node_types"][name]["resources"]["GPU"]
        assert local_gpus <= aws["available_node_types"][name]["resources"]["GPU"]
    # Sized for a 2-core machine (logical CPUs), with a short idle timeout so scale-down is seen.
    assert sum(spec["resources"]["CPU"] * spec["max_workers"] for spec in _gpu_types(local).values()) <= 4
    assert local["idle_timeout_minutes"] <= 0.5


@pytest.mark.parametrize("path", [AWS, GCP], ids=["cluster.yaml", "gcp.yaml"])
def test_cloud_configs_pin_the_projects_ray_and_python_and_install_from_the_lock_file(path):
    config = _load(path)
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    major, minor = _locked_cuda()
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-{py}-cu{major}{minor}"
    lock_ray = next(line.split("==")[1] for line in (REPO / "requirements.lock").read_text().splitlines()
                    if line.startswith("ray=="))
    assert lock_ray == ray.__version__ == metadata.version("ray")
    commands = " && ".join(config["setup_commands"])
    assert "-r requirements.lock" in commands and "--no-deps" in commands and "-e ." in commands
    assert config["file_mounts"]["/home/ray/signsearch"] == "."
    # Results and checkpoints go to storage every node mounts (NFS: EFS / Filestore at /mnt/shared).
    assert any("/mnt/shared" in command and "nfs" in command for command in config["initialization_commands"])
    assert "--volume=/mnt/shared:/mnt/shared" in config["docker"]["run_options"]


# NVIDIA's minimum driver per CUDA major (CUDA release notes, "minor version compatibility"): any CUDA
# 12.x runtime runs on driver >= 525, any 13.x on >= 580.
MIN_DRIVER = {12: 525, 13: 580}


def _locked_cuda() -> tuple[int, int]:
    """(major, minor) of the CUDA runtime in requirements.lock, which the locked torch build links."""
    version = next(line.split("==")[1] for line in (REPO / "requirements.lock").read_text().splitlines()
                   if line.startswith("nvidia-cuda-runtime"))
    major, minor = (int(part) for part in version.split(".")[:2])
    if torch.version.cuda:  # the installed torch is the locked build
        assert torch.version.cuda.split(".")[:2] == [str(major), str(minor)], torch.version.cuda
    return major, minor


def _driver_check(config: dict) -> str:
    [command] = [c for c in config["initialization_commands"] if "--query-gpu=driver_version" in c]
    return command


@pytest.mark.parametrize("path", [AWS, GCP], ids=["cluster.yaml", "gcp.yaml"])
def test_cloud_nodes_check_the_driver_the_locked_cuda_needs(path):
    config = _load(path)
    minimum = MIN_DRIVER[_locked_cuda()[0]]
    assert f'-ge {minimum} ]' in _driver_check(config)
    # Before the shared-storage mount: a node with the wrong driver stops before it does anything else.
    commands = config["initialization_commands"]
    assert commands.index(_driver_check(config)) < next(i for i, c in enumerate(commands) if "mount" in c)
    for spec in config["available_node_types"].values():  # GCP image families name their driver branch
        for disk in spec["node_config"].get("disks", []):
            driver = re.search(r"-nvidia-(\d+)$", disk["initializeParams"]["sourceImage"])
            assert driver and int(driver.group(1)) >= minimum, disk


@pytest.mark.parametrize("driver, gpu, fails", [
    ("570.172.08", True, True), ("580.65.06", True, False), ("595.91.07", True, False),
    (None, True, True),  # an NVIDIA device but no driver loaded
    ("535.261.03", False, False),  # no NVIDIA device (the CPU head): nothing to check
])
def test_the_driver_check_stops_a_gpu_node_with_one_line(tmp_path, driver, gpu, fails):
    """The check exactly as the config has it, run by bash, with a fake nvidia-smi and PCI device tree."""
    devices = tmp_path / "devices"
    for name, vendor in (("0000:00:1e.0", "0x1d0f"), ("0000:00:1f.0", "0x10de" if gpu else "0x8086")):
        (devices / name).mkdir(parents=True)
        (devices / name / "vendor").write_text(vendor + "\n")
    (tmp_path / "bin").mkdir()
    smi = tmp_path / "bin" / "nvidia-smi"  # without a driver, nvidia-smi fails to reach it (exit 9)
    smi.write_text(f"#!/bin/sh\necho {driver}\n" if driver else
                   "#!/bin/sh\necho NVIDIA-SMI has failed because it could not communicate with the driver\nexit 9\n")
    smi.chmod(0o755)
    command = _driver_check(_load(AWS)).replace("/sys/bus/pci/devices", str(devices))
    assert command == _driver_check(_load(GCP)).replace("/sys/bus/pci/devices", str(devices))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    assert done.returncode == (1 if fails else 0), done.stderr
    if fails:
        assert done.stderr.count("\n") == 1 and ">= 580" in done.stderr and (driver or "none") in done.stderr


def _broken(tmp_path, edit) -> str:
    config = _load(LOCAL)
    edit(config)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ClusterConfigError) as error:
        validate_cluster_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_a_bad_node_type_fails_with_one_clear_line(tmp_path):
    def misspelt(config):
        spec = config["available_node_types"]["gpu.small"]
        spec["resource"] = spec.pop("resources")
    message = _broken(tmp_path, misspelt)
    assert "available_node_types.gpu.small: 'resources' is a required property" in message

    message = _broken(tmp_path, lambda c: c["available_node_types"]["gpu.small"].update(gpus=1))
    assert "available_node_types.gpu.small: Additional properties are not allowed ('gpus' was unexpected)" in message

    message = _broken(tmp_path, lambda c: c["available_node_types"]["gpu.multi"]["resources"].update(GPU=0.5))
    assert "available_node_types.gpu.multi.resources.GPU" in message and "integer" in message

    message = _broken(tmp_path, lambda c: c.update(head_node_type="ray.head.gpu"))
    assert "`head_node_type` must be one of `available_node_types`" in message

    message = _broken(tmp_path, lambda c: c["available_node_types"]["gpu.small"].update(min_workers=3))
    assert "available_node_types.gpu.small: min_workers (3) exceeds max_workers (2)" in message


def test_the_cli_validates_both_files_and_fails_on_a_broken_one(tmp_path, capsys):
    ok = subprocess.run([sys.executable, "-m", "tune.cluster", str(AWS), str(GCP), str(LOCAL)], cwd=REPO,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "cluster.yaml: valid" in ok.stdout and "local.yaml: valid" in ok.stdout
    broken = copy.deepcopy(_load(AWS))
    del broken["available_node_types"]["gpu.small"]["node_config"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(broken))
    # The broken file through the CLI's main in this process (the valid ones above ran the real process).
    from tune.cluster import main

    bad = run_main(main, [str(tmp_path / "bad.yaml")], capsys)
    assert bad.returncode == 2
    assert "available_node_types.gpu.small: 'node_config' is a required property" in bad.stderr
