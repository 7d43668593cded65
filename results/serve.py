"""Serve an exported model over HTTP with Ray Serve, until SIGINT (Ctrl-C) or SIGTERM.

    python results/serve.py models/smoke [--host 127.0.0.1] [--port 8000] [--replicas N|auto]
                            [--max-batch-size 32] [--batch-wait-ms 5] [--ingress haproxy|proxy]
                            [--address ADDRESS|local]

Routes (results/serving/api.py): ``POST /predict`` (raw ``image/*`` body or multipart field ``file``;
``?top_k=``), ``GET /healthz``, ``GET /metadata``, ``GET /stats``. Ray is found like the search finds it
(infra/connect.py): ``--address``, else $RAY_ADDRESS, else the cluster ``ray start`` recorded here, else a private
one started here (``--address local`` always does that). A Ray started here runs Serve's HAProxy ingress
(results/serving/ingress.py) with every listening socket on --host (loopback unless it says otherwise) and one
replica holding all its CPUs. Prints the URL once the application answers. SIGINT and SIGTERM, at any moment,
delete the application (and shut Serve down if this run started it), shut Ray down, wait for (or kill) every
process of a Ray this run started, print "stopped" and exit 0. Killed outright (kill -9 of it alone or of its
process group), its watchdog process ends everything it had started; a serve.py that starts ends what a killed one
left behind (results/serving/watchdog.py). Bad flags or an unusable model folder stop before Ray starts, with one
line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from infra import hold
from results.serving.checks import WILDCARDS, check_fits, check_host, check_port, check_port_free
from results.serving.ingress import INGRESSES, haproxy_environment
from results.serving.options import node_cpus
from results.serving.processes import OWNER_ENV, descendants, owner_token, reap
from results.serving.stopping import Stopped, StopSignals
from results.serving.watchdog import Watchdog, sweep_dead
from train.config import ConfigError

READY_TIMEOUT_S = 120.0
"""How long the HTTP proxy may take to answer /healthz after the application is deployed."""
STOP_GRACE_S = 3.0
"""After ray.shutdown, how long the processes of the Ray this run started get to exit before they are killed."""


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
    parser.add_argument("--cpus-per-replica", type=float,
                        help="logical CPUs Ray reserves per replica (default: every CPU of a Ray started here, so "
                             "one replica per node; 1 on a cluster)")
    parser.add_argument("--threads-per-replica", type=int,
                        help="onnxruntime threads per replica (default: --cpus-per-replica, rounded)")
    parser.add_argument("--ingress", choices=INGRESSES, default="haproxy",
                        help="HTTP ingress of a Ray started here: Serve's HAProxy (default, fast) or its Python proxy")
    parser.add_argument("--max-bytes", type=int, default=5 * 2**20, help="largest encoded image accepted (bytes)")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="largest decoded image accepted (w x h)")
    parser.add_argument("--top-k", type=int, default=5, help="classes returned when a request gives no ?top_k=")
    parser.add_argument("--access-log", action="store_true", help="log every request (Serve's access log)")
    parser.add_argument("--name", default="signsearch", help="Serve application name")
    parser.add_argument("--address", help="Ray to use: a cluster address, or 'local' to always start one here")
    parser.add_argument("--num-cpus", type=int, help="CPUs of a Ray started here (default: all)")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace, local: bool):
    """ServeOptions from the flags; pydantic's first complaint as one ValueError line. ``local``: for a Ray this
    run starts, whose CPUs are all the replica's by default and whose replicas bind --host; on a cluster the
    replicas keep Serve's own binding, so that the other nodes reach them."""
    import pydantic

    from results.serving.options import ServeOptions

    cpus = args.cpus_per_replica or (float(args.num_cpus or node_cpus()) if local else 1.0)
    replicas = args.replicas if args.replicas == "auto" else (int(args.replicas) if args.replicas.isdigit() else -1)
    if replicas != "auto" and replicas < 1:
        raise ValueError(f"--replicas: got {args.replicas!r}, allowed: a count >= 1 or 'auto'")
    try:
        return ServeOptions(model_dir=str(args.model_dir.expanduser().absolute()), replicas=replicas,
                            min_replicas=args.min_replicas, max_replicas=args.max_replicas,
                            max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms,
                            max_ongoing_requests=args.max_ongoing_requests,
                            cpus_per_replica=cpus, threads_per_replica=args.threads_per_replica,
                            max_bytes=args.max_bytes, max_pixels=args.max_pixels, top_k=args.top_k,
                            access_log=args.access_log,
                            bind_host=args.host if local and args.host not in WILDCARDS else None)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        if not first["loc"]:  # a check across fields
            raise ValueError(first["msg"].removeprefix("Value error, ")) from None
        flag = "--" + str(first["loc"][0]).replace("_", "-")
        raise ValueError(f"{flag}: got {first.get('input')!r}, {first['msg']}") from None


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


def start_serve(args: argparse.Namespace, options) -> None:
    """serve.start with one ingress (HeadOnly), on the node this runs on (the head, or the only node), at the URL
    printed later. On a loaded machine Serve's controller may give up on its first proxy before that is ready (3
    readiness checks of 5 s; seen at load 20-40 on 2 cores) and start another, while serve.start, still waiting on
    the first, raises ActorDiedError: called again, it connects to that controller, and the /healthz wait that
    follows covers the new proxy."""
    import ray
    from ray import serve

    for attempt in (1, 2):
        try:
            serve.start(proxy_location="HeadOnly", http_options={"host": args.host, "port": args.port},
                        logging_config={"enable_access_log": options.access_log})
            return
        except ray.exceptions.ActorDiedError:
            if attempt == 2:
                raise
            print("Serve replaced its proxy, which was slow to start; waiting for the new one", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from artifact.model_dir import ModelDirError, load_model_dir
    from artifact.runtime import OnnxClassifier

    local = args.address == "local"  # a private Ray: this run starts Serve, so host, port and CPUs are its own
    try:  # cheap checks first: flags, the model folder and the port, before Ray or Serve is even imported
        if args.num_cpus is not None and args.num_cpus < 1:
            raise ValueError(f"--num-cpus: got {args.num_cpus}, allowed: >= 1")
        check_port(args.port)
        check_host(args.host)
        spec = load_model_dir(args.model_dir.expanduser().absolute())
        OnnxClassifier(spec, threads=1)  # a broken model.onnx stops here, not in every replica
        options = options_from(args, local)
        for line in sweep_dead():  # a killed serve.py's HAProxy may still hold the port
            print(line, flush=True)
        if local:
            check_fits(options, args.num_cpus or node_cpus(), "this machine's Ray")
            check_port_free(args.host, args.port)
    except (ValueError, ModelDirError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    signals = StopSignals()
    signals.install()
    token = owner_token(os.getpid())
    os.environ[OWNER_ENV] = token  # inherited by every process of a Ray this process starts, HAProxy included
    haproxy_files, watchdog = None, None
    try:
        if args.ingress == "haproxy":  # read by a Ray this process starts (a cluster keeps its own setting)
            env, haproxy_files = haproxy_environment(args.host, token)
            os.environ.update(env)
        watchdog = Watchdog.start(token, haproxy_files)  # ends them all if this process is killed
        return serve_until_stopped(args, options, spec, signals,
                                   on_abort=lambda: haproxy_files and shutil.rmtree(haproxy_files, ignore_errors=True))
    except Stopped:
        return 0
    finally:
        signals.ignore_further()
        if watchdog is not None:
            watchdog.stop()
        if haproxy_files is not None:
            shutil.rmtree(haproxy_files, ignore_errors=True)


def serve_until_stopped(args: argparse.Namespace, options, spec, signals: StopSignals,
                        on_abort: Callable[[], object] = lambda: None) -> int:
    """Start (or join) Ray, deploy, print the URL, wait for a signal; always clean up what this run started
    (``on_abort``: what a signal while Ray starts or is joined removes, when the process ends at once)."""
    ray_processes: set = set()
    serve_was_running = True  # until known otherwise: never shut down a Serve this run did not start
    try:
        import ray
        from ray import serve

        from infra.connect import RayConnection
        from results.serving.deployment import build

        try:
            # A signal while Ray starts or is joined ends the process at once, exit 0 (infra/connect.py).
            dashboard = RayConnection(address=args.address, num_cpus=args.num_cpus, stop_exit=0).connect(on_abort)
        except SystemExit as exit_:  # SIGTERM inside ray.init, whose own handler exits with the signal's number
            if exit_.code != signal.SIGTERM:
                raise
            raise Stopped("SIGTERM") from None
        signals.install()  # ray.init replaced the SIGTERM handler with its own
        ray_processes = descendants(os.getpid())  # empty when this run joined a cluster
        if ray_processes and args.address != "local":  # no cluster was found, so this run started one
            options = options_from(args, local=True)
            check_fits(options, float(ray.cluster_resources().get("CPU", 0)), "this machine's Ray")
        status = serve.status()
        serve_was_running = bool(status.proxies or status.applications)
        if not serve_was_running and args.address != "local":  # --address local checked it before Ray started
            check_port_free(args.host, args.port)
        hold.at_serve_step(1)  # test-only: Ray up, nothing of Serve started yet
        url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
        start_serve(args, options)
        serve.run(build(options), name=args.name, route_prefix="/")
        if wait_until_answering(url, READY_TIMEOUT_S) is None:
            print(f"error: the application is deployed but {url}/healthz does not answer (a Serve already running "
                  f"on this cluster keeps the host and port it started with)", file=sys.stderr)
            return 1
        replicas = "auto" if options.replicas == "auto" else options.replicas
        ingress = args.ingress if ray_processes else "the cluster's"
        print(f"serving {spec.meta['model']['name']} ({len(spec.class_names)} classes) from {spec.folder}: "
              f"{replicas} replica(s) x {options.cpus_per_replica:g} CPUs, {options.threads} onnxruntime thread(s) "
              f"each, batches of up to {options.max_batch_size} within {options.batch_wait_ms:g} ms, {ingress} "
              f"ingress; Ray dashboard {dashboard}", flush=True)
        print(f"POST {url}/predict  GET {url}/healthz {url}/metadata {url}/stats  (Ctrl-C stops)", flush=True)
        print(url, flush=True)
        while True:
            time.sleep(3600)  # until a signal raises Stopped
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        signals.ignore_further()
        print("stopping", flush=True)
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            if ray_processes:  # what the Ray this run started added since (Serve's actors, HAProxy, replicas)
                ray_processes |= descendants(os.getpid())
            from ray import serve

            if serve_was_running:
                serve.delete(args.name)
            else:
                serve.shutdown()
            ray.shutdown()
        reap(ray_processes, STOP_GRACE_S)
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
