"""Flags that cannot work, found before Ray starts: each a ValueError with one line (what, where, what is allowed)."""

from __future__ import annotations

import errno
import socket
from typing import Optional

from results.serving.options import ServeOptions
from results.serving.processes import command, port_holders

WILDCARDS = ("0.0.0.0", "::")


def check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ValueError(f"--port: got {port}, allowed: 1-65535")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_host(host: str) -> None:
    """``host`` must be an IP address of this machine (or 0.0.0.0 / :: for all of them): Serve and HAProxy bind
    it, and an address of another machine would only fail later, inside Ray."""
    try:
        socket.inet_pton(_family(host), host)
    except OSError:
        raise ValueError(f"--host: got {host!r}, allowed: an IP address of this machine (127.0.0.1, ::1, one of "
                         f"its interfaces' addresses), or 0.0.0.0 / :: for all of them") from None
    with socket.socket(_family(host)) as sock:
        try:
            sock.bind((host, 0))
        except OSError as error:
            if error.errno != errno.EADDRNOTAVAIL:
                raise
            raise ValueError(f"--host: {host} is not an address of this machine (allowed: 127.0.0.1, ::1, an "
                             f"address of one of its interfaces, or 0.0.0.0 / :: for all of them)") from None


def check_port_free(host: str, port: int) -> None:
    """``port`` can be listened on at ``host``; else one line naming the process that listens on it, if it is
    this user's."""
    with socket.socket(_family(host)) as sock:
        # As every server binds: a connection of the previous server still in TIME_WAIT does not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            holders = "".join(f"; pid {pid} listens on it: {command(pid)}" for pid in port_holders(port))
            raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}{holders}): give another --port "
                             f"(or --host)") from None


def check_fits(options: ServeOptions, cpus: float, where: str) -> None:
    """Replicas that could never all be placed on ``cpus`` logical CPUs (Serve would wait for them forever)."""
    needed: Optional[int] = options.min_replicas if options.replicas == "auto" else options.replicas
    if options.cpus_per_replica > cpus:
        raise ValueError(f"--cpus-per-replica: got {options.cpus_per_replica:g}, but {where} has {cpus:g} CPUs "
                         f"(allowed: at most {cpus:g})")
    if needed and needed * options.cpus_per_replica > cpus:
        flag = "--min-replicas" if options.replicas == "auto" else "--replicas"
        fit = int(cpus // options.cpus_per_replica)
        raise ValueError(f"{flag}: {needed} replicas x {options.cpus_per_replica:g} CPUs do not fit {where} "
                         f"({cpus:g} CPUs): allowed at most {fit} at --cpus-per-replica "
                         f"{options.cpus_per_replica:g}, or fewer CPUs per replica")
