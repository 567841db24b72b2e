"""``remomask serve --models DIR [--replicas N] [--host 127.0.0.1 --port P] --token T``: the shared generator
service (a Ray Serve application, ``backend/scale/service.py``). Prints the service URL on stdout once it
answers, then serves until interrupted (Ctrl-C / SIGTERM)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading

from backend.errors import EXIT_OK, UserError

from .common import add_models_argument, models_dir, require_models_dir

TOKEN_ENV = "REMOMASK_SERVE_TOKEN"


def add_parser(sub) -> None:
    s = sub.add_parser("serve", help="serve the generator to many clients over HTTP (Ray Serve; the [scale] extra)")
    add_models_argument(s)
    s.add_argument("--replicas", type=int, help="model copies (default: one per GPU in the cluster, else 1)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default loopback; for other hosts put a TLS reverse proxy in front)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--token", help=f"the token clients must send (Authorization: Bearer ...); default ${TOKEN_ENV}")
    s.add_argument("--device", default="auto", help="auto, cuda or cpu (each replica)")
    s.add_argument("--max-batch", type=int, default=8, help="requests one replica runs together (default 8)")
    s.add_argument("--batch-wait", type=float, default=0.1,
                   help="seconds a replica waits for more requests to batch (default 0.1)")
    s.add_argument("--ray", metavar="ADDRESS", help="an existing Ray cluster (default: start Ray on this machine)")
    s.add_argument("--smpl-dir", help="your SMPL model folder for fitting (default: skeleton-only fit)")
    s.add_argument("--generator", help=argparse.SUPPRESS)
    s.add_argument("--fitter", help=argparse.SUPPRESS)
    s.set_defaults(run=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    from backend.scale import check_reachable, import_ray

    token = args.token or os.environ.get(TOKEN_ENV)
    if not token or len(token) < 8:
        raise UserError(f"--token (or ${TOKEN_ENV}) is required: at least 8 characters that clients will send")
    if args.replicas is not None and args.replicas < 1:
        raise UserError("--replicas must be >= 1")
    if not 1 <= args.max_batch <= 64:
        raise UserError("--max-batch must be 1..64")
    if not 0 <= args.batch_wait <= 10:
        raise UserError("--batch-wait must be 0..10 seconds")
    if not 1 <= args.port <= 65535:
        raise UserError("--port must be 1..65535")
    require_models_dir(models_dir(args.models))
    ray = import_ray()
    if args.ray:
        check_reachable(args.ray)
    from backend.scale import service

    if not _is_loopback(args.host):
        print(f"remomask: note: serving on {args.host}, not loopback: the token travels in clear text unless a "
              "TLS reverse proxy is in front (README: Scaling out on Ray)", file=sys.stderr)
    try:
        ray.init(address=args.ray, include_dashboard=False, log_to_driver=False) if args.ray else \
            ray.init(include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"could not start or reach Ray ({args.ray or 'local'}): {exc}", exit_code=1) from None
    gpus = int(ray.cluster_resources().get("GPU", 0)) if args.device != "cpu" else 0
    replicas = args.replicas or gpus or 1
    cfg = service.ServiceConfig(models=args.models, device=args.device, token_sha256=service.token_digest(token),
                                max_batch_size=args.max_batch, batch_wait_s=args.batch_wait, smpl_dir=args.smpl_dir,
                                generator=args.generator, fitter=args.fitter)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            service.start(cfg, replicas, args.host, args.port, gpus_per_replica=1 if gpus else 0)
        except Exception as exc:  # noqa: BLE001 - models that do not load, a port in use: one line
            raise UserError(f"the service did not start: {type(exc).__name__}: {str(exc).splitlines()[-1][:500]}",
                            exit_code=1) from None
        url = f"http://{args.host}:{args.port}"
        print(f"remomask: serving {url}/v1 ({replicas} replica(s), batches of up to {args.max_batch}); "
              "Ctrl-C stops", file=sys.stderr)
        print(url, flush=True)
        stop.wait()
    finally:
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    return EXIT_OK
