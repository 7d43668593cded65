"""results/serve.py in a subprocess (its own local Ray, a free loopback port) on a model exported in the test:
known classes over HTTP, every bad input answered with its 4xx and the next request served, health and
metadata, batching read from the replica's own counters, and Ctrl-C stopping Serve and its Ray."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, free_port
from tests.helpers import descendants, kill_group, start_in_session
from tests.results.deploy_models import SERVE, exported_model, sign_data, sign_files

MAX_BYTES = 20_000
MAX_PIXELS = 250_000
BATCH = 8
BATCH_WAIT_MS = 200  # long, so that concurrent test requests surely meet in one batch window
START_TIMEOUT_S = 300
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".ppm": "image/x-portable-pixmap"}


@dataclass
class Server:
    host: str
    port: int
    model_dir: Path
    proc: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None, chunked: bool = False) -> tuple[int, dict]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=iter([body]) if chunked else body, headers=headers or {},
                               encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def predict(self, path: Path, multipart: bool = False, query: str = "") -> tuple[int, dict]:
        if multipart:
            body, content_type = _form({"file": (path.name, path.read_bytes())})
            return self.request("POST", f"/predict{query}", body, {"Content-Type": content_type})
        return self.request("POST", f"/predict{query}", path.read_bytes(),
                            {"Content-Type": CONTENT_TYPES[path.suffix]})


def _form(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body as browsers and curl -F send it."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
             for name, (filename, data) in fields.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


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
    model_dir = exported_model(tmp_path_factory, tiny_data)
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [sys.executable, str(SERVE), str(model_dir), "--address", "local", "--num-cpus", "2",
               "--port", str(port), "--max-batch-size", str(BATCH), "--batch-wait-ms", str(BATCH_WAIT_MS),
               "--max-bytes", str(MAX_BYTES), "--max-pixels", str(MAX_PIXELS)]
    proc = start_in_session(command, log, dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    # serve.py prints the URL alone on a line once /healthz answers through Serve's proxy.
    while url not in log.read_text().splitlines():
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_group(proc)
            pytest.fail(f"serve.py did not print {url} (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield Server("127.0.0.1", port, model_dir, proc, log)
    if proc.poll() is None:  # the last test stops it with Ctrl-C; this only runs when that test did not
        kill_group(proc)


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
    form, form_type = _form({"picture": ("sign.png", png)})
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
        ("form without a file field", dict(body=form, headers={"Content-Type": form_type}), 400,
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
    for key in ("model", "input", "roi", "classes", "metrics", "source"):
        assert meta[key] == model[key], key
    assert meta["model_card"] == (server.model_dir / "MODEL_CARD.md").read_text()
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


def test_ctrl_c_stops_serve_and_the_ray_it_started(server):
    started = [pid for pid, _ in descendants(server.proc.pid)]
    assert started  # Ray's own processes and the replica
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=120) == 0
    lines = server.log.read_text().splitlines()
    assert "stopped" in lines
    deadline = time.monotonic() + 60
    while (alive := [pid for pid in started if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)  # Ray reaps its workers after the driver is gone
    assert not alive, [line for pid, line in descendants(1) if pid in alive]
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_port_in_use_and_a_bad_model_folder_are_one_line(server, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, str(SERVE), str(server.model_dir), "--address", "local",
                                 "--port", str(port)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use): give another --port (or --host)"]
    result = subprocess.run([sys.executable, str(SERVE), str(tmp_path), "--address", "local"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no model.json, so not a folder written by results/export.py "
        f"(re-export it with python results/export.py)"]
