"""Classify images with an exported model (MODEL_DIR from results/export.py), using only onnxruntime, numpy and Pillow.

    python results/predict.py models/smoke sign.png photos/ [--top-k 3] [--json]
    python results/predict.py models/smoke --benchmark [--threads N] [--json]   # re-measure latency_ms here

Folders are searched recursively for image files (.ppm .png .jpg .jpeg .bmp .gif .tif .tiff .webp).
Each image is resized exactly as in training (see model.json's ``input``); when the model was trained
on sign boxes (model.json ``roi``), pass images cropped to the sign. Prints, per image, the top-k
classes with probabilities; ``--json`` prints one JSON object per image per line:
``{"path": ..., "top": [{"index": i, "class": name, "probability": p}, ...]}``.

``--benchmark`` times model.onnx in onnxruntime on this machine with the settings model.json's ``latency``
records (batch, threads, provider, warm-up, repeats; --threads overrides), by the same function the search
measured latency_ms with (artifact/latency.py), and prints the new median beside the recorded one.

Every image is read before any is classified: a path that does not exist, a folder without images,
a file that is not a readable image or an unusable model folder stops with one line, exit 2. This is on
purpose: a script reading the output never gets a partial answer it could take for a whole one (N lines
for N+1 images), and the one line names the file to fix or leave out. Pixel modes are read as in training
(16-bit grey scaled to 8 bits; floating-point images refused: artifact/preprocess.py to_rgb).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL.Image import DecompressionBombWarning

from artifact.model_dir import ModelDirError, load_model_dir
from artifact.preprocess import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageRejected, Preprocessing


class InputError(ValueError):
    """A path that gives no image to classify."""


def image_paths(paths: list[Path]) -> list[Path]:
    """Files as given (whatever their name), and the image files under each folder, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not images:
                raise InputError(f"{path}: no images in this folder or below (looked for "
                                 f"{' '.join(IMAGE_EXTENSIONS)})")
            found += images
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def decode_all(pre: Preprocessing, paths: list[Path], max_pixels: int) -> np.ndarray:
    """(N, H, W, 3) uint8 of every image, or InputError naming the first that cannot be read."""
    pixels = []
    for path in paths:
        try:
            pixels.append(pre.decode(path, max_pixels=max_pixels, name=str(path)))
        except ImageRejected as error:
            raise InputError(str(error)) from None
        except OSError as error:  # unreadable file (permissions, I/O error)
            raise InputError(f"{path}: cannot be read ({error.strerror or error})") from None
    return np.stack(pixels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="folder written by results/export.py")
    parser.add_argument("images", type=Path, nargs="*", metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per image (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image per line")
    parser.add_argument("--batch-size", type=int, default=64, help="images per onnxruntime call")
    parser.add_argument("--threads", type=int, help="onnxruntime threads (0: all cores; default 0, or with "
                        "--benchmark the threads model.json's latency was measured with)")
    parser.add_argument("--benchmark", action="store_true",
                        help="re-measure latency_ms on this machine (no images needed) and compare with model.json")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image accepted (w x h)")
    args = parser.parse_args(argv)
    for flag, value, least in (("--top-k", args.top_k, 1), ("--batch-size", args.batch_size, 1),
                               ("--threads", args.threads, 0), ("--max-pixels", args.max_pixels, 1)):
        if value is not None and value < least:
            print(f"error: {flag} {value}: must be >= {least}" + (" (0: every core)" if flag == "--threads" else ""),
                  file=sys.stderr)
            return 2
    if args.benchmark:
        return benchmark(args.model_dir, args.threads, args.json)
    if not args.images:
        parser.error("give images or folders to classify (or --benchmark)")
    from artifact.runtime import OnnxClassifier

    try:
        spec = load_model_dir(args.model_dir)
        paths = image_paths(args.images)
        with warnings.catch_warnings():
            # Pillow warns of a "decompression bomb" over Image.MAX_IMAGE_PIXELS; --max-pixels is the limit here,
            # checked before any pixel is decoded (one CLI thread: catch_warnings is safe).
            warnings.simplefilter("ignore", DecompressionBombWarning)
            pixels = decode_all(spec.preprocessing, paths, args.max_pixels)
        model = OnnxClassifier(spec, threads=args.threads or 0)
    except (ModelDirError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for start in range(0, len(paths), args.batch_size):
        batch = spec.preprocessing.normalize(pixels[start:start + args.batch_size])
        for path, top in zip(paths[start:start + args.batch_size], model.top_k(model.logits(batch), args.top_k)):
            if args.json:
                print(json.dumps({"path": str(path), "top": top}))
            else:
                print(f"{path}: " + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in top))
    return 0


def benchmark(model_dir: Path, threads: int | None, as_json: bool) -> int:
    """Time model.onnx here with model.json's latency settings; print the median against the recorded one."""
    from artifact.latency import LatencyError, measure

    try:
        spec = load_model_dir(model_dir)
        recorded = spec.meta.get("latency") or {}
        how = {"batch_size": 1, "threads": 1, "execution_provider": "cpu", "warmup": 10, "repeats": 100, "rounds": 3,
               **{k: v for k, v in (recorded.get("settings") or {}).items() if v is not None}}
        if threads is not None:
            how["threads"] = threads
        pre = spec.preprocessing
        result = measure(spec.onnx_path, (int(how["batch_size"]), 3, pre.height, pre.width),
                         threads=int(how["threads"]), provider=str(how["execution_provider"]),
                         warmup=int(how["warmup"]), repeats=int(how["repeats"]), rounds=int(how["rounds"]))
    except (ModelDirError, LatencyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["recorded_latency_ms"] = recorded.get("latency_ms")
    if as_json:
        print(json.dumps(result))
        return 0
    s = result["settings"]
    line = (f"latency_ms {result['latency_ms']:.4f} (median of {s['repeats']} calls, quietest of {s['rounds']} "
            f"rounds, batch {s['batch_size']}, "
            f"{s['threads']} thread(s), {s['execution_provider']}; p90 {result['p90_ms']:.4f} ms)")
    if result["recorded_latency_ms"]:
        ratio = result["latency_ms"] / result["recorded_latency_ms"]
        line += f"; recorded by the search: {result['recorded_latency_ms']:.4f} ms ({ratio:.2f}x)"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
