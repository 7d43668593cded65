"""Settings of the model server: serve.py's flags, and the ``key=value`` arguments of ``serve run``."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from artifact.preprocess import DEFAULT_MAX_PIXELS

GRACEFUL_SHUTDOWN_S = 5.0
"""How long a replica being stopped may finish its in-flight requests (Serve's default is 20 s): a forward pass
takes milliseconds, and a Ctrl-C should stop the service within seconds."""


def node_cpus() -> int:
    """CPUs this process may run on (the node's cores, or fewer under a CPU affinity mask / cgroup cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class ServeOptions(BaseModel):
    """Settings of the application (serve.py's flags; ``key=value`` arguments of ``serve run``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    model_dir: str
    """Exported model folder (results/export.py), readable at this path wherever a replica runs."""
    replicas: Union[Annotated[int, Field(ge=1)], Literal["auto"]] = 1
    """Replica count, or "auto": Serve autoscales between min_replicas and max_replicas on ongoing requests."""
    min_replicas: int = Field(1, ge=0)
    """Autoscaling floor (replicas=auto)."""
    max_replicas: int = Field(4, ge=1)
    """Autoscaling ceiling (replicas=auto)."""
    max_batch_size: int = Field(32, ge=1)
    """Most images per onnxruntime call; 1 turns batching off."""
    batch_wait_ms: float = Field(5.0, ge=0)
    """How long a replica waits for more requests to fill a batch, in milliseconds."""
    max_ongoing_requests: Optional[int] = Field(None, ge=1)
    """Requests a replica holds at once (waiting for or in a batch); more wait in Serve's router, which backs off
    and retries while every replica is full. None: max(2 x max_batch_size, 32)."""
    cpus_per_replica: float = Field(1.0, gt=0)
    """Logical CPUs Ray reserves per replica."""
    threads_per_replica: Optional[int] = Field(None, ge=1)
    """onnxruntime intra-op threads per replica. None: cpus_per_replica rounded (at least 1), so the replicas of a
    node together use as many threads as Ray reserved cores for them."""
    max_bytes: int = Field(5 * 2**20, ge=1)
    """Largest image accepted, in bytes of the encoded file (413 above it)."""
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    """Largest image accepted, width x height of the decoded image (413 above it)."""
    top_k: int = Field(5, ge=1)
    """Classes returned per image when the request gives no ?top_k=."""
    access_log: bool = False
    """Serve's access log: one line per request from the proxy and the replica (console and Ray's log files)."""
    bind_host: Optional[str] = None
    """Address the replicas' own servers bind to (Serve's inter-deployment gRPC server): the HTTP host when it
    is loopback, so nothing listens beyond it; None leaves Serve's default (all interfaces, for a cluster)."""

    @model_validator(mode="after")
    def _replica_range(self) -> "ServeOptions":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        if self.max_ongoing_requests is not None and self.max_ongoing_requests < self.max_batch_size:
            raise ValueError(f"max_ongoing_requests ({self.max_ongoing_requests}) is below max_batch_size "
                             f"({self.max_batch_size}): batches could never fill")
        return self

    @property
    def threads(self) -> int:
        """onnxruntime threads of one replica."""
        return self.threads_per_replica or max(1, round(self.cpus_per_replica))

    @property
    def ongoing(self) -> int:
        """Requests a replica holds at once: at least a full batch in flight plus the next one filling up."""
        return self.max_ongoing_requests or max(2 * self.max_batch_size, 32)

    def deployment_options(self) -> dict[str, Any]:
        """@serve.deployment options: replicas or autoscaling, CPUs, and enough ongoing requests to fill batches."""
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": self.cpus_per_replica},
                                   "max_ongoing_requests": self.ongoing,
                                   "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S,
                                   "graceful_shutdown_wait_loop_s": 0.5,
                                   "logging_config": {"enable_access_log": self.access_log}}
        if self.replicas == "auto":
            options["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                             "target_ongoing_requests": max(1, self.max_batch_size)}
        else:
            options["num_replicas"] = self.replicas
        return options
