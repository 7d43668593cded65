"""cluster/local.yaml's node provider: Ray's fake multi-node provider, except that a lost node is reported gone.

A cloud reports a reclaimed spot instance as terminated; the autoscaler then drops it and, for the trials that
still need its resources, launches a replacement. Ray's ``fake_multinode`` provider instead lists every node it
launched until the autoscaler terminates it, and a fake node whose raylet died stays listed forever:

- the autoscaler's lost-contact check (``AUTOSCALER_HEARTBEAT_TIMEOUT_S``) looks only at up-to-date nodes,
  and a fake node keeps the launcher's "uninitialized" status (no node updaters run);
- it counts the dead node's declared resources as a node still coming up, so the placement group of the
  trial retried after the loss makes it launch nothing;
- while that demand lasts, the dead node is "needed" and never terminated as idle.

The retried trial then waited until another trial freed a node: minutes on a loaded machine, forever when
no other trial ends. :class:`FakeNodeProvider` drops a worker node whose raylet process has exited at the
autoscaler's next update (``AUTOSCALER_UPDATE_INTERVAL_S``) and ends what is left of it, as a cloud does.

    RAY_FAKE_CLUSTER=1 ray start --head ... --autoscaling-config=cluster/local.yaml
    (provider: {type: external, module: tune.fake_nodes.FakeNodeProvider}; the head's Python must import
    this project, as the venv's editable install does)
"""

from __future__ import annotations

from typing import Any

from infra.ray_compat import fake_multinode_provider

RAYLET = "raylet"  # ray_constants.PROCESS_TYPE_RAYLET: the process a node's liveness comes down to


class FakeNodeProvider(fake_multinode_provider()):
    """Ray's FakeMultiNodeProvider whose listing leaves out worker nodes whose raylet has exited."""

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        with self.lock:
            for node_id in [node_id for node_id, node in self._nodes.items() if raylet_exited(node)]:
                # Its agents and log monitor may outlive the raylet; the machine would take them along.
                self._terminate_node(self._nodes.pop(node_id))
        return super().non_terminated_nodes(tag_filters)

    def terminate_node(self, node_id: str) -> None:
        with self.lock:
            if node_id in self._nodes:  # else dropped above already, between the autoscaler's listing and now
                super().terminate_node(node_id)


def raylet_exited(node: dict[str, Any]) -> bool:
    """Whether a node of the provider's table has a raylet that has exited (the head's entry has no processes)."""
    processes = node.get("node")
    return processes is not None and any(kind == RAYLET for kind, _ in processes.dead_processes())
