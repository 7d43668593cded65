"""Keep a replica's own gRPC server on the service's bind address.

Each Ray Serve replica starts an inter-deployment gRPC server after its constructor has run, on ``[::]:0``: a
random port on every interface, whatever ``http_options.host`` says (ray/serve/_private/replica.py,
``_on_initialized``). A service told to stay on loopback must not listen beyond it. Serve 2.60 has no public
option for that address, so the replica's constructor swaps the module-level helper that binds it
(Ray Serve's private ``add_port_to_grpc_server`` of its replica module: infra/ray_compat.py replica_grpc_binder)
for one that puts the given host in place of the wildcard. Callers reach the replica at its node's IP, which is
127.0.0.1 for the loopback Ray serve.py starts (infra/connect.py), so nothing else changes.
"""

from __future__ import annotations

WILDCARDS = ("[::]", "0.0.0.0")


def bind_replica_servers(host: str) -> None:
    """Make this replica process bind its Serve gRPC server(s) to ``host`` instead of every interface."""
    from infra.ray_compat import replica_grpc_binder  # private: see the module docstring

    module, name = replica_grpc_binder()
    current = getattr(module, name)
    original = getattr(current, "__wrapped__", current)
    bracketed = f"[{host}]" if ":" in host else host

    def add_port(server, address: str) -> int:
        where, _, port = address.rpartition(":")
        return original(server, f"{bracketed}:{port}" if where in WILDCARDS else address)

    add_port.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(module, name, add_port)
