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
import socket
import sys
from dataclasses import dataclass
from typing import Optional

import ray

from train.config import ConfigError
from train.ray_compat import auto_address, loopback_node

REACH_TIMEOUT_S = 3.0
"""How long the GCS of a cluster to join may take to accept a TCP connection before it counts as dead."""


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

    def __post_init__(self) -> None:
        # Checked here, before anything starts: Ray would take 70000 as far as a socket call deep in its
        # start-up (an OverflowError traceback, with the experiment folder already made).
        if self.dashboard_port is not None and not 1 <= self.dashboard_port <= 65535:
            raise ConfigError(f"--dashboard-port {self.dashboard_port}: a TCP port is 1 to 65535 (or leave it out: "
                              "8265, or the next free port)")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError(f"--num-cpus {self.num_cpus}: give 1 or more (or leave it out: all of this machine's)")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise ConfigError(f"--num-gpus {self.num_gpus}: give 0 or more (or leave it out: the GPUs torch's driver "
                              "shows)")

    def connect(self) -> Optional[str]:
        """Connect or start Ray; return the dashboard URL."""
        address = self.address or os.environ.get("RAY_ADDRESS")
        context = None
        target = None if address == "local" else self._reachable(address)
        if target is not None:
            try:
                context = ray.init(address=target)
            except ConnectionError:
                if address:  # an address that was asked for and does not answer is an error
                    raise ConfigError(f"cannot reach the Ray cluster at {address}") from None
        if context is None:
            context = self._start_local()
        url = context.dashboard_url
        return f"http://{url}" if url and not url.startswith("http") else url

    @staticmethod
    def _reachable(address: str | None) -> Optional[str]:
        """The address to join, checked in a few seconds to answer at all (Ray retries a dead GCS for minutes, a
        warning every 5 s), or None: start a Ray here. No address: the cluster ``ray start`` left its file for,
        else a GCS process here (train/ray_compat.py auto_address); one whose GCS does not answer (the file of
        a killed Ray) is one line and a local Ray. An address asked for that does not answer is a ConfigError
        (exit 2)."""
        found, where = auto_address() if address in (None, "auto") else (address, "")
        if found is None:
            return address  # None: nothing to join; "auto" asked for: ray.init says there is none (ConfigError)
        host, _, port = found.removeprefix("ray://").rpartition(":")
        if not port.isdigit():  # not host:port (a job-server URL, ...): let ray.init judge it
            return found
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
            return found
        except OSError as error:
            reason = error.strerror or type(error).__name__
        if address is None:
            print(f"The Ray cluster at {found} (named by {where}) is not answering ({reason}); starting a local "
                  "Ray; `ray stop` clears it", file=sys.stderr, flush=True)
            return None
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {found} is not answering ({reason})"
                          + (f" (named by {where}; `ray stop` clears it)" if where else ""))

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
