"""What the cluster can grow to, and checks of cluster configs (`cluster/*.yaml`).

On an autoscaling cluster ``ray.cluster_resources()`` is what is up *now*, usually just the head. The
autoscaler adds nodes only for demand that is queued, so a search that sized its concurrency from the
head alone would queue one trial and never make the cluster grow. :func:`cluster_capacity` reads
what the cluster can grow to instead: the node types and ``max_workers`` of the autoscaling config
that this cluster's autoscaler runs with. Ray 2.60 keeps that config only in a file on the head
(``ray up`` writes ``~/ray_bootstrap_config.yaml`` and starts the autoscaler with
``--autoscaling-config=~/ray_bootstrap_config.yaml``; a fake local cluster names its own file), so
the file is found from the command line of the cluster's autoscaler process (``monitor.py``,
matched by the GCS port). The GCS's ``ClusterConfig`` key, which Ray's own "max resources" helpers
read, is only written by KubeRay's autoscaler v2, not by ``ray up`` or ``ray start``.

Without an autoscaling config (a laptop, a fixed cluster) the capacity is the nodes that are alive.

    python -m tune.cluster cluster/cluster.yaml [cluster/local.yaml ...]   # validate, show capacity
"""

from __future__ import annotations

import copy
import math
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import yaml

# Written by `ray up` on the head node (Ray's own marker of a cluster-launcher cluster).
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
# Node resources that say nothing about what a trial can use.
_IGNORED = {"memory", "object_store_memory"}


class ClusterConfigError(ValueError):
    """A cluster config that Ray's autoscaler would reject; the message is one line naming the file."""


@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one shape: ``count`` live nodes, or for an autoscaled type its ``max_workers``."""

    name: str
    resources: Mapping[str, float]
    count: int
    autoscaled: bool = False
    here: bool = False
    """The node this driver runs on (this machine), whose cores other Ray instances here may hold."""


@dataclass(frozen=True)
class Capacity:
    """The nodes a search can use at most; autoscaled groups share the config's global max_workers."""

    groups: tuple[NodeGroup, ...]
    max_workers: Optional[int] = None
    source: str = "live nodes"
    held_here: float = 0.0
    """CPUs of this machine that other Ray instances on it hold (another search's, a server's)."""
    machine_cpus: int = 0
    """CPUs of this machine (0: unknown)."""

    def free_here(self) -> "Capacity":
        """This capacity with this machine's node cut to the CPUs no other Ray instance here holds: two Rays on
        one machine each see all its cores, and trials sized to both would share them."""
        if not self.held_here or not self.machine_cpus:
            return self
        free = max(0.0, self.machine_cpus - self.held_here)
        groups = tuple(replace(group, resources={**group.resources, "CPU": min(group.resources.get("CPU", 0.0), free)})
                       if group.here else group for group in self.groups)
        return replace(self, groups=groups, held_here=0.0)

    def describe(self) -> str:
        parts = []
        for group in self.groups:
            shape = ", ".join(f"{value:g} {key}" for key, value in sorted(group.resources.items())
                              if key in ("CPU", "GPU"))
            count = f"up to {group.count}" if group.autoscaled else f"{group.count}"
            parts.append(f"{count} x {group.name} ({shape or 'no CPU/GPU'})")
        cap = f", at most {self.max_workers} workers in all" if self.max_workers is not None else ""
        held = (f"; other Ray instances on this machine hold {self.held_here:g} of its {self.machine_cpus} CPUs"
                if self.held_here else "")
        return f"{'; '.join(parts)}{cap} [{self.source}]{held}"


def capacity_from_nodes(nodes: Iterable[Mapping[str, Any]], here: Optional[str] = None) -> Capacity:
    """Capacity of the alive nodes of ``ray.nodes()``; ``here``: the NodeID of this driver's node."""
    groups = []
    for node in nodes:
        if not node.get("Alive", True):
            continue
        resources = {k: float(v) for k, v in node.get("Resources", {}).items() if _is_plain(k)}
        name = "head" if "node:__internal_head__" in node.get("Resources", {}) else f"node {node['NodeID'][:8]}"
        groups.append(NodeGroup(name, resources, 1, here=here is not None and node.get("NodeID") == here))
    return Capacity(tuple(groups), None, "live nodes")


def capacity_from_config(config: Mapping[str, Any], source: str = "autoscaling config",
                         head_resources: Optional[Mapping[str, float]] = None, head_here: bool = False) -> Capacity:
    """The head plus every worker node type at its ``max_workers``, as the autoscaler can launch them.

    ``head_resources`` (the live head's) replace the head type's declared resources when given; ``head_here``:
    this driver runs on the head.
    A worker type without ``max_workers`` may use the global ``max_workers`` (as in Ray).
    """
    types = config.get("available_node_types") or {}
    head_type = config.get("head_node_type")
    global_max = config.get("max_workers")
    groups = []
    for name, spec in types.items():
        resources = {k: float(v) for k, v in (spec.get("resources") or {}).items() if _is_plain(k)}
        if name == head_type:
            groups.append(NodeGroup(name, dict(head_resources) if head_resources is not None else resources, 1,
                                    here=head_here))
            continue
        count = spec.get("max_workers", global_max)
        if count is None or count <= 0:
            continue
        groups.append(NodeGroup(name, resources, int(count), autoscaled=True))
    return Capacity(tuple(groups), int(global_max) if global_max is not None else None, source)


def autoscaling_config_path(gcs_address: str) -> Optional[Path]:
    """The autoscaling config of the cluster whose GCS is at ``gcs_address``, if this machine runs its
    autoscaler; else ``~/ray_bootstrap_config.yaml`` when it exists and no autoscaler was found here.

    None when the cluster's autoscaler runs here without a config (a plain ``ray start --head`` or
    ``ray.init()``: such a cluster never grows).
    """
    import ray  # noqa: F401  (puts Ray's bundled psutil on sys.path)
    # isort: split
    import psutil

    port = gcs_address.rsplit(":", 1)[-1]
    for process in psutil.process_iter(["cmdline", "cwd"]):
        args = process.info.get("cmdline") or []
        if not any(arg.endswith("monitor.py") for arg in args):
            continue
        flags = dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)
        if flags.get("gcs-address", "").rsplit(":", 1)[-1] != port:
            continue
        if not flags.get("autoscaling-config"):
            return None
        path = Path(os.path.expanduser(flags["autoscaling-config"]))
        if not path.is_absolute() and process.info.get("cwd"):
            path = Path(process.info["cwd"]) / path
        return path
    bootstrap = Path(BOOTSTRAP_CONFIG).expanduser()
    return bootstrap if bootstrap.is_file() else None


def cluster_capacity(count_other_rays: bool = True) -> Capacity:
    """What the connected cluster can grow to (its autoscaling config), else its alive nodes; with the CPUs that
    other Ray instances on this machine hold (infra/connect.py other_rays_here) unless ``count_other_rays`` is
    false (an embedded Ray whose CPUs were given with --num-cpus: the user sized it)."""
    import ray

    from infra.connect import machine_cpus, other_rays_here

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    here = ray.get_runtime_context().get_node_id()
    live = capacity_from_nodes(nodes, here)
    held = {"held_here": sum(cpus for _, cpus in other_rays_here()) if count_other_rays else 0.0,
            "machine_cpus": machine_cpus()}
    path = autoscaling_config_path(ray.get_runtime_context().gcs_address)
    if path is None or not path.is_file():
        return replace(live, **held)
    config = yaml.safe_load(path.read_text()) or {}
    head = next((group for group in live.groups if group.name == "head"), None)
    return replace(capacity_from_config(config, source=f"autoscaling config {path}",
                                        head_resources=head.resources if head else None,
                                        head_here=bool(head and head.here)), **held)


def max_trials(capacity: Capacity, per_worker: Mapping[str, float], workers: int,
               driver_cpu: float = 0.0, one_node: bool = True) -> int:
    """Trials of ``workers`` workers (each needing ``per_worker``) that fit at once.

    Workers are packed node by node (a worker never spans nodes); with ``one_node`` (``strict_pack``
    placement) all of a trial's workers share a node, else they may be spread over nodes. Autoscaled
    types are filled best-first until the global max_workers is spent. A multi-worker trial's
    driver (``driver_cpu``) needs CPU left over somewhere on the chosen nodes.
    """
    need = {key: value for key, value in per_worker.items() if value > 0}

    def slots(resources: Mapping[str, float]) -> int:
        return min((math.floor(resources.get(key, 0.0) / value + 1e-9) for key, value in need.items()), default=0)

    chosen = [(group, group.count) for group in capacity.groups if not group.autoscaled]
    budget = capacity.max_workers if capacity.max_workers is not None else math.inf
    for group in sorted((g for g in capacity.groups if g.autoscaled), key=lambda g: slots(g.resources),
                        reverse=True):
        take = int(min(group.count, budget))
        if take > 0 and slots(group.resources) > 0:
            chosen.append((group, take))
            budget -= take
    if one_node:
        trials = sum(slots(group.resources) // workers * count for group, count in chosen)
    else:
        trials = sum(slots(group.resources) * count for group, count in chosen) // workers
    if driver_cpu > 0 and trials > 0:
        cpus = sum(group.resources.get("CPU", 0.0) * count for group, count in chosen)
        per_trial = workers * per_worker.get("CPU", 0.0) + driver_cpu
        trials = min(trials, math.floor(cpus / per_trial + 1e-9))
    return trials


def idle_gpu_share(resources: Mapping[str, float], per_worker: Mapping[str, float], workers: int) -> float:
    """GPUs of a node with ``resources`` that no trial can use when it holds as many trials of ``workers``
    workers (each needing ``per_worker``, all on this node) as fit; 0 when the node fits none."""
    need = {key: value * workers for key, value in per_worker.items() if value > 0}
    fits = min((math.floor(resources.get(key, 0.0) / value + 1e-9) for key, value in need.items()), default=0)
    return resources.get("GPU", 0.0) - fits * need.get("GPU", 0.0) if fits and need.get("GPU") else 0.0


def _is_plain(resource: str) -> bool:
    return resource not in _IGNORED and not resource.startswith("node:")


# -- config checks ----------------------------------------------------------------------------------
def validate_cluster_config(path: str | Path) -> dict[str, Any]:
    """Check a cluster YAML as Ray does; return the config as the autoscaler will see it.

    ``ray up`` fills in the provider's defaults (``prepare_config``) and then validates against
    Ray's schema (``validate_config``); the autoscaler of a fake cluster (``fake_multinode``, or
    local.yaml's ``external`` subclass of it) validates the file as written (Ray's wheel lacks that
    provider's defaults file). Errors become one line.
    """
    from infra.overrides import safe_load
    from infra.ray_compat import cluster_config_tools

    _get_default_config, prepare_config, validate_config, fill_node_type_min_max_workers = cluster_config_tools()

    try:
        config = safe_load(Path(path).read_text())  # duplicate keys refused (infra/overrides.py)
    except (OSError, yaml.YAMLError) as error:
        raise ClusterConfigError(f"{path}: {str(error).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ClusterConfigError(f"{path}: not a mapping of cluster settings")
    try:
        try:
            _get_default_config(config.get("provider") or {})
            has_defaults = (config.get("provider") or {}).get("type") != "external"  # Ray's are a stub
        except (OSError, NotImplementedError, KeyError):
            has_defaults = False
        if has_defaults:
            config = prepare_config(config)
            validate_config(config)
        else:
            validate_config(config)
            config = copy.deepcopy(config)
            fill_node_type_min_max_workers(config)
    except Exception as error:  # jsonschema.ValidationError, ValueError, RuntimeError, KeyError
        raise ClusterConfigError(f"{path}: {_one_line(error)}") from None
    for name, spec in config["available_node_types"].items():
        if spec.get("min_workers", 0) > spec.get("max_workers", 0) and name != config["head_node_type"]:
            raise ClusterConfigError(f"{path}: available_node_types.{name}: min_workers ({spec['min_workers']}) "
                                     f"exceeds max_workers ({spec['max_workers']})")
    return config


def _one_line(error: Exception) -> str:
    import jsonschema

    if isinstance(error, jsonschema.ValidationError):
        where = ".".join(str(part) for part in error.absolute_path) or "<top level>"
        return f"{where}: {error.message}"
    if isinstance(error, KeyError):
        return f"missing key {error}"
    return str(error).splitlines()[0]


def main(argv: list[str]) -> int:
    status = 0
    for path in argv:
        try:
            config = validate_cluster_config(path)
        except ClusterConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 2
            continue
        print(f"{path}: valid; {capacity_from_config(config, source=path).describe()}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["cluster/cluster.yaml", "cluster/local.yaml"]))
