"""model.json and MODEL_CARD.md of an exported model (see results/export.py and artifact/model_dir.py)."""

from __future__ import annotations

import json
import time
from importlib import metadata
from typing import Any, Optional

from artifact.model_dir import CARD_FILE, FORMAT_VERSION, INPUT_NAME, ONNX_FILE, OUTPUT_NAME, TORCHSCRIPT_FILE

PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxscript", "onnxruntime", "numpy", "pillow", "ray")
ROI_CONVENTION = ("the model sees the sign's box only: crop each photo to (x1, y1, x2, y2), pixel coordinates with "
                  "x2/y2 inclusive (GTSRB's Roi.X1..Roi.Y2), i.e. Pillow image.crop((x1, y1, x2 + 1, y2 + 1)) "
                  "clipped to the image, then resize")
FULL_CONVENTION = "the model was trained on whole images: send the whole image, uncropped"


def versions() -> dict[str, Optional[str]]:
    found: dict[str, Optional[str]] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def validation_metrics(source, state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's own epoch row of the trial's result.json, else the trial's summary entry."""
    epoch = int(state["epoch"]) + 1
    rows_file = source.checkpoint.parent / "result.json"
    if rows_file.is_file():
        for line in rows_file.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("epoch") == epoch and "val_acc" in row:
                return {"epoch": epoch, "val_acc": row["val_acc"], "val_loss": row.get("val_loss"),
                        "from": str(rows_file)}
    metrics = (source.trial or {}).get("metrics") or {}
    if metrics.get("val_acc") is not None:
        return {"epoch": metrics.get("epoch"), "val_acc": metrics["val_acc"], "val_loss": metrics.get("val_loss"),
                "from": "summary.json"}
    return {"epoch": epoch, "val_acc": None, "val_loss": None, "from": None}


def _evaluation(source) -> Optional[dict[str, Any]]:
    """results/evaluate.py's test-split figures beside the checkpoint, when it was run."""
    for name in ("evaluation-test.json", "evaluation.json"):
        path = source.checkpoint / name
        if path.is_file():
            try:
                found = json.loads(path.read_text())
            except ValueError:
                continue
            if found.get("split", "test") == "test":
                return {"accuracy": found.get("accuracy"), "images": found.get("images"), "from": str(path)}
    return None


def model_json(cfg, state: dict[str, Any], source, classes: list[dict[str, Any]], pre, cropped: bool, fmt: str, *,
               opset: int, parameters: int) -> dict[str, Any]:
    """Everything a program needs to run model.onnx without this project (contract D)."""
    summary = source.summary or {}
    meta = {
        "format_version": FORMAT_VERSION,
        "producer": "signsearch results/export.py",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {"onnx": ONNX_FILE, "torchscript": TORCHSCRIPT_FILE, "card": CARD_FILE},
        "model": {"name": cfg.model.name, "num_classes": len(classes), "parameters": parameters},
        "onnx": {"input": INPUT_NAME, "output": OUTPUT_NAME, "opset": opset, "dtype": "float32",
                 "input_shape": ["batch", 3, pre.height, pre.width], "output_shape": ["batch", len(classes)],
                 "exporter": "torch.onnx.export(dynamo=True)"},
        "input": {
            "width": pre.width, "height": pre.height, "channels": 3, "channel_order": "RGB", "layout": "NCHW",
            "dtype": "float32", "scale": 1 / 255, "mean": list(pre.mean), "std": list(pre.std),
            "formula": "x[c] = (pixel[c] / 255 - mean[c]) / std[c], pixel in 0..255, c in R, G, B",
            "resize": {"library": "Pillow", "method": pre.resize, "keep_aspect_ratio": False,
                       "jpeg_draft": pre.jpeg_draft,
                       "steps": ("Image.open; " + ("image.draft('RGB', (width, height)); " if pre.jpeg_draft else "")
                                 + "image.convert('RGB'); image.resize((width, height), Image.BILINEAR)")},
        },
        "roi": {"trained_on_sign_crops": cropped, "convention": ROI_CONVENTION if cropped else FULL_CONVENTION},
        "output": {"logits": f"{OUTPUT_NAME}[n, index]", "probabilities": "softmax over the logits of each image"},
        "classes": classes,
        "metrics": {"validation": validation_metrics(source, state), "test": {"evaluate": _evaluation(source)}},
        "source": {
            "checkpoint": str(source.checkpoint), "experiment": str(source.experiment) if source.experiment else None,
            "trial_id": (source.trial or {}).get("trial_id"), "epoch": int(state["epoch"]) + 1,
            "data_fingerprint": state.get("data_fingerprint"),
            "data": {"format": fmt, "root": cfg.data.root, "image_size": cfg.data.image_size,
                     "roi_crop": cropped},
            "search": {**{key: summary.get(key) for key in ("experiment", "metric", "mode", "num_trials",
                                                            "total_epochs", "epochs", "wall_s")},
                       # An interrupted search's best trial may have stopped early: say so where the model goes.
                       "search_interrupted": bool(summary.get("interrupted")),
                       "trial_epochs": (source.trial or {}).get("epochs"),
                       "trial_status": (source.trial or {}).get("status")} if summary else None,
            "sampled_params": (source.trial or {}).get("params"),
            "config": cfg.to_dict(),
        },
        "versions": versions(),
    }
    from results.exporter.confirmed import confirmation_meta

    confirmed = confirmation_meta(source)
    if confirmed is not None:
        meta["confirmation"] = confirmed
    latency = recorded_latency(source)
    if latency is not None:
        meta["latency"] = latency
    return meta


def recorded_latency(source) -> Optional[dict[str, Any]]:
    """The trial's latency_ms as the search measured it (a multi-objective search), with the settings it was
    measured with; None for a trial without one. ``results/predict.py MODEL_DIR --benchmark`` re-measures it."""
    value = ((source.trial or {}).get("metrics") or {}).get("latency_ms")
    if value is None:
        return None
    return {"latency_ms": value, "settings": (source.summary or {}).get("latency"),
            "measured": "by the search, on its driver: this architecture with random weights, exported to ONNX as "
                        "here and timed in onnxruntime (median of settings.repeats calls)"}


def _fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def model_card(meta: dict[str, Any], source) -> str:
    """MODEL_CARD.md: what the model is, how to feed it, how good it is, where it came from."""
    src, inp, metrics = meta["source"], meta["input"], meta["metrics"]
    val, test, parity = metrics["validation"], metrics["test"], metrics.get("parity", {})
    evaluated = test.get("evaluate")
    lines = [
        f"# Model card: {meta['model']['name']} on {src['data']['format']} "
        f"({len(meta['classes'])} classes)", "",
        f"Exported {meta['created']} by `results/export.py` from `{src['checkpoint']}` "
        f"(epoch {src['epoch']}{', trial ' + src['trial_id'] if src['trial_id'] else ''}).", "",
        "| | |", "| --- | --- |",
        f"| model | {meta['model']['name']}, {meta['model']['parameters']:,} parameters |",
        f"| input | {inp['width']}x{inp['height']} RGB, NCHW float32, `(pixel / 255 - mean) / std`, "
        f"mean {inp['mean']}, std {inp['std']} |",
        f"| resize | Pillow {inp['resize']['method']} to {inp['width']}x{inp['height']}, aspect ratio not kept"
        f"{', JPEG draft decoding' if inp['resize']['jpeg_draft'] else ''} |",
        f"| sign box | {meta['roi']['convention']} |",
        f"| validation accuracy | {_fmt(val['val_acc'])} (epoch {_fmt(val['epoch'])}; "
        f"val loss {_fmt(val['val_loss'])}) |",
        f"| test accuracy (onnxruntime) | {_fmt(test['onnxruntime']['accuracy'])} on "
        f"{test['onnxruntime']['images']} images |",
    ]
    latency = meta.get("latency")
    if latency:
        how = latency.get("settings") or {}
        lines.append(f"| latency (onnxruntime) | {_fmt(latency['latency_ms'])} ms median per call, batch "
                     f"{how.get('batch_size')}, {how.get('threads')} thread(s), {how.get('execution_provider')}, "
                     f"onnxruntime {how.get('onnxruntime')} (measured by the search on its machine; re-measure here "
                     f"with `python results/predict.py MODEL_DIR --benchmark`) |")
    if evaluated:
        lines.append(f"| test accuracy (evaluate.py) | {_fmt(evaluated['accuracy'])} on {evaluated['images']} images |")
    for name in ("onnxruntime", "torchscript"):
        if name in parity:
            lines.append(f"| {name} vs torch | max \\|logit diff\\| {parity[name]['max_abs_logit_diff']:.2e}, "
                         f"top-1 agreement {parity[name]['top1_agreement']:.1%} on {parity['images']} test images |")
    lines += ["", "## Files", "",
              f"- `{ONNX_FILE}`: opset {meta['onnx']['opset']}, input `{INPUT_NAME}` "
              f"{meta['onnx']['input_shape']}, output `{OUTPUT_NAME}` {meta['onnx']['output_shape']} (logits; "
              f"softmax gives probabilities)",
              f"- `{TORCHSCRIPT_FILE}`: the same network, `torch.jit.load`",
              "- `model.json`: preprocessing, classes, metrics and source, machine-readable", "",
              "## Classes", "", "| index | id | name |", "| --- | --- | --- |"]
    lines += [f"| {c['index']} | {c['id']} | {c['name']} |" for c in meta["classes"]]
    lines += ["", "## Data", "",
              f"- format `{src['data']['format']}`, root `{src['data']['root']}`, {src['data']['image_size']} px, "
              f"cropped to sign boxes: {src['data']['roi_crop']}",
              f"- training data fingerprint `{src['data_fingerprint']}` (source files and pixel options)", ""]
    lines += ["## How it was searched", ""]
    if src["search"]:
        s = src["search"]
        lines += [f"Experiment `{s['experiment']}` (`{src['experiment']}`): {s['num_trials']} trials, "
                  f"{s['total_epochs']} epochs in all (at most {s['epochs']} each), {_fmt(s['wall_s'], 1)} s; "
                  f"best by {s['mode']} `{s['metric']}`.", ""]
        if s.get("search_interrupted"):
            lines += [f"**The search was interrupted**: this trial ({s['trial_status']}) trained {s['trial_epochs']} "
                      f"of {s['epochs']} epochs, and trials that would have finished are missing from the ranking. "
                      "Continue it with `--resume` and export again for the search's real result.", ""]
        lines += [f"Sampled parameters of this trial: `{json.dumps(src['sampled_params'])}`", ""]
        from results.exporter.confirmed import card_lines

        lines += card_lines(meta)
        if source.search_yaml:
            lines += ["Search file (`search.yaml`):", "", "```yaml", source.search_yaml.rstrip(), "```", ""]
    else:
        lines += ["Exported from a checkpoint outside a search summary: no search record.", ""]
    lines += ["## Training config", "", "```json", json.dumps(src["config"], indent=2), "```", "",
              "## Package versions", "", ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v), ""]
    return "\n".join(lines)
