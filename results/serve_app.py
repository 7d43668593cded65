"""Ray Serve application for an exported model (MODEL_DIR): onnxruntime behind FastAPI, batched with @serve.batch.

Routes:

- ``POST /predict[?top_k=K]``: the image as the raw body (``Content-Type: image/*``) or as multipart form field
  ``file`` -> ``{"top": [{"index": i, "class": name, "probability": p}, ...]}``
- ``GET /healthz`` -> ``{"status": "ok"}``
- ``GET /metadata``: model.json's model, input (preprocessing), sign-box convention, classes, metrics and source,
  MODEL_CARD.md, and the serving settings
- ``GET /stats``: this replica's counters: requests, images, forward passes, batch sizes

Every error is JSON ``{"error": "..."}`` with a 4xx status naming the problem (5xx only for faults of the
server). Concurrent requests to one replica wait up to ``batch_wait_ms`` to share one onnxruntime call of
up to ``max_batch_size`` images.

``python results/serve.py MODEL_DIR`` runs it on this machine; on a cluster (MODEL_DIR must be readable at the
same path on every node, e.g. the shared storage the search writes to)::

    serve run results.serve_app:build model_dir=/mnt/shared/models/smoke replicas=auto max_batch_size=32
"""

# No `from __future__ import annotations` here: FastAPI must see the real `Request` class in the route
# signatures, and Serve's class-based views lose the module globals that string annotations resolve against.
import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray import serve
from starlette.exceptions import HTTPException

from results.model_dir import CARD_FILE, load_model_dir
from results.preprocess import DEFAULT_MAX_PIXELS, ImageRejected
from results.runtime import OnnxClassifier
from results.serve_input import body_limit, image_bytes, read_limited

ROUTES = "POST /predict, GET /healthz, GET /metadata, GET /stats"


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
    cpus_per_replica: float = Field(0.5, gt=0)
    """Logical CPUs Ray reserves per replica; fractional so replicas fit beside other work on a small machine."""
    threads_per_replica: int = Field(1, ge=0)
    """onnxruntime intra-op threads per replica (0: one per core of the node: only for a replica alone there)."""
    max_bytes: int = Field(5 * 2**20, ge=1)
    """Largest image accepted, in bytes of the encoded file (413 above it)."""
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    """Largest image accepted, width x height of the decoded image (413 above it)."""
    top_k: int = Field(5, ge=1)
    """Classes returned per image when the request gives no ?top_k=."""
    access_log: bool = False
    """Serve's access log: one line per request from the proxy and the replica (console and Ray's log files)."""

    @model_validator(mode="after")
    def _replica_range(self) -> "ServeOptions":
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})")
        if self.max_ongoing_requests is not None and self.max_ongoing_requests < self.max_batch_size:
            raise ValueError(f"max_ongoing_requests ({self.max_ongoing_requests}) is below max_batch_size "
                             f"({self.max_batch_size}): batches could never fill")
        return self

    def deployment_options(self) -> dict[str, Any]:
        """@serve.deployment options: replicas or autoscaling, CPUs, and enough ongoing requests to fill batches."""
        # At least a full batch in flight plus the next one filling up.
        ongoing = self.max_ongoing_requests or max(2 * self.max_batch_size, 32)
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": self.cpus_per_replica},
                                   "max_ongoing_requests": ongoing,
                                   "logging_config": {"enable_access_log": self.access_log}}
        if self.replicas == "auto":
            options["autoscaling_config"] = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                             "target_ongoing_requests": max(1, self.max_batch_size)}
        else:
            options["num_replicas"] = self.replicas
        return options


api = FastAPI(title="signsearch model server", docs_url=None, redoc_url=None, openapi_url=None)


def _error(status: int, message: str, headers: Any = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@api.exception_handler(HTTPException)
async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """404 / 405 (and any other HTTP error) as JSON naming the request and the routes that exist."""
    return _error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail} (routes: {ROUTES})",
                  getattr(exc, "headers", None))


@api.exception_handler(Exception)
async def _fault(request: Request, exc: Exception) -> JSONResponse:
    """A fault of the server (not of the request): 500, still JSON."""
    detail = " ".join(str(exc).split())[:300]
    return _error(500, f"{request.method} {request.url.path}: internal error ({type(exc).__name__}: {detail})")


@api.exception_handler(RequestValidationError)
async def _bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    return _error(400, f"{where}: {first.get('msg')} (got {first.get('input')!r})")


@serve.deployment
@serve.ingress(api)
class ModelServer:
    """One replica: the model in an onnxruntime session, its counters, the HTTP routes."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = ServeOptions(**options)
        self.spec = load_model_dir(Path(self.options.model_dir))
        self.model = OnnxClassifier(self.spec, threads=self.options.threads_per_replica)
        pre = self.spec.preprocessing
        self.model.logits(pre.normalize(np.zeros((1, pre.height, pre.width, 3), np.uint8)))  # warm-up, not counted
        self._batched.set_max_batch_size(self.options.max_batch_size)
        self._batched.set_batch_wait_timeout_s(self.options.batch_wait_ms / 1000)
        card = self.spec.folder / CARD_FILE
        self.card = card.read_text() if card.is_file() else None
        self.counts = {"requests": 0, "rejected": 0, "images": 0, "forward_passes": 0, "forward_s": 0.0}
        self.batch_sizes: Counter[int] = Counter()
        self.started = time.time()

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)  # both are set per deployment in __init__
    async def _batched(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Logits of the images of concurrent requests, in one onnxruntime call."""
        batch = self.spec.preprocessing.normalize(images)
        started = time.perf_counter()
        # In a thread, so the replica keeps accepting the requests that will form the next batch.
        logits = await asyncio.to_thread(self.model.logits, batch)
        self.counts["forward_s"] += time.perf_counter() - started
        self.counts["forward_passes"] += 1
        self.counts["images"] += len(images)
        self.batch_sizes[len(images)] += 1
        return list(logits)

    @api.post("/predict")
    async def predict(self, request: Request, top_k: int | None = None) -> JSONResponse:
        self.counts["requests"] += 1
        try:
            if top_k is not None and top_k < 1:
                raise ImageRejected(f"top_k: got {top_k}, allowed: >= 1")
            content_type = request.headers.get("content-type")
            limit = body_limit(content_type, self.options.max_bytes)
            body = await read_limited(request.stream(), request.headers.get("content-length"), limit)
            data = image_bytes(content_type, body, self.options.max_bytes)
            pixels = await asyncio.to_thread(self.spec.preprocessing.decode, data, self.options.max_pixels,
                                           "request body")
        except ImageRejected as rejected:
            self.counts["rejected"] += 1
            return _error(rejected.status, str(rejected))
        logits = await self._batched(pixels)
        return JSONResponse({"top": self.model.top_k(logits[None], top_k or self.options.top_k)[0]})

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/metadata")
    async def metadata(self) -> dict[str, Any]:
        meta = self.spec.meta
        keys = ("format_version", "created", "model", "onnx", "input", "roi", "output", "classes", "metrics",
                "source", "versions")
        serving = self.options.model_dump(exclude={"model_dir"})
        return {**{key: meta.get(key) for key in keys}, "model_card": self.card, "serving": serving}

    @api.get("/stats")
    async def stats(self) -> dict[str, Any]:
        # get_replica_context is a DeveloperAPI: the only way a replica learns its own id.
        replica = serve.get_replica_context().replica_id.unique_id
        return {"replica": replica, "uptime_s": round(time.time() - self.started, 1), **self.counts,
                "batch_sizes": {str(size): n for size, n in sorted(self.batch_sizes.items())}}


def build(options: ServeOptions) -> Any:
    """The application (``serve run results.serve_app:build model_dir=... [key=value ...]``).

    Runs where the application is built (serve.py, or the ``serve run`` process): a relative model_dir is taken
    from that process's working directory, and an unusable folder fails here, once, not in every replica.
    """
    options = options.model_copy(update={"model_dir": str(Path(options.model_dir).expanduser().absolute())})
    load_model_dir(Path(options.model_dir))
    return ModelServer.options(**options.deployment_options()).bind(options.model_dump())
