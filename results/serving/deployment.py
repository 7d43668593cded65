"""The Ray Serve application: api.py's routes in each replica, images of concurrent requests decoded and run in
one onnxruntime call (``@serve.batch``).

``python results/serve.py MODEL_DIR`` runs it on this machine; on a cluster (MODEL_DIR must be readable at the
same path on every node, e.g. the shared storage the search writes to)::

    serve run results.serving.deployment:build model_dir=/mnt/shared/models/smoke replicas=auto max_batch_size=32
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ray import serve

from artifact.model_dir import load_model_dir
from results.serving.api import build_api
from results.serving.loopback import bind_replica_servers
from results.serving.model_service import Answer, ModelService
from results.serving.options import ServeOptions


@serve.deployment
@serve.ingress()
class ModelServer:
    """One replica: the model in an onnxruntime session, its counters, the HTTP routes."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = ServeOptions(**options)
        if self.options.bind_host:
            bind_replica_servers(self.options.bind_host)
        self.service = ModelService(Path(self.options.model_dir), self.options.threads, self.options.max_pixels)
        self._batched.set_max_batch_size(self.options.max_batch_size)
        self._batched.set_batch_wait_timeout_s(self.options.batch_wait_ms / 1000)

    def __serve_build_asgi_app__(self) -> Any:
        # get_replica_context is a DeveloperAPI: the only way a replica learns its own id.
        return build_api(self.service, self._batched, self.options,
                         replica=lambda: serve.get_replica_context().replica_id.unique_id)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)  # both are set per deployment in __init__
    async def _batched(self, images: list[bytes]) -> list[Answer]:
        """Decode + preprocess + forward of the images of concurrent requests, in one thread hop and one
        onnxruntime call: the replica's event loop keeps accepting the requests that form the next batch."""
        return await asyncio.to_thread(self.service.classify, images)


def build(options: ServeOptions) -> Any:
    """The application (``serve run results.serving.deployment:build model_dir=... [key=value ...]``).

    Runs where the application is built (serve.py, or the ``serve run`` process): a relative model_dir is taken
    from that process's working directory, and an unusable folder fails here, once, not in every replica.
    """
    options = options.model_copy(update={"model_dir": str(Path(options.model_dir).expanduser().absolute())})
    load_model_dir(Path(options.model_dir))
    return ModelServer.options(**options.deployment_options()).bind(options.model_dump())
