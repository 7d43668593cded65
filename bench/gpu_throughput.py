"""Benchmark: the training loop on one CUDA GPU -- against the bare step, per GTSRB epoch, and shared by trials.

Needs a CUDA GPU; where torch sees none it says so (and prints its JSON line) and exits 0. Three figures:

1. **Loop ÷ bare step.** images/s of the project's loop (``train.loop.Trainer`` in this process, as
   ``run_local`` runs it: gather from the memory-mapped uint8 arrays, augment with Kornia, normalise, step)
   divided by a bare timm training step on tensors already on the GPU (the limit): the same model, batch,
   AMP dtype (bfloat16 where the GPU has it natively, else float16 with a GradScaler), channels_last, AdamW,
   label smoothing and gradient clipping. For mobilenetv3_small_100 and mobilenetv3_large_100 at 48 and
   224 px. The loop's figure is its own ``images_per_s`` (training pass), the median of its epochs after
   the first; it runs with the trial default augmentation (the verdict) and with augmentation off (to
   tell input-pipeline cost from augmentation cost). Target >= 0.85.
2. **GTSRB-sized epoch.** 39,209 images at 48 px (GTSRB's training set), split 85/15 as
   ``search_spaces/gtsrb.yaml`` does (33,328 train / 5,881 val), mobilenetv3_small_100, batch 128: seconds
   of the training pass and of the whole epoch (train + validation + checkpoint, report to report).
   Target: whole epoch <= 3 s on an H100/H200.
3. **Concurrent trials.** 1, 2, 4 and 8 trial processes on the one GPU -- what fractional
   ``gpus_per_worker`` (1/k) gives them, since Ray only sets each one's ``CUDA_VISIBLE_DEVICES`` -- each
   running the loop on the GTSRB-sized set. After their first (warm-up) epoch they wait on a barrier, so the
   measured epochs overlap; total images/s = training images of all processes / wall time from the barrier
   to the last one's end. Target: 4 trials >= 2.5x one trial.

The data are random uint8 arrays written as the cache writes them (``images.npy`` (N, S, S, 3) uint8 and
``labels.npy`` int64, opened with ``np.load(mmap_mode="r")``) and handed to the loop as its prepared data.
Generating the synthetic signs instead would take minutes of single-threaded drawing for 39,209 images,
and the pixels' content does not change the speed of anything measured here.

    python bench/gpu_throughput.py [--batch 128] [--epochs 3] [--trials 1 2 4 8] [--skip loop gtsrb concurrent]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import multiprocessing as mp
import os
import queue
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for _path in (str(REPO), str(BENCH)):  # bench/ is not a package: its modules import as top-level names
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from train.device import amp_dtype  # noqa: E402
from train_overhead import _median, _r, drop_scratch, load_average, machine, machine_line  # noqa: E402

MODELS = ("mobilenetv3_small_100", "mobilenetv3_large_100")
SIZES = (48, 224)
CLASSES = 43
GTSRB_IMAGES = 39_209
GTSRB_VAL_FRACTION = 0.15  # search_spaces/gtsrb.yaml
IMAGES_224 = 12_800  # 1.9 GB of uint8: several seconds per epoch for either model at 224 px
TARGET_RATIO, TARGET_EPOCH_S, TARGET_SPEEDUP = 0.85, 3.0, 2.5


# -- data ------------------------------------------------------------------------------------------
def write_arrays(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """Random images and labels in the cache's layout (images.npy uint8 NHWC, labels.npy int64), in chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
    chunk = max(1, (256 << 20) // (size * size * 3))
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        images[start:stop] = rng.integers(0, 256, size=(stop - start, size, size, 3), dtype=np.uint8)
    images.flush()
    del images
    np.save(folder / "labels.npy", rng.integers(0, CLASSES, size=count, dtype=np.int64))
    return folder


def open_prepared(folder: Path, val_fraction: float):
    """The loop's prepared data (train.data.prepared.PreparedData) over memory-mapped arrays: the tail is validation."""
    from train.data.prepared import ArraySet, PreparedData

    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy")
    cut = len(labels) - max(1, round(len(labels) * val_fraction))
    groups = np.arange(len(labels), dtype=np.int64)
    return PreparedData(train=ArraySet(images[:cut], labels[:cut], groups[:cut]),
                        val=ArraySet(images[cut:], labels[cut:], groups[cut:]),
                        class_names=[f"class{i:02d}" for i in range(CLASSES)],
                        fingerprint=f"bench-{folder.name}", format="synthetic", cache_key=folder.name)


# -- the loop ----------------------------------------------------------------------------------------
def loop_config(model: str, size: int, args: argparse.Namespace, *, epochs: int, augment: bool = True,
                threads: int = 4) -> dict[str, Any]:
    config: dict[str, Any] = {
        "data": {"format": "synthetic", "root": str(args.scratch / "unused"), "image_size": size,
                 "cache_dir": str(args.scratch / "cache")},
        "model": {"name": model}, "optim": {"batch_size": args.batch}, "epochs": epochs, "amp": True,
        "workers": {"threads_per_worker": threads}}
    if not augment:
        config["augment"] = {"geometric": 0.0, "photometric": 0.0, "erasing": 0.0, "hflip": False}
    if args.compile:
        config["compile"] = True  # the trial setting train.config.TrialConfig.compile
    return config


def run_loop(config: dict[str, Any], data, on_report=None) -> list[dict[str, Any]]:
    """Train ``config`` on ``data`` with the project's loop; per epoch: its metrics + report wall clock."""
    from train.config import parse
    from train.loop import Trainer
    from train.session import LocalSession

    reports: list[dict[str, Any]] = []

    def record(metrics: dict[str, Any]) -> None:
        reports.append({**metrics, "reported_at": time.perf_counter()})
        if on_report is not None:
            on_report(metrics)

    with contextlib.redirect_stdout(io.StringIO()):  # the loop's per-epoch lines
        trainer = Trainer(parse(config), LocalSession(on_report=record), data)
        trainer.fit()
    del trainer  # its GPU-resident copy of the data goes before the next run uploads another
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return reports


# -- the limit: a bare timm step ----------------------------------------------------------------------
def bare_rate(model_name: str, size: int, args: argparse.Namespace) -> float:
    """images/s of forward + backward + AdamW step on a batch already on the GPU (no data, no augmentation)."""
    import timm
    import torch.nn.functional as F

    from train.config import OptimConfig

    optim = OptimConfig(batch_size=args.batch)
    benchmark_before = torch.backends.cudnn.benchmark  # a global flag: leave the loop runs as the loop sets it
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=CLASSES).to(device).to(memory_format=torch.channels_last)
    if args.compile:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    dtype = amp_dtype(device, enabled=True)  # the loop's own choice (train.device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    images = torch.randn(args.batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (args.batch,), device=device)
    model.train()

    def step() -> None:
        with torch.autocast("cuda", dtype=dtype):
            loss = F.cross_entropy(model(images).float(), labels, label_smoothing=optim.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()

    for _ in range(args.warmup_steps):  # cudnn autotuning, allocator growth, compilation
        step()
    torch.cuda.synchronize()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.bare_seconds:
        for _ in range(10):
            step()
        steps += 10
        torch.cuda.synchronize()
    rate = steps * args.batch / (time.perf_counter() - start)
    torch.backends.cudnn.benchmark = benchmark_before
    model = optimizer = None  # step() reads them from cells: clear those (a del here is a name pyflakes then misses)
    torch.cuda.empty_cache()
    return rate


def loop_vs_bare(args: argparse.Namespace, arrays: dict[int, Path]) -> list[dict[str, Any]]:
    rows = []
    for model in MODELS:
        for size in SIZES:
            bare = bare_rate(model, size, args)
            row: dict[str, Any] = {"model": model, "image_size": size, "bare_img_s": _r(bare, 1)}
            for key, augment in (("loop", True), ("loop_no_aug", False)):
                data = open_prepared(arrays[size], val_fraction=0.02)
                reports = run_loop(loop_config(model, size, args, epochs=args.epochs, augment=augment), data)
                rates = [r["images_per_s"] for r in reports]
                row[f"{key}_epochs_img_s"] = [_r(x, 1) for x in rates]
                row[f"{key}_img_s"] = _r(_median(rates[1:]), 1)  # epoch 1 is warm-up
                row[f"{key}_ratio"] = _r(row[f"{key}_img_s"] / bare, 3)
                torch.cuda.empty_cache()
            row["train_images"] = len(open_prepared(arrays[size], val_fraction=0.02).train)
            rows.append(row)
            print(f"  {model} {size} px: bare {bare:.0f} img/s, loop {row['loop_img_s']:.0f} "
                  f"({row['loop_ratio']:.3f}), without augmentation {row['loop_no_aug_img_s']:.0f}", flush=True)
    return rows


def gtsrb_epoch(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    data = open_prepared(folder, GTSRB_VAL_FRACTION)
    reports = run_loop(loop_config("mobilenetv3_small_100", 48, args, epochs=args.epochs + 1), data)
    whole = [b["reported_at"] - a["reported_at"] for a, b in zip(reports, reports[1:])]  # epochs 2..
    return {"train_images": len(data.train), "val_images": len(data.val),
            "train_pass_s": [_r(r["epoch_s"], 3) for r in reports], "epoch_s": [_r(x, 3) for x in whole],
            "train_pass_median_s": _r(_median([r["epoch_s"] for r in reports[1:]]), 3),
            "epoch_median_s": _r(_median(whole), 3)}


# -- concurrent trials ---------------------------------------------------------------------------------
def trial_process(index: int, config: dict[str, Any], folder: str, barrier, results) -> None:
    """One trial on the shared GPU: warm-up epoch, barrier, then the measured epochs (spawned process)."""
    try:
        stamps: list[float] = []  # wall clock at the barrier's release, then after each measured epoch's report

        def on_report(metrics: dict[str, Any]) -> None:
            if not stamps:  # the warm-up epoch is done: start the measured epochs together
                barrier.wait(timeout=900)
            stamps.append(time.time())

        data = open_prepared(Path(folder), GTSRB_VAL_FRACTION)
        reports = run_loop(config, data, on_report)
        results.put({"index": index, "released": stamps[0], "ended": stamps[-1], "train_images": len(data.train),
                     "measured_epochs": len(reports) - 1,
                     "img_s": [_r(r["images_per_s"], 1) for r in reports[1:]]})
    except BaseException:
        barrier.abort()  # the others stop waiting at once
        results.put({"index": index, "error": traceback.format_exc()[-2000:]})


def _collect(procs: list, results, timeout_s: float = 1200) -> list[dict[str, Any]]:
    """Every process's result; a process that died without one (killed, crashed) ends the wait early."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < len(procs) and time.monotonic() < deadline:
        try:
            got.append(results.get(timeout=5))
        except queue.Empty:
            if not any(proc.is_alive() for proc in procs):
                break
    for proc in procs:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    missing = len(procs) - len(got)
    errors = [g["error"] for g in got if "error" in g]
    if errors or missing:
        raise RuntimeError(f"{missing} trial process(es) gave no result, {len(errors)} failed"
                           + (f":\n{errors[0]}" if errors else f" (exit codes {[p.exitcode for p in procs]})"))
    return got


def concurrent_trials(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    context = mp.get_context("spawn")  # this process holds a CUDA context: children must not fork it
    cores = len(os.sched_getaffinity(0))
    rows = []
    for k in args.trials:
        threads = max(1, min(4, cores // k))
        config = loop_config("mobilenetv3_small_100", 48, args, epochs=1 + args.epochs, threads=threads)
        barrier, results = context.Barrier(k), context.Queue()
        procs = [context.Process(target=trial_process, args=(i, config, str(folder), barrier, results))
                 for i in range(k)]
        for proc in procs:
            proc.start()
        got = _collect(procs, results)
        wall = max(g["ended"] for g in got) - min(g["released"] for g in got)
        images = sum(g["train_images"] * g["measured_epochs"] for g in got)
        rows.append({"trials": k, "threads_per_trial": threads, "total_img_s": _r(images / wall, 1),
                     "sum_of_loop_img_s": _r(sum(_median(g["img_s"]) for g in got), 1),
                     "per_trial_img_s": [_r(_median(g["img_s"]), 1) for g in sorted(got, key=lambda g: g["index"])],
                     "wall_s": _r(wall, 2)})
        print(f"  {k} trial(s): {rows[-1]['total_img_s']:.0f} img/s in all", flush=True)
    one = next((row["total_img_s"] for row in rows if row["trials"] == 1), None)
    for row in rows:
        row["speedup"] = _r(row["total_img_s"] / one, 2) if one else None
    return rows


# -- report --------------------------------------------------------------------------------------------
def gpu_info() -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        driver = None
    return {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "driver": driver, "cuda": torch.version.cuda,
            "amp_dtype": str(amp_dtype(torch.device("cuda"), enabled=True)).replace("torch.", "")}


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def report(out: dict[str, Any]) -> None:
    print(machine_line(out))
    gpu = out["gpu"]
    print(f"GPU: {gpu['name']} (compute capability {gpu['capability']}, {gpu['memory_gib']} GiB), driver "
          f"{gpu['driver']}, CUDA {gpu['cuda']}; AMP {gpu['amp_dtype']}, channels_last, batch {out['batch']}"
          f"{', torch.compile' if out['compile'] else ''}")
    if "loop" in out:
        print(f"\n1. Loop / bare training step (median epoch after the first; {out['epochs']} epochs per loop run)")
        print(f"  {'model':<24}{'px':>5}{'train imgs':>12}{'bare img/s':>12}{'loop img/s':>12}{'ratio':>8}"
              f"{'no-aug img/s':>14}{'ratio':>8}")
        for row in out["loop"]:
            print(f"  {row['model']:<24}{row['image_size']:>5}{row['train_images']:>12,}{row['bare_img_s']:>12.0f}"
                  f"{row['loop_img_s']:>12.0f}{row['loop_ratio']:>8.3f}{row['loop_no_aug_img_s']:>14.0f}"
                  f"{row['loop_no_aug_ratio']:>8.3f}   -> {verdict(row['loop_ratio'] >= TARGET_RATIO)} "
                  f"target >= {TARGET_RATIO}")
    if "gtsrb" in out:
        g = out["gtsrb"]
        h100 = any(name in gpu["name"] for name in ("H100", "H200"))
        print(f"\n2. GTSRB-sized epoch: mobilenetv3_small_100, 48 px, {g['train_images']:,} train + "
              f"{g['val_images']:,} val images: training pass {g['train_pass_median_s']:.2f} s, whole epoch "
              f"(train + validation + checkpoint) {g['epoch_median_s']:.2f} s -> "
              f"{verdict(g['epoch_median_s'] <= TARGET_EPOCH_S)} target <= {TARGET_EPOCH_S:.0f} s"
              f"{'' if h100 else ' (the target is for an H100/H200; this GPU is ' + gpu['name'] + ')'}")
    if "concurrent" in out:
        print("\n3. Concurrent trial processes on the one GPU (mobilenetv3_small_100, 48 px, GTSRB-sized set)")
        print(f"  {'trials':>6}{'threads each':>14}{'total img/s':>13}{'speed-up':>10}{'sum of loop img/s':>19}"
              f"   per trial")
        for row in out["concurrent"]:
            print(f"  {row['trials']:>6}{row['threads_per_trial']:>14}{row['total_img_s']:>13.0f}"
                  f"{row['speedup'] or float('nan'):>10.2f}{row['sum_of_loop_img_s']:>19.0f}"
                  f"   {row['per_trial_img_s']}")
        four = next((row for row in out["concurrent"] if row["trials"] == 4), None)
        if four and four["speedup"] is not None:
            print(f"  4 trials: {four['speedup']:.2f}x one trial -> {verdict(four['speedup'] >= TARGET_SPEEDUP)} "
                  f"target >= {TARGET_SPEEDUP}x")
    print(json.dumps(out, default=str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128, help="batch size (search_spaces/gtsrb.yaml: 128)")
    parser.add_argument("--epochs", type=int, default=3, help="loop epochs per run; the first is warm-up")
    parser.add_argument("--bare-seconds", type=float, default=3.0, help="timed seconds of the bare step")
    parser.add_argument("--warmup-steps", type=int, default=30, help="bare steps before timing")
    parser.add_argument("--trials", type=int, nargs="+", default=[1, 2, 4, 8], help="concurrent trial counts")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides (trial setting compile)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["loop", "gtsrb", "concurrent"])
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()

    out: dict[str, Any] = {"benchmark": "gpu_throughput", "machine": machine(), "batch": args.batch,
                           "epochs": args.epochs, "compile": args.compile}
    if not torch.cuda.is_available():
        out["skipped"] = "torch sees no CUDA GPU"
        out["load_average"] = {"start": load_average()}
        print(f"gpu_throughput: torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no CUDA GPU on this "
              f"machine: nothing to measure. Run it on a machine with an NVIDIA GPU (see bench/README.md).")
        print(json.dumps(out, default=str))
        return 0
    out["gpu"] = gpu_info()
    load = {"start": load_average()}
    args.scratch = Path(tempfile.mkdtemp(prefix="signsearch-bench-gpu-"))
    try:
        gtsrb = write_arrays(args.scratch / "gtsrb48", GTSRB_IMAGES, 48)
        if "loop" not in args.skip:
            print("1. loop vs bare step", flush=True)
            out["loop"] = loop_vs_bare(args, {48: gtsrb, 224: write_arrays(args.scratch / "set224", IMAGES_224, 224)})
            load["after_loop"] = load_average()
        if "gtsrb" not in args.skip:
            out["gtsrb"] = gtsrb_epoch(args, gtsrb)
            load["after_gtsrb"] = load_average()
        if "concurrent" not in args.skip:
            print("3. concurrent trials", flush=True)
            out["concurrent"] = concurrent_trials(args, gtsrb)
            load["after_concurrent"] = load_average()
    finally:
        drop_scratch(args.scratch, args.keep)
    load["end"] = load_average()
    out["load_average"] = load
    report(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
