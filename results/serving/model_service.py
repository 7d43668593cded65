"""What one server process does with the model, with neither Ray nor HTTP in it: encoded images in, logits
out, plus the counters and the metadata it answers with. The Ray Serve replica (deployment.py) and the plain
uvicorn server (plain.py) both wrap one of these, so they run the same steps on every request.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from artifact.model_dir import CARD_FILE, load_model_dir
from artifact.preprocess import ImageRejected
from artifact.runtime import OnnxClassifier

WITHHELD = "<not on this server>"
"""What a path outside the model folder becomes in the model card /metadata returns."""

METADATA_KEYS = ("format_version", "created", "model", "onnx", "input", "roi", "output", "classes", "metrics",
                 "latency", "source", "versions")
"""model.json sections that GET /metadata returns (``latency``: null for a model of a search without a latency
objective)."""

Answer = Union[np.ndarray, ImageRejected]
"""Per image: its logits (classes,), or why it was rejected."""


class ModelService:
    """The model of MODEL_DIR in one onnxruntime session, and this process's counters."""

    def __init__(self, model_dir: Path, threads: int, max_pixels: int) -> None:
        self.spec = load_model_dir(Path(model_dir))
        # No spinning: idle onnxruntime threads would otherwise busy-wait for the next batch on cores that the
        # request path (HTTP parsing, decoding) needs between forward passes.
        self.model = OnnxClassifier(self.spec, threads=threads, spin=False)
        self.max_pixels = max_pixels
        pre = self.spec.preprocessing
        self.model.logits(pre.normalize(np.zeros((1, pre.height, pre.width, 3), np.uint8)))  # warm-up, not counted
        card = self.spec.folder / CARD_FILE
        self.card = card.read_text() if card.is_file() else None
        self.counts: dict[str, Any] = {"requests": 0, "rejected": 0, "images": 0, "forward_passes": 0,
                                       "decode_s": 0.0, "forward_s": 0.0}
        self.batch_sizes: Counter[int] = Counter()
        self.started = time.time()

    def classify(self, images: list[bytes]) -> list[Answer]:
        """Decode, preprocess and run a batch of encoded images in one onnxruntime call (blocking: call it in a
        thread). A bad image gets its ImageRejected; the others still get their logits."""
        started = time.perf_counter()
        answers: list[Optional[Answer]] = []
        pixels = []
        for data in images:
            try:
                pixels.append(self.spec.preprocessing.decode(data, self.max_pixels, "request body"))
                answers.append(None)
            except ImageRejected as rejected:
                answers.append(rejected)
        decoded = time.perf_counter()
        self.counts["decode_s"] += decoded - started
        if pixels:
            logits = iter(self.model.logits(self.spec.preprocessing.normalize(pixels)))
            answers = [next(logits) if answer is None else answer for answer in answers]
            self.counts["forward_s"] += time.perf_counter() - decoded
            self.counts["forward_passes"] += 1
            self.counts["images"] += len(pixels)
            self.batch_sizes[len(pixels)] += 1
        return answers  # type: ignore[return-value]

    def top(self, logits: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The ``k`` most probable classes of one image's logits."""
        return self.model.top_k(logits[None], k)[0]

    def metadata(self, serving: dict[str, Any]) -> dict[str, Any]:
        """model.json's sections and the model card, with no path of this server in them (see public_paths)."""
        meta, folder = self.spec.meta, self.spec.folder
        absolute: set[str] = set()
        public = {key: public_paths(meta.get(key), folder, absolute) for key in METADATA_KEYS}
        card = self.card
        for path in sorted(absolute, key=len, reverse=True):  # longest first: a root before its sub-folders
            card = card.replace(path, _relative(path, folder) or WITHHELD) if card else card
        return {**public, "model_card": card, "serving": serving}

    def stats(self) -> dict[str, Any]:
        counts = {key: round(value, 4) if isinstance(value, float) else value for key, value in self.counts.items()}
        return {"pid": os.getpid(), "uptime_s": round(time.time() - self.started, 1), **counts,
                "batch_sizes": {str(size): n for size, n in sorted(self.batch_sizes.items())}}


def public_paths(value: Any, folder: Path, seen: set[str]) -> Any:
    """``value`` with every absolute path made relative to the model folder, or None where it lies outside it
    (a checkpoint, data root or cache of the machine that exported the model); each one is added to ``seen``."""
    if isinstance(value, dict):
        return {key: public_paths(item, folder, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [public_paths(item, folder, seen) for item in value]
    if isinstance(value, str) and os.path.isabs(value):
        seen.add(value)
        return _relative(value, folder)
    return value


def _relative(path: str, folder: Path) -> Optional[str]:
    try:
        return Path(path).relative_to(folder).as_posix() or "."
    except ValueError:
        return None
