"""Which Ray a run uses: a cluster's, or one started in this process.

An embedded Ray (``--address local``, or no cluster found) serves only this machine, so every port
it opens is bound to 127.0.0.1: its GCS, raylet and worker gRPC servers, the dashboard agent, the
runtime-env agent and the three Prometheus ``/metrics`` endpoints (dashboard head, dashboard agent,
autoscaler monitor), as Ray does for a local Ray on macOS and Windows. The dashboard itself binds to
``dashboard_host`` (127.0.0.1 unless asked otherwise). A Ray cluster started with ``ray start`` binds
to its node's IP as configured there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import ray

from train.config import ConfigError
from train.ray_compat import loopback_node


@dataclass
class RayConnection:
    """Which Ray a search runs on; the embedded one's settings."""

    address: Optional[str] = None
    """None: $RAY_ADDRESS, else a cluster running on this machine, else start one here; "local": always start one."""
    num_cpus: Optional[int] = None
    """CPUs of an embedded Ray (None: all)."""
    num_gpus: Optional[int] = None
    """GPUs of an embedded Ray (None: those torch's driver shows); with ``workers.fake_gpus`` logical labels,
    to try a GPU search's resources on a CPU-only machine."""
    dashboard_host: str = "127.0.0.1"
    """Bind address of an embedded Ray's dashboard: loopback unless asked otherwise."""
    dashboard_port: Optional[int] = None
    """Port of an embedded Ray's dashboard. None: 8265, or the first free one of the 50 after it (Ray's own
    search). A port given here is taken as is: Ray fails if it is in use."""

    def connect(self) -> Optional[str]:
        """Connect or start Ray; return the dashboard URL."""
        address = self.address or os.environ.get("RAY_ADDRESS")
        context = None
        if address != "local":
            try:
                context = ray.init(address=address or "auto")
            except ConnectionError:
                if address:  # an address that was asked for and does not answer is an error
                    raise ConfigError(f"cannot reach the Ray cluster at {address}") from None
        if context is None:
            context = self._start_local()
        url = context.dashboard_url
        return f"http://{url}" if url and not url.startswith("http") else url

    def _start_local(self):
        try:
            with loopback_node():
                return ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus, include_dashboard=True,
                                dashboard_host=self.dashboard_host, dashboard_port=self.dashboard_port)
        except ValueError as error:
            if "already occupied" not in str(error):
                raise
            raise ConfigError(f"dashboard port {self.dashboard_port} on {self.dashboard_host} is in use: give "
                              "another one, or none (Ray then takes 8265 or the next free port)") from None
