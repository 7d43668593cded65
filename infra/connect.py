"""Which Ray a run uses: a cluster's, or one started in this process.

An embedded Ray (``--address local``, or no cluster found) serves only this machine, so every port
it opens is bound to 127.0.0.1: its GCS, raylet and worker gRPC servers, the dashboard agent, the
runtime-env agent and the three Prometheus ``/metrics`` endpoints (dashboard head, dashboard agent,
autoscaler monitor), as Ray does for a local Ray on macOS and Windows. The dashboard itself binds to
``dashboard_host`` (127.0.0.1 unless asked otherwise). A Ray cluster started with ``ray start`` binds
to its node's IP as configured there.

Whom a run joins is what ``ray.init()`` itself joins (:func:`target`): never another driver's embedded Ray (a
search's, a server's) found among this machine's processes, so any number of searches and servers, each with
its own embedded Ray, share a machine; one line says when others run here and how many CPUs they hold.
Joining ends within ``deadline_s``, and a SIGINT or SIGTERM while Ray is joined or started ends the process at
once (infra/signals.py).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import ray

from infra.config_errors import ConfigError
from infra.ray_compat import auto_address, loopback_node, ray_instances_here
from infra.signals import bounded, stop_at_once

REACH_TIMEOUT_S = 5.0
"""How long the GCS of a cluster to join may take to accept a TCP connection and greet before it counts as dead."""
CONNECT_DEADLINE_S = 30.0
"""How long joining a cluster may take in all (Ray's own client retries a GCS that does not answer for minutes)."""


@dataclass
class RayConnection:
    """Which Ray a search runs on; the embedded one's settings."""

    address: Optional[str] = None
    """None: $RAY_ADDRESS, else a cluster running on this machine, else start one here; "local": always start one."""
    num_cpus: Optional[int] = None
    """CPUs of an embedded Ray (None: all)."""
    num_gpus: Optional[int] = None
    """GPUs of an embedded Ray (None: those torch's driver shows); with ``workers.fake_gpus`` logical labels,
    to try a GPU search's resources on a CPU-only machine."""
    dashboard_host: str = "127.0.0.1"
    """Bind address of an embedded Ray's dashboard: loopback unless asked otherwise."""
    dashboard_port: Optional[int] = None
    """Port of an embedded Ray's dashboard. None: 8265, or the first free one of the 50 after it (Ray's own
    search). A port given here is taken as is: Ray fails if it is in use."""
    stop_exit: Optional[int] = None
    """Exit code of a SIGINT or SIGTERM while Ray is joined or started (None: 130 for SIGINT, 143 for SIGTERM)."""
    deadline_s: float = CONNECT_DEADLINE_S
    """How long joining a cluster may take in all."""

    def __post_init__(self) -> None:
        # Checked here, before anything starts: Ray would take 70000 as far as a socket call deep in its
        # start-up (an OverflowError traceback, with the experiment folder already made).
        if self.dashboard_port is not None and not 1 <= self.dashboard_port <= 65535:
            raise ConfigError(f"--dashboard-port {self.dashboard_port}: a TCP port is 1 to 65535 (or leave it out: "
                              "8265, or the next free port)")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError(f"--num-cpus {self.num_cpus}: give 1 or more (or leave it out: all of this machine's)")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise ConfigError(f"--num-gpus {self.num_gpus}: give 0 or more (or leave it out: the GPUs torch's driver "
                              "shows)")

    def connect(self, on_abort: Callable[[], None] = lambda: None) -> Optional[str]:
        """Join or start Ray (see :func:`target`); return the dashboard URL.

        Joining is bounded: it ends within ``deadline_s`` (one line, exit 2), and a SIGINT or SIGTERM
        during it ends the process within a second (one line, exit 130/143 or ``stop_exit``; infra/signals.py
        ``bounded``), as it does while a Ray starts here (``stop_at_once``); ``on_abort`` runs first, to remove what
        the caller made so far. The SIGTERM handler in place before ``ray.init`` (which installs its own) is in
        place again afterwards.
        """
        started = time.monotonic()
        joining = target(self.address, min(REACH_TIMEOUT_S, self.deadline_s))
        handler = signal.getsignal(signal.SIGTERM)
        context = None
        if joining is not None:
            left = max(0.5, self.deadline_s - (time.monotonic() - started))
            too_long = f"cannot reach {joining}: no answer within {self.deadline_s:g} s"
            with bounded(f"connecting to {joining}", left, too_long, on_abort, self.stop_exit):
                try:
                    context = ray.init(address=joining.address)
                except ConnectionError as error:  # it answered, then refused this driver (auth, version, ...)
                    if joining.asked:
                        raise ConfigError(f"cannot reach {joining}: {str(error).strip().splitlines()[0]}") from None
                    print(f"T{str(joining)[1:]} refused this run ({str(error).strip().splitlines()[0]}); starting a "
                          "local Ray", file=sys.stderr, flush=True)
                finally:
                    _restore_sigterm(handler)  # before the mask is lifted: a pending SIGTERM reaches it
        if context is None:
            with stop_at_once("starting a local Ray", on_abort, self.stop_exit):
                context = self._start_local()
        note_other_rays()
        url = context.dashboard_url
        return f"http://{url}" if url and not url.startswith("http") else url

    def _start_local(self):
        for attempt in range(1, START_ATTEMPTS + 1):
            before = _own_children()
            try:
                with loopback_node():
                    return ray.init(address="local", num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                                    include_dashboard=True, dashboard_host=self.dashboard_host,
                                    dashboard_port=self.dashboard_port)
            except ValueError as error:
                if "already occupied" not in str(error):
                    raise
                raise ConfigError(f"dashboard port {self.dashboard_port} on {self.dashboard_host} is in use: give "
                                  "another one, or none (Ray then takes 8265 or the next free port)") from None
            except Exception as error:  # only Ray's start-up timeout is retried, below
                if STARTUP_TIMEOUT not in str(error) or attempt == START_ATTEMPTS:
                    raise
                # The machine is busy (Ray gives a starting raylet a fixed 30 s to register): the processes of the
                # failed start go, by their own ids, and Ray starts again.
                ray.shutdown()
                for pid in _own_children() - before:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                print(f"Ray did not start within its 30 s (attempt {attempt} of {START_ATTEMPTS}; is the machine "
                      "busy?); starting it again", file=sys.stderr, flush=True)


START_ATTEMPTS = 3
STARTUP_TIMEOUT = "timed out during startup"
"""Ray's message when a starting raylet did not register within its fixed 30 s (ray/_private/node.py)."""


def _own_children() -> set[int]:
    """Pids of this process's children (the GCS, raylet and dashboard a ray.init starts), from /proc."""
    me, found = str(os.getpid()), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == me:
                found.add(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return found


def _restore_sigterm(handler: Any) -> None:
    """Put back the SIGTERM handler ray.init replaced with its own (``sys.exit(SIGTERM)``)."""
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True)
class Target:
    """A Ray cluster to join, and who named it (for messages)."""

    address: str
    named_by: str
    asked: bool
    """Asked for (--address, $RAY_ADDRESS, --address auto): an error when it does not answer; else (the file
    `ray start` left) a line and a Ray started here."""

    def __str__(self) -> str:
        return f"the Ray cluster at {self.address} ({self.named_by})"


def target(address: Optional[str], reach_s: float = REACH_TIMEOUT_S) -> Optional[Target]:
    """Whom to join, checked to answer within ``reach_s``; None: start a Ray here.

    As ``ray.init()`` itself: ``address``, else $RAY_ADDRESS, else the cluster ``ray start`` recorded on this
    machine, else none; "auto" keeps Ray's meaning (that record, else a GCS process running here); "local"
    always starts one. Never another driver's embedded Ray, which no file records: two embedded Rays coexist.
    A recorded cluster that does not answer (a Ray killed, not stopped) is one line and a Ray here; an address
    asked for that does not answer, or no cluster for "auto", is a ConfigError (exit 2).
    """
    given = address or os.environ.get("RAY_ADDRESS") or None
    who = "--address" if address else "$RAY_ADDRESS"
    where = ""  # a cluster file, or a GCS process, for no address or "auto"
    if given == "local":
        return None
    if given in (None, "auto"):
        found, where = auto_address(legacy=given == "auto")
        if found is None:
            if given == "auto":
                raise ConfigError(f"{who} auto: no Ray cluster runs on this machine (none recorded by `ray start`, "
                                  "no GCS process): start one, or leave the address out to start a Ray here")
            return None
        joining = Target(found, f"named by {where}" + (f", for {who} auto" if given else ""), asked=given == "auto")
    else:
        joining = Target(given, f"given by {who}", asked=True)
    failure = answers(joining.address, reach_s)
    if failure is None:
        return joining
    if not joining.asked:
        print(f"T{str(joining)[1:]} is not answering ({failure}); starting a local Ray; `ray stop` clears it",
              file=sys.stderr, flush=True)
        return None
    hint = "; `ray stop` clears it" if os.path.isabs(where) else ""  # a file `ray start` wrote
    raise ConfigError(f"cannot reach the Ray cluster at {joining.address} ({joining.named_by}{hint}): {failure}")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)
"""The client connection preface of HTTP/2 and an empty SETTINGS frame: a gRPC server (a GCS, a Ray Client
server) answers it with a SETTINGS frame of its own at once."""


def answers(address: str, reach_s: float = REACH_TIMEOUT_S) -> Optional[str]:
    """None when a gRPC server answers at ``address`` within ``reach_s``; else what failed.

    A TCP connect alone passes a port that accepts but never answers, and Ray's client then retries it for
    minutes; the HTTP/2 greeting is the first thing any GCS says. With TLS (``RAY_USE_TLS``) only the TCP connect
    is checked. Not host:port (a job-server URL, ...): ray.init judges it.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return None
    deadline = time.monotonic() + reach_s
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=reach_s) as sock:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return None
            sock.sendall(HTTP2_PREFACE)
            reply = b""
            while len(reply) < 4:  # a frame header's length (3 bytes) and type
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = sock.recv(9 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except socket.timeout:
        return f"no answer within {reach_s:g} s"
    except OSError as error:
        return error.strerror or type(error).__name__
    if not reply:
        return "it closed the connection without a word"
    if len(reply) < 4 or reply[3] != 4:  # 4: the frame type of SETTINGS
        return "what answers there is not a Ray GCS (no HTTP/2 greeting)"
    return None


def note_other_rays() -> None:
    """One line when other Ray instances run on this machine (another search's, a server's): they share its
    cores (a search's ``max_concurrent_trials: auto`` counts only the free ones, tune/cluster.py)."""
    try:
        others = other_rays_here()
    except Exception:  # Ray Client mode (ray://): no runtime context of a node here to compare with
        return
    if others:
        cpus = sum(cpus for _, cpus in others)
        print(f"note: {len(others)} other Ray instance(s) run on this machine ({', '.join(a for a, _ in others)}), "
              f"holding {cpus:g} of its {machine_cpus()} CPUs", file=sys.stderr, flush=True)


def other_rays_here() -> list[tuple[str, float]]:
    """(GCS address, CPUs) of the Ray instances on this machine other than the connected one, one per GCS."""
    own = ray.get_runtime_context().gcs_address
    others: dict[str, float] = {}
    for address, cpus in ray_instances_here():
        if address != own and address.rpartition(":")[2] != own.rpartition(":")[2]:
            others[address] = others.get(address, 0.0) + cpus
    return sorted(others.items())


def machine_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
