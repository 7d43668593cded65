"""Serve an exported model over HTTP with Ray Serve, until Ctrl-C.

    python results/serve.py models/smoke [--host 127.0.0.1] [--port 8000] [--replicas N|auto]
                            [--max-batch-size 32] [--batch-wait-ms 5] [--address ADDRESS|local]

Routes (results/serve_app.py): ``POST /predict`` (raw ``image/*`` body or multipart field ``file``;
``?top_k=``), ``GET /healthz``, ``GET /metadata``, ``GET /stats``. Binds to loopback unless --host says
otherwise. Ray is found like the search finds it (train/connect.py): ``--address``, else $RAY_ADDRESS,
else a cluster running on this machine, else a private one started here (``--address local`` always
does that). Prints the URL once the application answers; Ctrl-C (or SIGTERM) then deletes the
application, shuts Serve down if this run started it, and stops a Ray it started.
Bad options or an unusable model folder stop with one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional

READY_TIMEOUT_S = 120.0
"""How long the HTTP proxy may take to answer /healthz after the application is deployed."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="folder written by results/export.py")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default loopback; 0.0.0.0 exposes it)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--replicas", default="1", help="replica count, or 'auto' to autoscale (default 1)")
    parser.add_argument("--min-replicas", type=int, default=1, help="autoscaling floor (--replicas auto)")
    parser.add_argument("--max-replicas", type=int, default=4, help="autoscaling ceiling (--replicas auto)")
    parser.add_argument("--max-batch-size", type=int, default=32, help="images per forward pass; 1 disables batching")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="wait for a batch to fill, milliseconds")
    parser.add_argument("--max-ongoing-requests", type=int,
                        help="requests a replica holds at once (default: max(2 x --max-batch-size, 32))")
    parser.add_argument("--cpus-per-replica", type=float, default=0.5, help="logical CPUs Ray reserves per replica")
    parser.add_argument("--threads-per-replica", type=int, default=1, help="onnxruntime threads per replica")
    parser.add_argument("--max-bytes", type=int, default=5 * 2**20, help="largest encoded image accepted (bytes)")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="largest decoded image accepted (w x h)")
    parser.add_argument("--top-k", type=int, default=5, help="classes returned when a request gives no ?top_k=")
    parser.add_argument("--access-log", action="store_true", help="log every request (Serve's access log)")
    parser.add_argument("--name", default="signsearch", help="Serve application name")
    parser.add_argument("--address", help="Ray to use: a cluster address, or 'local' to always start one here")
    parser.add_argument("--num-cpus", type=int, help="CPUs of a Ray started here (default: all)")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace):
    """ServeOptions from the flags; pydantic's first complaint as one ValueError line."""
    import pydantic

    from results.serve_app import ServeOptions

    replicas = args.replicas if args.replicas == "auto" else (int(args.replicas) if args.replicas.isdigit() else -1)
    if replicas != "auto" and replicas < 1:
        raise ValueError(f"--replicas: got {args.replicas!r}, allowed: a count >= 1 or 'auto'")
    try:
        return ServeOptions(model_dir=str(args.model_dir.expanduser().absolute()), replicas=replicas,
                            min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                            max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms,
                            max_ongoing_requests=args.max_ongoing_requests,
                            cpus_per_replica=args.cpus_per_replica, threads_per_replica=args.threads_per_replica,
                            max_bytes=args.max_bytes, max_pixels=args.max_pixels, top_k=args.top_k,
                            access_log=args.access_log)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a check across fields
            raise ValueError(first["msg"].removeprefix("Value error, ")) from None
        flag = "--" + str(first["loc"][0]).replace("_", "-")
        raise ValueError(f"{flag}: got {first.get('input')!r}, {first['msg']}") from None


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}): give another --port "
                             f"(or --host)") from None


def wait_until_answering(url: str, timeout_s: float) -> Optional[dict]:
    """GET url/healthz until it answers 200 (the proxy may start after the replicas), or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            time.sleep(0.2)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from results.model_dir import ModelDirError, load_model_dir
    from results.runtime import OnnxClassifier

    try:  # cheap checks first: the model folder and the port are checked before Ray or Serve is even imported
        spec = load_model_dir(args.model_dir.expanduser().absolute())
        OnnxClassifier(spec, threads=1)  # a broken model.onnx stops here, not in every replica
        if args.address == "local":  # a private Ray, so this run starts Serve: a taken port stops it before Ray starts
            check_port_free(args.host, args.port)
        options = options_from(args)
    except (ValueError, ModelDirError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    import ray
    from ray import serve

    from results.serve_app import build
    from train.config import ConfigError
    from train.connect import RayConnection

    try:
        dashboard = RayConnection(address=args.address, num_cpus=args.num_cpus).connect()
        status = serve.status()
        serve_was_running = bool(status.proxies or status.applications)
        if not serve_was_running and args.address != "local":
            check_port_free(args.host, args.port)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        ray.shutdown()
        return 2
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    try:
        # HeadOnly: one proxy, on the node this runs on (the head, or the only node), at the URL printed below.
        serve.start(proxy_location="HeadOnly", http_options={"host": args.host, "port": args.port},
                    logging_config={"enable_access_log": options.access_log})
        serve.run(build(options), name=args.name, route_prefix="/")
        if wait_until_answering(url, READY_TIMEOUT_S) is None:
            print(f"error: the application is deployed but {url}/healthz does not answer (a Serve already running "
                  f"on this cluster keeps the host and port it started with)", file=sys.stderr)
            return 1
        replicas = "auto" if options.replicas == "auto" else options.replicas
        print(f"serving {spec.meta['model']['name']} ({len(spec.class_names)} classes) from {spec.folder}: "
              f"{replicas} replica(s), batches of up to {options.max_batch_size} within {options.batch_wait_ms:g} ms; "
              f"Ray dashboard {dashboard}", flush=True)
        print(f"POST {url}/predict  GET {url}/healthz {url}/metadata {url}/stats  (Ctrl-C stops)", flush=True)
        print(url, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping", flush=True)
        if serve_was_running:
            serve.delete(args.name)
        else:
            serve.shutdown()
        ray.shutdown()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
