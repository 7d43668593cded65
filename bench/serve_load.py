"""Benchmark: the Ray Serve deployment of an exported model under load, with and without batching (CPU).

Measured on one machine, printed as a table, a verdict per target and, last, one JSON line:

- **In process**: the same model.onnx in onnxruntime in this process (all cores), batches of 32 already
  normalised images: the model's own throughput (images/s). Also decode + preprocess + forward of the
  encoded images, for reference.
- **Served**: ``results/serve.py`` in a subprocess (its own local Ray, a free loopback port), once with
  ``--max-batch-size 32`` (batched) and once with ``--max-batch-size 1`` (unbatched). Closed-loop clients
  (1, 8, 32 at once; aiohttp, keep-alive) each POST real encoded test images one after another, for
  ``--seconds`` per level or ``--max-requests`` in all, whichever comes first: throughput (requests/s) and
  p50/p99 latency; the replica's own counters (``GET /stats``) give the mean batch size.

Targets: at 32 clients, batched >= 2x unbatched throughput, and batched >= 0.5x the in-process onnxruntime
throughput; p99 latency at 8 clients is reported. The batched server's ``GET /healthz`` rate at 32 clients is
measured too: Serve's own per-request cost (proxy, actor call, ASGI) with no model work, the ceiling for both.

    python bench/serve_load.py [--model mobilenetv3_large_100] [--image-size 48] [--classes 43]
                               [--model-dir DIR] [--seconds 10] [--clients 1 8 32] [--replicas 1] [--keep]

Without ``--model-dir`` the model is made the real way: a synthetic sign set with ``--classes`` classes, one
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
    """img/s of onnxruntime in this process (all cores) on batches of 32: forward only, and decode + forward."""
    import numpy as np

    from results.model_dir import load_model_dir
    from results.runtime import OnnxClassifier

    spec = load_model_dir(model_dir)
    model, pre = OnnxClassifier(spec, threads=0), spec.preprocessing
    batches = [[pool[(start + i) % len(pool)] for i in range(IN_PROCESS_BATCH)] for start in range(0, len(pool), 8)]
    normalised = [pre.normalize(np.stack([pre.decode(b) for b in batch])) for batch in batches]
    out = {}
    for name, step in (("forward", lambda i: model.logits(normalised[i % len(normalised)])),
                       ("decode_and_forward", lambda i: model.logits(pre.normalize(
                           np.stack([pre.decode(b) for b in batches[i % len(batches)]]))))):
        step(0)  # warm-up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 2:
            step(done)
            done += 1
        out[f"{name}_img_s"] = round(done * IN_PROCESS_BATCH / (time.perf_counter() - started), 1)
    return out


def start_server(model_dir: Path, log: Path, port: int, batch: int, args: argparse.Namespace) -> subprocess.Popen:
    command = [sys.executable, str(SERVE), str(model_dir), "--address", "local", "--port", str(port),
               "--max-batch-size", str(batch), "--batch-wait-ms", str(args.batch_wait_ms),
               "--replicas", str(args.replicas), "--cpus-per-replica", str(args.cpus_per_replica),
               "--threads-per-replica", str(args.threads_per_replica),
               *(["--access-log"] if args.access_log else [])]
    proc = subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + START_TIMEOUT_S
    while url not in log.read_text().splitlines():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"serve.py did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    """Ctrl-C by its pid (serve.py shuts Serve and its Ray down); SIGKILL its process group if that hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
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


def served(model_dir: Path, pool: list[bytes], batch: int, root: Path, args: argparse.Namespace) -> list[dict]:
    port = free_port()
    proc = start_server(model_dir, root / f"serve-batch{batch}.log", port, batch, args)
    url, rows = f"http://127.0.0.1:{port}", []
    try:
        asyncio.run(load(url, pool, 4, 2.0, 50))  # warm-up: connections, first batches
        for clients in args.clients:
            before = stats(url)
            row = asyncio.run(load(url, pool, clients, args.seconds, args.max_requests))
            after = stats(url)
            passes = after["forward_passes"] - before["forward_passes"]
            row["mean_batch"] = round((after["images"] - before["images"]) / passes, 2) if passes else None
            row["load_average"] = load_average()
            rows.append(row)
            print(f"  batch {batch:>2}, {clients:>2} clients: {row['req_s']:>8.1f} req/s  p50 {row['p50_ms']} ms  "
                  f"p99 {row['p99_ms']} ms  mean batch {row['mean_batch']}  errors {row['errors']}", flush=True)
        if batch > 1:  # the same server's ceiling without any model work: GET /healthz at the most clients
            row = asyncio.run(load(url, pool, max(args.clients), args.seconds, args.max_requests, "/healthz"))
            row.update(route="/healthz", mean_batch=None, load_average=load_average())
            rows.append(row)
            print(f"  GET /healthz, {row['clients']:>2} clients: {row['req_s']:>8.1f} req/s  p50 {row['p50_ms']} ms  "
                  f"p99 {row['p99_ms']} ms", flush=True)
    finally:
        stop_server(proc)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="an exported model to serve (default: make one, see above)")
    parser.add_argument("--model", default="mobilenetv3_large_100", help="timm model (or small_cnn) to make")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--classes", type=int, default=43)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--max-requests", type=int, default=5000, help="per concurrency level")
    parser.add_argument("--batch", type=int, default=32, help="--max-batch-size of the batched server")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--cpus-per-replica", type=float, default=1.0)
    parser.add_argument("--threads-per-replica", type=int, default=os.cpu_count() or 1,
                        help="onnxruntime threads of the replica (default: all cores, like the in-process run)")
    parser.add_argument("--access-log", action="store_true", help="serve with Serve's access log on")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (model, logs)")
    args = parser.parse_args()
    os.environ.pop("RAY_ADDRESS", None)
    root = Path(tempfile.mkdtemp(prefix="serve-load-"))
    os.environ.setdefault("SIGNSEARCH_CACHE", str(root / "cache"))
    out: dict[str, Any] = {"benchmark": "serve_load", "machine": machine(), "load_average": load_average(),
                           "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    try:
        model_dir = args.model_dir or make_model(root, args)
        meta = json.loads((model_dir / "model.json").read_text())
        out["model"] = {"name": meta["model"]["name"], "input": [meta["input"]["width"], meta["input"]["height"]],
                        "classes": len(meta["classes"]), "parameters": meta["model"]["parameters"]}
        pool = image_pool(model_dir)
        print(machine_line(out))
        print(f"\nmodel {out['model']['name']} at {out['model']['input'][0]} px, {out['model']['classes']} classes; "
              f"{len(pool)} test images ({sum(map(len, pool)) // len(pool)} bytes on average, PNG)", flush=True)
        out["in_process"] = in_process(model_dir, pool, args.seconds)
        print(f"  onnxruntime in process, batches of {IN_PROCESS_BATCH}: {out['in_process']['forward_img_s']} img/s "
              f"(forward only), {out['in_process']['decode_and_forward_img_s']} img/s with decode", flush=True)
        out["batched"] = served(model_dir, pool, args.batch, root, args)
        out["unbatched"] = served(model_dir, pool, 1, root, args)
    finally:
        drop_scratch(root, args.keep)
    report(out, args)


def report(out: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n{'server':<12}{'clients':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'mean batch':>12}{'errors':>8}")
    for mode in ("batched", "unbatched"):
        for row in out[mode]:
            name = f"{mode} {row['route']}" if "route" in row else mode
            print(f"{name:<12}{row['clients']:>8}{row['req_s']:>10.1f}{row['p50_ms'] or 0:>10.2f}"
                  f"{row['p99_ms'] or 0:>10.2f}{row['mean_batch'] or 0:>12.2f}{row['errors']:>8}")
    at = {mode: {row["clients"]: row for row in out[mode] if "route" not in row} for mode in ("batched", "unbatched")}
    top = max(args.clients)
    forward = out["in_process"]["forward_img_s"]
    verdicts = {}
    if top in at["batched"] and top in at["unbatched"]:
        ratio = at["batched"][top]["req_s"] / max(at["unbatched"][top]["req_s"], 1e-9)
        verdicts["batching_vs_unbatched"] = round(ratio, 2)
        print(f"\nbatched / unbatched at {top} clients: {ratio:.2f}x -> {'meets' if ratio >= 2 else 'MISSES'} "
              f"target >= 2x")
        share = at["batched"][top]["req_s"] / forward
        verdicts["batched_vs_in_process"] = round(share, 3)
        ceiling = [row["req_s"] for row in out["batched"] if row.get("route") == "/healthz"]
        if ceiling:
            verdicts["healthz_req_s"] = ceiling[0]
            print(f"  (the same server answers GET /healthz, no model work, at {ceiling[0]:.1f} req/s with {top} "
                  f"clients: the most any model could get through it here)")
        print(f"batched at {top} clients / onnxruntime in process: {at['batched'][top]['req_s']:.1f} / {forward:.1f} "
              f"= {share:.3f} -> {'meets' if share >= 0.5 else 'MISSES'} target >= 0.5")
    for mode in ("batched", "unbatched"):
        if 8 in at[mode]:
            verdicts[f"p99_ms_8_clients_{mode}"] = at[mode][8]["p99_ms"]
            print(f"p99 at 8 clients, {mode}: {at[mode][8]['p99_ms']} ms (reported)")
    out["verdicts"] = verdicts
    out["load_average_end"] = load_average()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
