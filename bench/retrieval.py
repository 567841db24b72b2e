"""Retrieval speed: batched FAISS retriever vs the official per-caption loop.

A 30,000-entry random database (512-d, ~3 entries per source motion, like HumanML3D's database),
a batch of random query embeddings. Text encoding is excluded on both sides (a lookup stands in for
the text model), so the figures are the retrieval step only. The reference side re-states the
official ``MocoTmrRetriever.get_knn_samples`` per caption: normalise query and all N motion
embeddings, cosine similarity, full ``torch.argsort``, Python de-duplication walk over motion names.

    python bench/retrieval.py [--n 30000] [--dim 512] [--queries 64] [--k 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backend.retrieval.database import MotionDatabase  # noqa: E402
from backend.retrieval.retriever import Retriever  # noqa: E402


class Lookup:
    def __init__(self, emb):
        self.emb = torch.from_numpy(emb)
        self.dim = emb.shape[1]

    def encode(self, texts):
        return self.emb[[int(t) for t in texts]]


def reference_loop(queries, motion_features, motion_names, k, num_retrieval=10):
    """The official per-caption loop (one caption at a time, as its forward() does)."""
    motion_features = torch.as_tensor(motion_features)
    cos = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
    out = []
    for q in queries:
        t = torch.nn.functional.normalize(torch.as_tensor(q)[None], dim=-1)
        m = torch.nn.functional.normalize(motion_features, dim=-1)
        order = torch.argsort(cos(t, m), descending=True).numpy()
        picked, names = [], []
        for i in order:
            name = motion_names[i].split("_")[0]
            if name in names:
                continue
            picked.append(int(i))
            names.append(name)
            if len(picked) >= num_retrieval:
                break
        out.append(picked[:k])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch/faiss threads (0: library default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
        import faiss

        faiss.omp_set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    groups = rng.integers(0, a.n // 3, a.n)
    ids = np.array([f"{g:06d}_{i}" for i, g in enumerate(groups)])
    m = rng.standard_normal((a.n, a.dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    db = MotionDatabase(ids, ids.copy(), m, m.copy())
    q = rng.standard_normal((a.queries, a.dim)).astype(np.float32)
    texts = [str(i) for i in range(a.queries)]
    names = list(ids)

    t0 = time.perf_counter()
    r = Retriever(Lookup(q), db)
    build = time.perf_counter() - t0
    r(texts[:1], k=a.k)  # warm-up
    best_new = best_new1 = best_ref = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        out = r(texts, k=a.k)
        best_new = min(best_new, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for t in texts[:16]:
            r([t], k=a.k)
        best_new1 = min(best_new1, (time.perf_counter() - t0) / 16 * a.queries)
        t0 = time.perf_counter()
        ref = reference_loop(q, m, names, a.k)
        best_ref = min(best_ref, time.perf_counter() - t0)
    same = out.indices.tolist() == ref
    ms = 1000.0 / a.queries
    print(f"database {a.n} x {a.dim}, {a.queries} queries, k={a.k}, torch threads {torch.get_num_threads()}")
    print(f"index build:                     {build * 1000:8.1f} ms (once, at start-up)")
    print(f"reference loop (full sort):      {best_ref * ms:8.3f} ms/query")
    print(f"FAISS retriever, batch of {a.queries:<4d}:  {best_new * ms:8.3f} ms/query   speed-up {best_ref / best_new:6.1f}x")
    print(f"FAISS retriever, one at a time:  {best_new1 * ms:8.3f} ms/query   speed-up {best_ref / best_new1:6.1f}x")
    print(f"identical results: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
