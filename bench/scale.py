"""Scaling out on Ray: the shared service's throughput and latency, batch throughput over simulated nodes, and
Ray's own overhead per request against the single-process JSON-lines server.

    python bench/scale.py [--models DIR | --tiny] [--clients 1 4 16] [--replicas 1 2] [--requests 3]
                          [--items 24] [--renders 4] [--nodes 1 2] [--quick]

* service: for each replica count, the Ray Serve app (``backend/scale/service.py``) on a local Ray; for each
  client count, that many concurrent clients (``remomask_addon.core.remote_client``) each send ``--requests``
  generate requests one after another (2 s, fit on, different prompts): requests/s, p50/p95 latency, and the
  mean batch size the replicas saw.
* overhead: one client, requests one after another, through the single-process server (``python -m
  backend.server`` driven by the add-on's local client) and through the service with one replica: the p50
  difference is what Ray Serve + HTTP add per request (measured with ``--batch-wait 0``; the default 0.1 s wait
  for batch mates comes on top for a lone client).
* batch: ``remomask batch``'s Ray path over a simulated cluster (``ray.cluster_utils.Cluster``) of 1 and 2 nodes
  (2 logical CPUs each, the ``blender`` resource on every node): motions/min and renders/min.

Prints a table and one ``BENCH_JSON {...}`` line. On a real cluster, run the same commands against it instead
(README: Scaling out on Ray).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

TOKEN = "bench-token-1234"
VERBS = ["walks forward", "runs", "jumps twice", "waves", "kicks", "sits down", "turns left", "squats"]


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def _params(i, out_dir):
    return {"prompt": f"a person {VERBS[i % len(VERBS)]}", "seed": i, "length_s": 2.0, "out_dir": out_dir}


def _service_round(url, clients, requests, out_dir):
    from remomask_addon.core.remote_client import ServiceClient

    lat, sizes, errors = [], [], []
    lock = threading.Lock()

    def client(k):
        c = ServiceClient(url, TOKEN, timeout=300)
        for r in range(requests):
            t = time.perf_counter()
            rid = c.request("generate", _params(k * requests + r, out_dir))
            final = [e for e in c.wait(rid, 600) if e.get("id") == rid and ("result" in e or "error" in e)]
            with lock:
                if final and "result" in final[0]:
                    lat.append(time.perf_counter() - t)
                    sizes.append(final[0]["result"]["batch"]["size"])
                else:
                    errors.append(final[0]["error"] if final else "timeout")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": len(lat), "errors": len(errors), "wall_s": wall,
            "req_per_s": len(lat) / wall, "p50_s": _pct(lat, 0.5), "p95_s": _pct(lat, 0.95),
            "mean_batch": statistics.mean(sizes) if sizes else 0.0}


def bench_service(models, replica_counts, client_counts, requests, out_dir):
    import ray
    from ray import serve

    from backend.scale import service as svc
    from tests.scale.service_fixture import free_port

    port = free_port()
    # address="local": a Ray of its own, never one already running here (it would refuse num_cpus)
    ray.init(address="local", num_cpus=max(replica_counts) + 1, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        cfg = svc.ServiceConfig(models=str(models), device="cpu", token_sha256=svc.token_digest(TOKEN))
        for n in replica_counts:
            svc.start(cfg, n, "127.0.0.1", port)
            url = f"http://127.0.0.1:{port}"
            _service_round(url, min(n, 2), 1, out_dir)  # warm every replica
            for c in client_counts:
                row = {"replicas": n, **_service_round(url, c, requests, out_dir)}
                rows.append(row)
                print(f"service  replicas={n} clients={c:>2}: {row['req_per_s']:6.2f} req/s  p50 {row['p50_s']:.2f} s"
                      f"  p95 {row['p95_s']:.2f} s  mean batch {row['mean_batch']:.1f}  errors {row['errors']}",
                      flush=True)
        # Ray + HTTP alone: one replica that does not wait for batch mates (--batch-wait 0)
        from dataclasses import replace

        svc.start(replace(cfg, batch_wait_s=0.0), 1, "127.0.0.1", port)
        _service_round(url, 1, 1, out_dir)
        single = _service_round(url, 1, max(3, requests), out_dir)
    finally:
        serve.shutdown()
        ray.shutdown()
    return rows, single


def bench_single_process(models, requests, out_dir):
    from remomask_addon.core.client import BackendClient

    c = BackendClient(sys.executable, str(models), "cpu", project_dir=str(REPO), env={"OMP_NUM_THREADS": "1"})
    lat = []
    try:
        c.wait(c.request("hello"), 300)
        c.wait(c.request("generate", _params(0, out_dir)), 300)  # warm-up
        for r in range(requests):
            t = time.perf_counter()
            rid = c.request("generate", _params(r, out_dir))
            final = [e for e in c.wait(rid, 300) if e.get("id") == rid and ("result" in e or "error" in e)]
            assert final and "result" in final[0], final
            lat.append(time.perf_counter() - t)
    finally:
        c.stop()
    return {"requests": len(lat), "p50_s": _pct(lat, 0.5), "p95_s": _pct(lat, 0.95)}


def bench_batch(models, node_counts, items, renders, work):
    import ray
    from ray.cluster_utils import Cluster

    from backend.scale.batch import run_batch
    from backend.scale.stages import BatchOptions

    prompts = Path(work) / "prompts.txt"
    prompts.write_text("".join(f"a person {VERBS[i % len(VERBS)]}, take {i}\n" for i in range(items)))
    rows = []
    for n in node_counts:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"blender": 1},
                                                          "include_dashboard": False})
        for _ in range(n - 1):
            c.add_node(num_cpus=2, resources={"blender": 1})
        ray.init(address=c.address, log_to_driver=False)
        c.wait_for_nodes()
        try:
            opts = BatchOptions(models=str(models), device="cpu", render="sequence", max_renders=renders,
                                render_scale=25)
            s = run_batch(prompts, Path(work) / f"batch{n}", opts, ray=c.address, actors=n, show_progress=False)
        finally:
            ray.shutdown()
            c.shutdown()
        run = s.seconds - s.startup_s  # after the workers have loaded the models
        row = {"nodes": n, "items": s.items, "ok": s.ok, "failed": s.failed, "renders": s.renders,
               "wall_s": s.seconds, "startup_s": s.startup_s, "motions_per_min": 60 * s.motions / run,
               "renders_per_min": 60 * s.renders / run}
        rows.append(row)
        print(f"batch    nodes={n}: {row['motions_per_min']:6.1f} motions/min, {s.renders} renders "
              f"({row['renders_per_min']:.1f}/min of the run), {run:.1f} s after {s.startup_s:.1f} s start-up, "
              f"failed {s.failed}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="models folder (default: the shipped starter)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random-weight release (tests; fast)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--requests", type=int, default=3, help="requests per client")
    ap.add_argument("--items", type=int, default=24, help="batch items")
    ap.add_argument("--renders", type=int, default=4, help="batch items rendered (sequence stills, 25%% of 360p)")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="tiny model, 1 and 4 clients, 1 replica, 2 requests, "
                                                        "6 items, 2 renders, 1 and 2 nodes")
    args = ap.parse_args(argv)
    if args.quick:
        args.tiny, args.clients, args.replicas, args.requests = True, [1, 4], [1], 2
        args.items, args.renders = 6, 2
    work = tempfile.mkdtemp(prefix="remomask-bench-scale-")
    if args.tiny:
        from tests.release_fixture import make_tiny_release

        models = make_tiny_release(Path(work) / "tiny")
    else:
        from backend.cli.common import models_dir

        models = models_dir(args.models)
    out_dir = str(Path(work) / "service-out")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; models: {'tiny' if args.tiny else models}",
          flush=True)
    service, single_ray = bench_service(models, sorted(args.replicas), args.clients, args.requests, out_dir)
    single = bench_single_process(models, max(3, args.requests), out_dir)
    overhead = single_ray["p50_s"] - single["p50_s"]
    print(f"overhead one client: single-process server p50 {single['p50_s']:.3f} s, Ray service p50 "
          f"{single_ray['p50_s']:.3f} s -> Ray + HTTP add {overhead * 1000:.0f} ms per request", flush=True)
    batch = bench_batch(models, sorted(args.nodes), args.items, args.renders, work)
    print("BENCH_JSON " + json.dumps({"machine": {"cores": os.cpu_count(), "arch": platform.machine()},
                                      "models": "tiny" if args.tiny else str(models), "service": service,
                                      "single_process": single, "ray_single": single_ray,
                                      "overhead_s": overhead, "batch": batch}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
