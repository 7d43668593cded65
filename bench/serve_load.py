"""Benchmark: the Ray Serve deployment of an exported model against the same application without Ray (CPU).

Measured on one machine, with the clients on it too; printed as tables, a verdict per target and, last, one
JSON line. At the model's shipped input size (``--image-size``, default 48 px) and at ``--large-size``
(224 px, where a forward pass rather than the request path dominates):

- **In process**: the same model.onnx in onnxruntime in this process (all cores), batches of 1 and of 32
  already normalised images: the model's own throughput (images/s), and what batching gains it.
- **plain**: the yardstick: ``python -m results.serving.plain``, the same routes and steps (decode,
  preprocess, onnxruntime, the same JSON; results/serving/api.py and model_service.py) in one uvicorn process
  without Ray, one image per onnxruntime call, all cores.
- **serve**: ``results/serve.py`` as shipped (its own local Ray, HAProxy ingress, one replica with every core,
  ``--max-batch-size 32``); **serve unbatched**: the same with ``--max-batch-size 1``; **serve proxy**: batched
  behind Serve's Python proxy (``--ingress proxy``), the ingress before this benchmark's issue.

Closed-loop clients (1, 8, 32 at once; aiohttp, keep-alive) each POST real encoded test images one after another
for ``--seconds`` per level: requests/s, p50/p99 latency; the server's own counters (``GET /stats``) give the
mean batch and the seconds it spent decoding and in onnxruntime per image. ``GET /healthz`` at 32 clients is each
server's request path with no model work. The plain server runs before, between and after the Serve ones (the
machine may be shared): every served figure is printed as a ratio to the mean of the plain runs and to
in-process onnxruntime.

Targets: at the shipped size and 32 clients, serve >= 0.7x plain; at the large size and 32 clients, serve >= 2x
serve unbatched; p99 at 8 clients reported. Where time goes: ms of the 2-core machine per request at 32 clients
(1000 / req/s: clients, ingress, replica and model together) against the same server's GET /healthz (no model
work) and the replica's decode and onnxruntime ms per image.

    python bench/serve_load.py [--model mobilenetv3_large_100] [--image-size 48] [--large-size 224]
                               [--classes 43] [--model-dir DIR] [--seconds 8] [--clients 1 8 32] [--keep]

Without ``--model-dir`` each model is made the real way: a synthetic sign set with ``--classes`` classes, one
epoch of the training loop, ``results/export.py`` (weights do not change the cost of a forward pass). The
default is the largest model of ``search_spaces/gtsrb.yaml`` at its input size and class count. Loopback
only; every process started here is stopped by its pid; files go to a temp folder deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/ is not a package; train_overhead also puts the repo root on sys.path

from train_overhead import drop_scratch, load_average, machine, machine_line  # noqa: E402

REPO = BENCH.parent
SERVE = REPO / "results" / "serve.py"
EXPORT = REPO / "results" / "export.py"
IN_PROCESS_BATCH = 32
IN_PROCESS_ROUNDS = 3
START_TIMEOUT_S = 300


def free_port() -> int:
    """A free port in 20000-32767 (outside Ray's worker ports and the ephemeral range, as tests/conftest.py)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32767")


def make_model(root: Path, args: argparse.Namespace) -> Path:
    """Train one epoch on a synthetic set and export it: MODEL_DIR."""
    from train.config import parse
    from train.loop import run_local

    data = {"format": "synthetic", "root": str(root / "signs"), "image_size": args.image_size,
            "cache_dir": str(root / "cache"), "val_fraction": 0.25,
            "synthetic": {"num_classes": args.classes, "tracks_per_class": 2, "frames_per_track": 4,
                          "test_per_class": 2, "frame_size": max(48, args.image_size), "seed": 0}}
    cfg = parse({"data": data, "model": {"name": args.model}, "epochs": 1, "optim": {"batch_size": 32}})
    run_local(cfg, checkpoint_root=root / "trial")
    out = root / "model"
    subprocess.run([sys.executable, str(EXPORT), str(root / "trial" / "checkpoint_0001"), "--out", str(out)],
                   check=True, cwd=REPO)
    return out


def image_pool(model_dir: Path, count: int = 64) -> list[bytes]:
    """PNG bytes of the model's data set's test images, cropped to their sign boxes when it was trained so."""
    from PIL import Image

    from train.data import read_records

    meta = json.loads((model_dir / "model.json").read_text())
    data = meta["source"]["data"]
    records = read_records(data["format"], Path(data["root"]), "test")
    pool = []
    for i in range(min(count, len(records))):
        with Image.open(records.paths[i]) as image:
            image = image.convert("RGB")
            if meta["roi"]["trained_on_sign_crops"] and records.rois is not None:
                x1, y1, x2, y2 = records.rois[i].tolist()
                image = image.crop((x1, y1, x2 + 1, y2 + 1))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            pool.append(buffer.getvalue())
    return pool


def in_process(model_dir: Path, pool: list[bytes], seconds: float) -> dict[str, Any]:
    """img/s of onnxruntime in this process (all cores): forward only at batch 1 and 32, and decode + forward
    at 32; each measured in 3 alternated rounds, the median kept."""
    import numpy as np

    from artifact.model_dir import load_model_dir
    from artifact.runtime import OnnxClassifier

    spec = load_model_dir(model_dir)
    model, pre = OnnxClassifier(spec, threads=0), spec.preprocessing
    batches = [[pool[(start + i) % len(pool)] for i in range(IN_PROCESS_BATCH)] for start in range(0, len(pool), 8)]
    normalised = [pre.normalize(np.stack([pre.decode(b) for b in batch])) for batch in batches]
    steps = {"forward_b1": (1, lambda i: model.logits(normalised[i % len(normalised)][:1])),
             "forward": (IN_PROCESS_BATCH, lambda i: model.logits(normalised[i % len(normalised)])),
             "decode_and_forward": (IN_PROCESS_BATCH, lambda i: model.logits(pre.normalize(
                 np.stack([pre.decode(b) for b in batches[i % len(batches)]]))))}
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(IN_PROCESS_ROUNDS):  # alternated, median of the rounds: the machine may be shared
        for name, (size, step) in steps.items():
            step(0)  # warm-up
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds / IN_PROCESS_ROUNDS:
                step(done)
                done += 1
            rates[name].append(done * size / (time.perf_counter() - started))
    return {f"{name}_img_s": round(statistics.median(values), 1) for name, values in rates.items()}


SERVERS = {  # name -> (plain server?, flags)
    "plain": (True, []),
    "serve": (False, ["--max-batch-size", "32"]),
    "serve unbatched": (False, ["--max-batch-size", "1"]),
    "serve proxy": (False, ["--max-batch-size", "32", "--ingress", "proxy"]),
}
ORDER = ("plain", "serve", "plain", "serve unbatched", "serve proxy", "plain")
"""The plain yardstick before, between and after the Serve runs: its mean is what they are compared with."""


def start_server(name: str, model_dir: Path, log: Path, port: int, args: argparse.Namespace) -> subprocess.Popen:
    plain, flags = SERVERS[name]
    cores = str(os.cpu_count() or 1)
    command = ([sys.executable, "-m", "results.serving.plain", str(model_dir), "--port", str(port)] if plain else
               [sys.executable, str(SERVE), str(model_dir), "--address", "local", "--num-cpus", cores,
                "--port", str(port), "--batch-wait-ms", str(args.batch_wait_ms), *flags])
    proc = subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + START_TIMEOUT_S
    while url not in log.read_text().splitlines():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"{name} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM by its pid (both servers stop cleanly on it); SIGKILL its process group if that hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


async def load(url: str, pool: list[bytes], clients: int, seconds: float, max_requests: int,
               route: str = "/predict") -> dict[str, Any]:
    """Closed loop: ``clients`` clients each send one request after another until time or requests run out.
    ``route`` /predict POSTs the images; /healthz GETs (Serve's own per-request cost, no model work)."""
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    sent = 0

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        nonlocal sent
        i = offset
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            started = time.perf_counter()
            if route == "/predict":
                call = session.post(f"{url}/predict", data=pool[i % len(pool)], headers={"Content-Type": "image/png"})
            else:
                call = session.get(f"{url}{route}")
            async with call as response:
                body = await response.read()
            if response.status != 200:
                errors.append(f"{response.status} {body[:200]!r}")
            else:
                latencies.append(time.perf_counter() - started)
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session, k) for k in range(clients)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> Optional[float]:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None

    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "first_error": errors[:1],
            "wall_s": round(wall, 2), "req_s": round(len(latencies) / wall, 1), "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "mean_ms": round(1000 * statistics.fmean(ordered), 2) if ordered else None}


def stats(url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/stats", timeout=30) as response:
        return json.loads(response.read())


def served(name: str, model_dir: Path, pool: list[bytes], root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One server: POST /predict at each client count, then GET /healthz at the most clients."""
    port = free_port()
    proc = start_server(name, model_dir, root / f"{name.replace(' ', '-')}-{port}.log", port, args)
    url, rows = f"http://127.0.0.1:{port}", {}
    try:
        asyncio.run(load(url, pool, 4, 2.0, 200))  # warm-up: connections, first batches
        for clients in args.clients:
            before = stats(url)
            row = asyncio.run(load(url, pool, clients, args.seconds, args.max_requests))
            after = stats(url)
            images = after["images"] - before["images"]
            passes = after["forward_passes"] - before["forward_passes"]
            row["mean_batch"] = round(images / passes, 2) if passes else None
            for what in ("decode", "forward"):  # the replica's own seconds per image, in ms
                spent = after[f"{what}_s"] - before[f"{what}_s"]
                row[f"{what}_ms"] = round(1000 * spent / images, 3) if images else None
            row["load_average"] = load_average()
            rows[clients] = row
            print(f"  {name:<16}{clients:>3} clients: {row['req_s']:>8.1f} req/s  p50 {row['p50_ms']} ms  "
                  f"p99 {row['p99_ms']} ms  mean batch {row['mean_batch']}  errors {row['errors']}", flush=True)
        health = asyncio.run(load(url, pool, max(args.clients), args.seconds / 2, args.max_requests, "/healthz"))
        print(f"  {name:<16}GET /healthz, {health['clients']} clients: {health['req_s']:.1f} req/s", flush=True)
    finally:
        stop_server(proc)
    return {"server": name, "predict": rows, "healthz": health}


def measure_size(size: int, model_dir: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    meta = json.loads((model_dir / "model.json").read_text())
    pool = image_pool(model_dir)
    out: dict[str, Any] = {"model": {"name": meta["model"]["name"], "input": [meta["input"]["width"],
                                     meta["input"]["height"]], "classes": len(meta["classes"]),
                                     "parameters": meta["model"]["parameters"]},
                           "image_bytes": sum(map(len, pool)) // len(pool)}
    print(f"\n{out['model']['name']} at {size} px, {out['model']['classes']} classes; {len(pool)} test images "
          f"({out['image_bytes']} bytes on average, PNG); load average {load_average()}", flush=True)
    out["in_process"] = in_process(model_dir, pool, args.seconds)
    ip = out["in_process"]
    print(f"  onnxruntime in process: {ip['forward_b1_img_s']} img/s at batch 1, {ip['forward_img_s']} at batch "
          f"{IN_PROCESS_BATCH}, {ip['decode_and_forward_img_s']} with PNG decode", flush=True)
    out["runs"] = [served(name, model_dir, pool, root, args) for name in ORDER if name in args.servers]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="an exported model at its shipped size (default: make one)")
    parser.add_argument("--model", default="mobilenetv3_large_100", help="timm model (or small_cnn) to make")
    parser.add_argument("--image-size", type=int, default=48, help="the shipped input size")
    parser.add_argument("--large-size", type=int, default=224, help="a second model at this size (0: none)")
    parser.add_argument("--classes", type=int, default=43)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency level")
    parser.add_argument("--max-requests", type=int, default=100_000, help="per concurrency level")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--servers", nargs="+", default=list(SERVERS), choices=list(SERVERS))
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (models, logs)")
    args = parser.parse_args()
    os.environ.pop("RAY_ADDRESS", None)
    root = Path(tempfile.mkdtemp(prefix="serve-load-"))
    os.environ.setdefault("SIGNSEARCH_CACHE", str(root / "cache"))
    out: dict[str, Any] = {"benchmark": "serve_load", "machine": machine(), "load_average": load_average(),
                           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                           "sizes": {}}
    print(machine_line(out))
    try:
        sizes = [(args.image_size, args.model_dir)] + ([(args.large_size, None)] if args.large_size else [])
        for size, model_dir in sizes:
            if model_dir is None:
                (root / str(size)).mkdir()
                model_dir = make_model(root / str(size), argparse.Namespace(**{**vars(args), "image_size": size}))
            out["sizes"][str(size)] = measure_size(size, model_dir, root, args)
    finally:
        drop_scratch(root, args.keep)
    report(out, args)


def summary(size: dict[str, Any], top: int) -> dict[str, dict[str, Any]]:
    """Per server: its runs' figures at each client count (the mean over its runs), healthz req/s."""
    by: dict[str, dict[str, Any]] = {}
    for run in size["runs"]:
        entry = by.setdefault(run["server"], {"runs": 0, "predict": {}, "healthz": 0.0})
        entry["runs"] += 1
        entry["healthz"] += run["healthz"]["req_s"]
        for clients, row in run["predict"].items():
            acc = entry["predict"].setdefault(clients, {"req_s": [], "p50_ms": [], "p99_ms": [], "mean_batch": [],
                                                        "decode_ms": [], "forward_ms": []})
            for key in acc:
                acc[key].append(row[key])
    for entry in by.values():
        entry["healthz"] = round(entry["healthz"] / entry["runs"], 1)
        for clients, acc in entry["predict"].items():
            entry["predict"][clients] = {key: (round(statistics.fmean(v), 2) if all(x is not None for x in v) else None)
                                         for key, v in acc.items()} | {"req_s_runs": acc["req_s"]}
    return by


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    top = max(args.clients)
    verdicts: dict[str, Any] = {}
    shipped, large = str(args.image_size), str(args.large_size)
    for size_name, size in out["sizes"].items():
        by = summary(size, top)
        size["summary"] = by
        forward = size["in_process"]["forward_img_s"]
        plain = by.get("plain", {}).get("predict", {}).get(top, {}).get("req_s")
        print(f"\n{size['model']['name']} at {size_name} px -- onnxruntime in process {forward} img/s (batch "
              f"{IN_PROCESS_BATCH}), {size['in_process']['forward_b1_img_s']} (batch 1)")
        print(f"{'server':<17}{'clients':>8}{'req/s':>9}{'x plain':>9}{'x ort':>7}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'batch':>7}{'decode ms':>11}{'ort ms':>8}")
        for name, entry in by.items():
            for clients, row in sorted(entry["predict"].items()):
                vs_plain = f"{row['req_s'] / plain:.2f}" if plain else "-"
                print(f"{name:<17}{clients:>8}{row['req_s']:>9.1f}{vs_plain:>9}{row['req_s'] / forward:>7.3f}"
                      f"{row['p50_ms'] or 0:>9.1f}{row['p99_ms'] or 0:>9.1f}{row['mean_batch'] or 0:>7.1f}"
                      f"{row['decode_ms'] or 0:>11.3f}{row['forward_ms'] or 0:>8.3f}")
        print(f"\nwhere the time goes at {top} clients (ms of the whole machine per request = 1000 / req/s):")
        print(f"{'server':<17}{'per request':>12}{'GET /healthz':>14}{'decode':>9}{'onnxruntime':>13}")
        for name, entry in by.items():
            row = entry["predict"].get(top)
            if row:
                print(f"{name:<17}{1000 / row['req_s']:>12.2f}{1000 / entry['healthz']:>14.2f}"
                      f"{row['decode_ms'] or 0:>9.2f}{row['forward_ms'] or 0:>13.2f}")
        if "plain" in by:
            runs = by["plain"]["predict"][top]["req_s_runs"]
            print(f"plain at {top} clients, each run: {', '.join(f'{r:.1f}' for r in runs)} req/s")
        for mode in by:
            if 8 in by[mode]["predict"]:
                verdicts[f"p99_ms_8_clients_{size_name}px_{mode.replace(' ', '_')}"] = by[mode]["predict"][8]["p99_ms"]
        if size_name == shipped and plain and "serve" in by:
            ratio = by["serve"]["predict"][top]["req_s"] / plain
            verdicts["serve_vs_plain_shipped"] = round(ratio, 3)
            print(f"\nserve / plain at {size_name} px, {top} clients: {ratio:.2f}x -> "
                  f"{'meets' if ratio >= 0.7 else 'MISSES'} target >= 0.7x")
        if size_name == large and "serve" in by and "serve unbatched" in by:
            ratio = by["serve"]["predict"][top]["req_s"] / by["serve unbatched"]["predict"][top]["req_s"]
            own = size["in_process"]["forward_img_s"] / size["in_process"]["forward_b1_img_s"]
            verdicts["batched_vs_unbatched_large"] = round(ratio, 3)
            verdicts["in_process_batch_gain_large"] = round(own, 3)
            print(f"\nserve / serve unbatched at {size_name} px, {top} clients: {ratio:.2f}x -> "
                  f"{'meets' if ratio >= 2 else 'MISSES'} target >= 2x (onnxruntime alone gains {own:.2f}x from "
                  f"batch 1 to {IN_PROCESS_BATCH}: the most batching can give once the forward pass dominates)")
    for key, value in verdicts.items():
        if key.startswith("p99"):
            print(f"{key}: {value} ms (reported)")
    out["verdicts"] = verdicts
    out["load_average_end"] = load_average()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
