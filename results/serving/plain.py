"""The same application in one uvicorn process, without Ray: the yardstick the Ray Serve deployment is measured
against (bench/serve_load.py), and the deployment to pick for one machine that needs no cluster.

    python -m results.serving.plain MODEL_DIR [--host 127.0.0.1] [--port 8000] [--threads N] [--max-bytes B]
                                     [--max-pixels P] [--top-k K]

Each request's image is decoded, preprocessed and run through onnxruntime on its own (no batching), in a thread,
so the event loop keeps parsing the next requests meanwhile. Prints the URL once it listens; SIGINT or SIGTERM
stops it (uvicorn's own handling: in-flight requests finish), exit 0. A bad --port or --host: one line, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from results.serving.checks import check_host, check_port
from results.serving.model_service import Answer, ModelService
from results.serving.options import ServeOptions, node_cpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="folder written by results/export.py")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=node_cpus(), help="onnxruntime threads (default: all cores)")
    parser.add_argument("--max-bytes", type=int, default=5 * 2**20)
    parser.add_argument("--max-pixels", type=int, default=40_000_000)
    parser.add_argument("--top-k", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from results.serving.api import build_api

    args = parse_args(argv)
    try:
        check_port(args.port)
        check_host(args.host)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    options = ServeOptions(model_dir=str(args.model_dir.absolute()), max_batch_size=1, threads_per_replica=args.threads,
                           cpus_per_replica=args.threads, max_bytes=args.max_bytes, max_pixels=args.max_pixels,
                           top_k=args.top_k)
    service = ModelService(Path(options.model_dir), options.threads, options.max_pixels)

    async def infer(data: bytes) -> Answer:
        return (await asyncio.to_thread(service.classify, [data]))[0]

    config = uvicorn.Config(build_api(service, infer, options), host=args.host, port=args.port, access_log=False,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if server.started:
            print(f"http://{args.host}:{args.port}", flush=True)
        await serving

    # uvicorn stops gracefully on SIGINT / SIGTERM, then puts back the handlers it found and raises the signal
    # again; finding these no-ops, that second delivery changes nothing, and the server exits 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    asyncio.run(run())
    if not server.started:
        return 1
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
