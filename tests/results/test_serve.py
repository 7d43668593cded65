"""results/serve.py in a subprocess (its own local Ray, HAProxy ingress, a free loopback port) on a model exported in
the test: known classes over HTTP, every bad input answered with its 4xx and the next request served, health and
metadata (no server paths), batching read from the replica's own counters, every listening socket on loopback,
and Ctrl-C stopping Serve and its Ray."""

from __future__ import annotations

import io
import json
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import kill_group
from tests.helpers.deploy_models import exported_model, sign_data, sign_files
from tests.helpers.serve_process import form, listening, on_loopback, running, start

pytestmark = pytest.mark.slow  # results/serve.py as a process, on a Ray of its own

MAX_BYTES = 20_000
MAX_PIXELS = 250_000
BATCH = 8
BATCH_WAIT_MS = 200  # long, so that concurrent test requests surely meet in one batch window
STOP_S = 30
"""serve.py must be gone, with every process of its Ray, this long after a signal (~5 s here; the rest is
room for a loaded machine)."""


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def signs(tmp_path_factory, tiny_data) -> list[tuple[Path, int]]:
    exported_model(tmp_path_factory, tiny_data)  # trains and exports on the same set
    return sign_files(sign_data(tmp_path_factory, tiny_data), tmp_path_factory.mktemp("signs"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_data, signs):
    server = start(exported_model(tmp_path_factory, tiny_data), tmp_path_factory.mktemp("serve") / "serve.log",
                   "--max-batch-size", str(BATCH), "--batch-wait-ms", str(BATCH_WAIT_MS),
                   "--max-bytes", str(MAX_BYTES), "--max-pixels", str(MAX_PIXELS))
    yield server
    if server.proc.poll() is None:  # the last test stops it with Ctrl-C; this only runs when that test did not
        kill_group(server.proc)


def test_test_signs_come_back_with_their_known_classes(server, signs):
    names = [c["name"] for c in json.loads((server.model_dir / "model.json").read_text())["classes"]]
    with ThreadPoolExecutor(8) as pool:  # raw bodies and multipart forms, PNG, JPEG and PPM, concurrently
        answers = list(pool.map(lambda item: server.predict(item[1][0], multipart=item[0] % 2 == 1),
                                enumerate(signs)))
    for (path, label), (status, answer) in zip(signs, answers):
        assert status == 200, answer
        assert answer["top"][0]["index"] == label and answer["top"][0]["class"] == names[label], (path, answer)
        assert len(answer["top"]) == 5  # serve.py's default top_k
    status, answer = server.predict(signs[0][0], query="?top_k=2")
    assert status == 200 and len(answer["top"]) == 2


def _bad_requests(signs) -> list[tuple[str, dict, int, str]]:
    png = signs[0][0].read_bytes()
    noise = _png(np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8))  # ~43 kB, 14,400 px
    assert len(noise) > MAX_BYTES
    wide = _png(np.full((600, 600, 3), 128, dtype=np.uint8))  # 360,000 px in ~1 kB
    form_body, form_type = form({"picture": ("sign.png", png)})
    image_png = {"Content-Type": "image/png"}
    return [
        ("empty body", dict(body=b"", headers=image_png), 400, "empty image (0 bytes)"),
        ("not an image", dict(body=b"GET me a sign", headers=image_png), 400, "request body: not an image"),
        ("truncated image", dict(body=png[:60], headers=image_png), 400, "truncated or corrupt PNG image"),
        ("too many bytes", dict(body=noise, headers=image_png), 413, f"above the limit of {MAX_BYTES} bytes"),
        ("too many bytes, chunked", dict(body=noise, headers=image_png, chunked=True), 413,
         f"above the limit of {MAX_BYTES} bytes"),
        ("too many pixels", dict(body=wide, headers=image_png), 413, f"360000 pixels, above the limit of {MAX_PIXELS}"),
        ("wrong content type", dict(body=b'{"image": 1}', headers={"Content-Type": "application/json"}), 415,
         "Content-Type application/json is not accepted"),
        ("no content type", dict(body=png), 415, "a request without Content-Type is not accepted"),
        ("form without a file field", dict(body=form_body, headers={"Content-Type": form_type}), 400,
         "form has no field 'file' (fields: picture)"),
        ("bad top_k", dict(body=png, headers=image_png, path="/predict?top_k=many"), 400, "top_k"),
        ("unknown path", dict(path="/classify", body=png, headers=image_png), 404, "POST /classify: Not Found"),
        ("wrong method", dict(method="GET"), 405, "GET /predict: Method Not Allowed"),
    ]


def test_bad_input_gets_its_4xx_and_the_next_request_is_served(server, signs):
    (good, label), = signs[:1]
    for name, request, status, message in _bad_requests(signs):
        method, path = request.pop("method", "POST"), request.pop("path", "/predict")
        got, answer = server.request(method, path, **request)
        assert (got, set(answer)) == (status, {"error"}), (name, got, answer)
        assert message in answer["error"], (name, answer)
        got, answer = server.predict(good)
        assert got == 200 and answer["top"][0]["index"] == label, (name, answer)


def test_health_and_metadata(server):
    assert server.request("GET", "/healthz") == (200, {"status": "ok"})
    status, meta = server.request("GET", "/metadata")
    model = json.loads((server.model_dir / "model.json").read_text())
    assert status == 200
    for key in ("model", "input", "roi", "classes"):
        assert meta[key] == model[key], key
    assert meta["metrics"]["validation"] == {**model["metrics"]["validation"], "from": None}  # a result.json path
    # The export's own paths (checkpoint, data root, cache) are of the machine that exported it: none is shown.
    assert model["source"]["checkpoint"].startswith("/") and meta["source"]["checkpoint"] is None
    assert meta["source"]["data"]["root"] is None and meta["source"]["config"]["data"]["cache_dir"] is None
    assert meta["source"]["epoch"] == model["source"]["epoch"]
    text = json.dumps(meta)
    for path in (model["source"]["checkpoint"], model["source"]["data"]["root"], str(server.model_dir.parent)):
        assert path not in text, path
    assert meta["model_card"].startswith((server.model_dir / "MODEL_CARD.md").read_text()[:20])
    assert "<not on this server>" in meta["model_card"]
    assert meta["serving"]["max_batch_size"] == BATCH and meta["serving"]["max_bytes"] == MAX_BYTES


def test_concurrent_requests_share_forward_passes(server, signs):
    requests = 2 * BATCH
    start = threading.Barrier(requests)

    def one(i: int) -> int:
        start.wait()  # all clients send at once
        return server.predict(signs[i % len(signs)][0])[0]

    _, before = server.request("GET", "/stats")
    with ThreadPoolExecutor(requests) as pool:
        assert list(pool.map(one, range(requests))) == [200] * requests
    _, after = server.request("GET", "/stats")
    assert after["replica"] == before["replica"]  # one replica: its counters see every request
    assert after["images"] - before["images"] == requests
    passes = after["forward_passes"] - before["forward_passes"]
    assert 2 <= passes < requests, after  # batches of at most BATCH images, but batches
    assert max(int(size) for size in after["batch_sizes"]) > 1


def test_every_listening_socket_is_on_loopback(server):
    """serve.py binds loopback unless --host says otherwise: HAProxy (service, stats, Prometheus), the replica's
    HTTP and inter-deployment gRPC servers, Serve's proxy and controller, Ray's own servers, the dashboard."""
    sockets = listening(server.processes())
    names = " ".join(process for _, process in sockets)
    assert "haproxy" in names and "ServeRepli" in names, sockets  # the check sees the ingress and the replica
    assert any(address.endswith(f":{server.port}") for address, _ in sockets), sockets
    assert [(address, process) for address, process in sockets if not on_loopback(address)] == []


def test_ctrl_c_stops_serve_and_the_ray_it_started(server):
    started = server.processes()
    assert len(started) > 5  # Ray's own processes, HAProxy and the replica
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=STOP_S) == 0
    assert server.log.read_text().splitlines()[-1] == "stopped"
    assert running(started) == []  # serve.py waits for (or kills) every process of the Ray it started
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()
