"""The exported model under onnxruntime: logits for normalised batches, top-k classes with probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from artifact.model_dir import INPUT_NAME, OUTPUT_NAME, ModelDirError, ModelSpec


class OnnxClassifier:
    """One onnxruntime CPU session of MODEL_DIR's model.onnx."""

    def __init__(self, spec: ModelSpec, threads: int = 0, spin: bool = True) -> None:
        """``threads``: onnxruntime intra-op threads; 0 lets onnxruntime use every core (one process alone).
        ``spin``: idle intra-op threads busy-wait for the next call (onnxruntime's default: lowest latency for a
        batch job alone on its cores); a server turns it off, as its request path needs those cores between
        calls."""
        self.spec = spec
        options = session_options(threads, spin)
        try:
            self.session = ort.InferenceSession(str(spec.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            detail = " ".join(str(error).split())[:200]
            raise ModelDirError(f"{spec.onnx_path}: onnxruntime cannot load it ({detail}); "
                                f"re-export it with python results/export.py") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        pre = spec.preprocessing
        expected = [3, pre.height, pre.width]
        if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME] \
                or list(inputs[0].shape[1:]) != expected or outputs[0].shape[1] != len(spec.class_names):
            raise ModelDirError(f"{spec.onnx_path}: its input/output ({inputs[0].name} {inputs[0].shape} -> "
                                f"{outputs[0].name} {outputs[0].shape}) do not match model.json "
                                f"({INPUT_NAME} [batch, {', '.join(map(str, expected))}] -> {OUTPUT_NAME} "
                                f"[batch, {len(spec.class_names)}]); re-export it with python results/export.py")

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """(N, classes) float32 logits of a normalised (N, 3, H, W) float32 batch."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    def top_k(self, logits: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        """Per row: the ``k`` most probable classes, ``{"index", "class", "probability"}``, most probable first."""
        probabilities = softmax(logits)
        k = max(1, min(k, probabilities.shape[1]))
        # A stable sort on the negated probabilities keeps ties in index order (deterministic output).
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [[{"index": int(i), "class": self.spec.class_names[i], "probability": float(row[i])} for i in top]
                for row, top in zip(probabilities, order)]


def session_options(threads: int = 0, spin: bool = True) -> ort.SessionOptions:
    """The onnxruntime settings every session of an exported model uses (classifier, server, latency timing)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1  # a CNN is one chain of ops: nothing to run side by side
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (probabilities that sum to 1 to ~1e-15)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
