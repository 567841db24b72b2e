"""Start the shared service (Ray Serve, one replica of the tiny model, the ``flaky`` generator) on a local Ray
with 2 CPUs; used by the service tests and the add-on's Remote-mode test."""

from __future__ import annotations

import socket
from contextlib import contextmanager

TOKEN = "test-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(models_dir, replicas: int = 1, batch_wait_s: float = 0.3):
    """-> the service URL while the block runs; Serve and Ray are shut down afterwards."""
    import ray
    from ray import serve

    from backend.scale import service as svc

    port = free_port()
    # address="local": always a Ray of its own; without it, ray.init() joins any Ray already running on the machine
    # (another test file on the other xdist worker), where num_cpus is refused
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cfg = svc.ServiceConfig(models=str(models_dir), device="cpu", token_sha256=svc.token_digest(TOKEN),
                                generator="tests.scale.flaky:make", batch_wait_s=batch_wait_s)
        svc.start(cfg, replicas, "127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
