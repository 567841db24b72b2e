"""Motion library benchmark: indexing speed with the shipped starter's Part-TMR on CPU, and search latency
over large libraries (synthetic embeddings): exact FAISS IndexFlatIP vs approximate IndexHNSWFlat, with the
approximate index's recall@10 against the exact one.

    python bench/library.py [--clips 60] [--sizes 10000 100000] [--dim 512] [--queries 200] [--threads 1]

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def bench_indexing(n_clips: int) -> dict:
    from backend.generation.model_folder import load_pipeline
    from backend.library.embed import MotionEmbedder
    from backend.library.index import build_index
    from backend.library.search import load_index, search_text
    from backend.synthetic import FAMILIES, generate_clip

    emb = MotionEmbedder.from_pipeline(load_pipeline(None))
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        frames = 0
        for i in range(n_clips):
            c = generate_clip(FAMILIES[i % len(FAMILIES)], i)
            frames += len(c.joints)
            np.save(root / f"clip{i:04d}.npy", c.joints)
        t0 = time.perf_counter()
        rep = build_index(emb, root)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_index(emb, root)  # nothing changed: all reused
        again = time.perf_counter() - t0
        lib = load_index(root, emb)
        t0 = time.perf_counter()
        for _ in range(20):
            search_text(emb, lib, "a person jumps in place", k=10)
        text_ms = (time.perf_counter() - t0) / 20 * 1000
    return {"clips": n_clips, "windows": rep.windows, "seconds_of_motion": round(frames / 20, 1),
            "index_s": round(first, 2), "clips_per_s": round(n_clips / first, 1),
            "unchanged_reindex_s": round(again, 2), "text_search_ms": round(text_ms, 2)}


def _clustered(n: int, dim: int, rng, clusters: int = 500) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(clusters, size=n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_search(n: int, dim: int, n_queries: int, seed: int = 0) -> dict:
    import faiss

    rng = np.random.default_rng(seed)
    x = _clustered(n, dim, rng)
    q = x[rng.integers(n, size=n_queries)] + 0.3 * rng.standard_normal((n_queries, dim)).astype(np.float32) / np.sqrt(dim) * 4
    q = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True), np.float32)
    out = {"windows": n, "dim": dim, "queries": n_queries}
    flat = faiss.IndexFlatIP(dim)
    t0 = time.perf_counter()
    flat.add(x)
    out["flat_build_s"] = round(time.perf_counter() - t0, 3)
    flat.search(q[:1], 10)  # warm-up
    t0 = time.perf_counter()
    for i in range(n_queries):
        flat.search(q[i:i + 1], 10)
    out["flat_ms_per_query"] = round((time.perf_counter() - t0) / n_queries * 1000, 3)
    _, exact = flat.search(q, 10)
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    t0 = time.perf_counter()
    hnsw.add(x)
    out["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
    for ef in (32, 128):
        hnsw.hnsw.efSearch = ef
        t0 = time.perf_counter()
        for i in range(n_queries):
            hnsw.search(q[i:i + 1], 10)
        out[f"hnsw_ef{ef}_ms_per_query"] = round((time.perf_counter() - t0) / n_queries * 1000, 3)
        _, approx = hnsw.search(q, 10)
        out[f"hnsw_ef{ef}_recall@10"] = round(float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])), 4)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dim", type=int, default=512, help="embedding size of the synthetic libraries (official: 512)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import faiss
    import torch

    torch.set_num_threads(a.threads)
    faiss.omp_set_num_threads(a.threads)
    res = {"machine": {"cpus": os.cpu_count(), "threads": a.threads, "load_avg": [round(v, 2) for v in os.getloadavg()]}}
    res["indexing"] = bench_indexing(a.clips)
    i = res["indexing"]
    print(f"indexing (starter Part-TMR, CPU): {i['clips']} clips ({i['seconds_of_motion']} s of motion, "
          f"{i['windows']} windows) in {i['index_s']} s = {i['clips_per_s']} clips/s; unchanged re-index "
          f"{i['unchanged_reindex_s']} s; text search {i['text_search_ms']} ms")
    res["search"] = [bench_search(n, a.dim, a.queries) for n in a.sizes]
    print("\n| windows | dim | exact IndexFlatIP ms/query | HNSW build s | HNSW ef=32 ms/query (recall@10) | "
          "HNSW ef=128 ms/query (recall@10) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in res["search"]:
        print(f"| {s['windows']:,} | {s['dim']} | {s['flat_ms_per_query']} | {s['hnsw_build_s']} | "
              f"{s['hnsw_ef32_ms_per_query']} ({s['hnsw_ef32_recall@10']}) | "
              f"{s['hnsw_ef128_ms_per_query']} ({s['hnsw_ef128_recall@10']}) |")
    res["machine"]["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
