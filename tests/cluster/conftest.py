"""The fake cluster fixture: Ray's fake multi-node autoscaler (cluster/local.yaml) on this machine.

Every Ray process of a fake cluster — head, autoscaler, fake worker nodes and their workers — runs in
one session that the fixture starts (``start_new_session``); tear-down kills exactly that session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from infra import hold
from tests.conftest import REPO, free_port

LOCAL_YAML = REPO / "cluster" / "local.yaml"
RAY_CLI = Path(sys.executable).with_name("ray")
HEAD_NODE_ID = "f" * 51 + "00000"  # the fake provider's fixed head id (RAY_FAKE_CLUSTER=1 ray start --head)


# -- the fake cluster ---------------------------------------------------------------------------
@dataclass
class FakeCluster:
    address: str                       # the head's GCS, ip:port
    session: int                       # session id shared by every process of this cluster
    temp_dir: Path
    env: dict[str, str] = field(repr=False)

    def nodes(self) -> list[dict]:
        """Alive nodes (id, resources), from the GCS's node table."""
        return [node for node in self._node_table() if node["alive"]]

    def _node_table(self) -> list[dict]:
        code = ("import json, ray\n"
                "from ray._raylet import GcsClient\n"
                f"infos = GcsClient(address={self.address!r}).get_all_node_info(timeout=10)\n"
                "print(json.dumps([{'id': key.hex(), 'alive': info.state == 0,  # GcsNodeState.ALIVE\n"
                "                   'resources': dict(info.resources_total)} for key, info in infos.items()]))\n")
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def processes(self) -> list[int]:
        return _session_pids(self.session)

    def kill_node(self, node_id: str) -> list[int]:
        """SIGKILL one fake node, as if its machine died: its raylet (``--node_id=<id>``), everything the
        raylet started (workers, agents), and the node's other processes (those the fake provider
        started with RAY_OVERRIDE_NODE_ID_FOR_TESTING=<id>, e.g. its log monitor). Nothing else."""
        import ray  # noqa: F401  (Ray's bundled psutil)
        # isort: split
        import psutil

        assert node_id != HEAD_NODE_ID
        mine = self.processes()
        raylets = [pid for pid in mine if f"--node_id={node_id}" in _cmdline(pid)]
        assert len(raylets) == 1, f"raylet of {node_id}: {raylets}"
        victims = {raylets[0], *(child.pid for child in psutil.Process(raylets[0]).children(recursive=True))}
        victims |= {pid for pid in mine if f"RAY_OVERRIDE_NODE_ID_FOR_TESTING={node_id}" in _environ(pid)}
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(victims)

    def monitor_logs(self) -> list[Path]:
        """The autoscaler's logs (monitor.log/.out/.err) of this cluster's session."""
        return sorted(path for path in self.temp_dir.glob("session_*/logs/monitor.*")
                      if not path.parts[-3] == "session_latest")  # a symlink to the same session

    def autoscaler_log(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.monitor_logs())

    def autoscaler_events(self) -> list[str]:
        """The autoscaler's event summary: "Adding 1 node(s) of type gpu.small.", "Removing ..."."""
        marker = ":event_summary:"
        return [line.split(marker, 1)[1].strip()
                for path in self.monitor_logs() if path.name == "monitor.log"
                for line in path.read_text(errors="replace").splitlines() if marker in line]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _session_pids(session: int) -> list[int]:
    """Live (non-zombie) processes of this user in ``session``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp session ...
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _kill_session(session: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pids = _session_pids(session)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of session {session} survived SIGKILL: {pids}")
        time.sleep(0.2)


@pytest.fixture
def fake_cluster(request, tmp_path) -> Iterator[FakeCluster]:
    """A fake autoscaling cluster from cluster/local.yaml on ports of its own; killed afterwards.

    Parametrised indirectly with {"hold": "checkpoint:<epoch>"}, every process of the cluster gets
    $SIGNSEARCH_HOLD (infra/hold.py) with the folder ``tmp_path/"hold"``: Ray workers on the fake nodes
    inherit the environment of the `ray start` that launched their raylet, not the driver's.
    """
    import ray._private.services
    from ray._private.authentication.authentication_token_generator import generate_new_authentication_token

    # Short: Ray's socket paths live under it (Unix sockets allow ~107 characters).
    temp_dir = Path(tempfile.mkdtemp(prefix="rayfc-", dir="/tmp"))
    port = free_port()
    address = f"{ray._private.services.get_node_ip_address()}:{port}"
    config = yaml.safe_load(LOCAL_YAML.read_text())
    # Fake workers join the GCS named here (default: port 6379, which may be someone else's Ray).
    config["provider"]["gcs_address"] = address
    config_path = temp_dir / "local.yaml"
    config_path.write_text(yaml.safe_dump(config))
    head = config["available_node_types"][config["head_node_type"]]["resources"]
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
           # Ray's lost-contact check (seconds without a heartbeat). It passes fake nodes by (they never become
           # "up-to-date"): a killed one is dropped by cluster/local.yaml's provider (tune/fake_nodes.py) instead.
           "AUTOSCALER_HEARTBEAT_TIMEOUT_S": "10",
           # A token of its own: a driver elsewhere on this machine whose ray.init("auto") finds this
           # cluster's GCS cannot join it (and fills its nodes with trials of its own).
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": generate_new_authentication_token(),
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
           # Ray code inside the cluster that looks for "the" local cluster (Train's placement-group
           # cleaner does) must find this one, not whatever other Ray runs on this machine.
           "RAY_ADDRESS": address}
    extra = getattr(request, "param", {})
    if "hold" in extra:
        env[hold.ENV] = f"{extra['hold']}:{tmp_path / 'hold'}"
    command = [str(RAY_CLI), "start", "--head", f"--port={port}", f"--num-cpus={head.get('CPU', 0)}",
               f"--num-gpus={head.get('GPU', 0)}", f"--temp-dir={temp_dir}", f"--autoscaling-config={config_path}",
               f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
               "--dashboard-agent-listen-port=0", "--include-dashboard=false",
               "--object-store-memory=100000000", "--disable-usage-stats"]
    log = tmp_path / "ray-start.log"
    with log.open("w") as out:
        starter = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    cluster = FakeCluster(address, starter.pid, temp_dir, env)
    try:
        assert starter.wait(timeout=120) == 0, log.read_text()[-3000:]
        yield cluster
    finally:
        try:
            for path in cluster.monitor_logs():  # kept for a look after a failure
                shutil.copy(path, tmp_path / path.name)
            # Every log of the cluster (GCS, raylets, Train controllers and workers; ~3 MB), for the same look.
            for logs in temp_dir.glob("session_2*/logs"):
                shutil.copytree(logs, tmp_path / "ray-logs", dirs_exist_ok=True, ignore_dangling_symlinks=True)
        finally:
            _kill_session(starter.pid)
            shutil.rmtree(temp_dir, ignore_errors=True)


