"""The HTTP routes of the model server, as a FastAPI app around a ModelService (no Ray in here).

- ``POST /predict[?top_k=K]``: the image as the raw body (``Content-Type: image/*``) or as multipart form field
  ``file`` -> ``{"top": [{"index": i, "class": name, "probability": p}, ...]}``
- ``GET /healthz`` -> ``{"status": "ok"}``
- ``GET /metadata``: model.json's model, input (preprocessing), sign-box convention, classes, metrics, recorded
  latency and source, MODEL_CARD.md, and the serving settings; no path of the server (relative to the model folder,
  or null)
- ``GET /stats``: the answering process's counters: requests, images, forward passes, batch sizes, seconds spent
  decoding and in onnxruntime

Every error is JSON ``{"error": "..."}`` with a 4xx status naming the problem (5xx only for faults of the
server). The same app runs in each Ray Serve replica (deployment.py) and in the plain uvicorn server (plain.py);
only ``infer`` differs: Serve's batching there, one image per onnxruntime call here.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from artifact.preprocess import ImageRejected
from results.serving.body import body_limit, image_bytes, read_limited
from results.serving.model_service import Answer, ModelService
from results.serving.options import ServeOptions

ROUTES = "POST /predict, GET /healthz, GET /metadata, GET /stats"

Infer = Callable[[bytes], Awaitable[Answer]]
"""One encoded image -> its logits or its ImageRejected (batched or not, in a thread)."""


def _error(status: int, message: str, headers: Any = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def build_api(service: ModelService, infer: Infer, options: ServeOptions,
              replica: Callable[[], Optional[str]] = lambda: None) -> FastAPI:
    """The app; ``replica`` names the answering replica in /stats (None outside Serve)."""
    api = FastAPI(title="signsearch model server", docs_url=None, redoc_url=None, openapi_url=None)
    serving = options.model_dump(exclude={"model_dir", "bind_host"})

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """404 / 405 (and any other HTTP error) as JSON naming the request and the routes that exist."""
        return _error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail} (routes: {ROUTES})",
                      getattr(exc, "headers", None))

    @api.exception_handler(Exception)
    async def fault(request: Request, exc: Exception) -> JSONResponse:
        """A fault of the server (not of the request): 500, still JSON."""
        detail = " ".join(str(exc).split())[:300]
        return _error(500, f"{request.method} {request.url.path}: internal error ({type(exc).__name__}: {detail})")

    @api.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error(400, f"{where}: {first.get('msg')} (got {first.get('input')!r})")

    @api.post("/predict")
    async def predict(request: Request, top_k: Optional[int] = None) -> JSONResponse:
        service.counts["requests"] += 1
        try:
            if top_k is not None and top_k < 1:
                raise ImageRejected(f"top_k: got {top_k}, allowed: >= 1")
            content_type = request.headers.get("content-type")
            limit = body_limit(content_type, options.max_bytes)
            body = await read_limited(request.stream(), request.headers.get("content-length"), limit)
            answer = await infer(image_bytes(content_type, body, options.max_bytes))
            if isinstance(answer, ImageRejected):
                raise answer
        except ImageRejected as rejected:
            service.counts["rejected"] += 1
            return _error(rejected.status, str(rejected))
        return JSONResponse({"top": service.top(answer, top_k or options.top_k)})

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return service.metadata(serving)

    @api.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"replica": replica(), **service.stats()}

    return api
