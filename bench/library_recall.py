"""Motion library recall (issue #17's measure): a library of corpus clips (the synthetic test split, which the
starter never trained on) mixed with the real-motion clips of ``backend.mocap`` when the data is present, indexed
with a model folder's Part-TMR (default: the shipped starter), then

- text search R@5 by family: for every family, held-out phrasings (the corpus's held-out templates; for the real
  families ``backend.mocap.heldout``) -> is a clip of that family among the first 5 hits?
- search by example R@1: a mirrored copy and a 1.25x re-timed copy of clips (written beside, not indexed) -> is
  the original clip the first hit?
- search by example family precision@5: new corpus clips (another seed, not indexed) as examples -> the share of
  the first 5 hits that are clips of the example's family;
- each search by example with the embedding only (``search_embedding``, the ranking before the pose re-ranking)
  and as the product does it (``search_like``: embedding + pose re-ranking), with the time per query.

    python bench/library_recall.py [--clips 500] [--models DIR] [--mocap DIR|none] [--threads 1] [--examples 100]

Prints a table and, last, one JSON line. The real motion is written to a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _retime(j: np.ndarray, factor: float) -> np.ndarray:
    """Play a clip ``factor`` times slower: its frames read as if taken at 20 / factor fps, resampled to 20."""
    from backend.motion.timing import resample

    return resample(j, 20.0 / factor, 20.0).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=500)
    p.add_argument("--models", default=None)
    p.add_argument("--mocap", default=None, help="real-motion folder (default: backend.mocap's); 'none' to skip")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--examples", type=int, default=100)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from backend.generation.model_folder import load_pipeline
    from backend.library.embed import MotionEmbedder
    from backend.library.index import build_index
    from backend.library.reading import read_motion
    from backend.library.search import load_index, search_embedding, search_like, search_text
    from backend.motion.features import mirror_joints
    from backend.synthetic import is_compound, make_corpus
    from backend.synthetic.corpus import caption_variants

    emb = MotionEmbedder.from_pipeline(load_pipeline(a.models))
    # single-action clips only (a two-part clip has no one family to find); enough of them for --clips
    corpus = [c for c in make_corpus(int(a.clips / 0.7) + 10, seed=7, split="test") if not is_compound(c.family)][:a.clips]
    real = []
    mocap_dir = None
    if a.mocap != "none":
        from backend.mocap import default_mocap_dir
        from backend.mocap.clips import load_mocap_corpus

        mocap_dir = Path(a.mocap) if a.mocap else default_mocap_dir()
        if mocap_dir is not None:
            real = [c for c in load_mocap_corpus(mocap_dir, seed=0) if not c.params["mirrored"]]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "library"
        root.mkdir()
        fam_of = {}
        for i, c in enumerate(corpus + real):
            name = f"{'real' if i >= len(corpus) else 'synth'}{i:05d}.npy"
            np.save(root / name, c.joints)
            fam_of[name] = c.family
        t0 = time.perf_counter()
        rep = build_index(emb, root)
        index_s = time.perf_counter() - t0
        lib = load_index(root, emb)

        # text search R@5 by family
        from backend.mocap.heldout import HELDOUT_PROMPTS

        queries = defaultdict(list)
        for c in corpus:
            if len(queries[c.family]) < 5:
                for cap in caption_variants(c, 2, rng, split="test")[1:]:
                    queries[c.family].append(cap)
        for fam, prompts in HELDOUT_PROMPTS.items():
            if any(c.family == fam for c in real):
                queries[fam] = list(prompts)
        text = {}
        for fam, qs in sorted(queries.items()):
            hits = [any(fam_of[h["file"]] == fam for h in search_text(emb, lib, q, k=5)) for q in qs]
            text[fam] = (float(np.mean(hits)), len(hits))

        # search by example R@1: mirrored and re-timed copies of indexed clips (kept out of the library)
        ex_dir = Path(d) / "examples"
        ex_dir.mkdir()
        names = sorted(fam_of)
        pick = rng.choice(len(names), size=min(a.examples, len(names)), replace=False)
        window = int(lib.meta["window"])

        def embedding_only(q, k):
            return search_embedding(lib, emb.embed([read_motion(q).features[:window]])[0], k)

        ways = {"embedding": embedding_only, "reranked": lambda q, k: search_like(emb, lib, q, k=k)}
        found = {w: {"mirrored": [], "retimed_1.25x": []} for w in ways}
        secs = {w: [] for w in ways}

        def timed(w, q, k):
            t = time.perf_counter()
            hits = ways[w](str(q), k)
            secs[w].append(time.perf_counter() - t)
            return hits

        for k in pick:
            j = np.load(root / names[k])
            for kind, jj in (("mirrored", mirror_joints(j)), ("retimed_1.25x", _retime(j, 1.25))):
                q = ex_dir / f"{kind}_{names[k]}"
                np.save(q, jj.astype(np.float32))
                for w in ways:
                    top = timed(w, q, 1)
                    found[w][kind].append(bool(top) and top[0]["file"] == names[k])
        # family precision@5: other clips of the library's families (not indexed) as examples
        others = [c for c in make_corpus(int(a.examples / 0.7) + 10, seed=8, split="test")
                  if not is_compound(c.family)][:a.examples]
        prec = {w: [] for w in ways}
        for i, c in enumerate(others):
            q = ex_dir / f"other{i:05d}.npy"
            np.save(q, c.joints)
            for w in ways:
                prec[w].append(np.mean([fam_of[h["file"]] == c.family for h in timed(w, q, 5)]))
    synth_fams = sorted({c.family for c in corpus})
    real_fams = sorted({c.family for c in real})
    out = {
        "library": {"synthetic_clips": len(corpus), "real_clips": len(real), "files": rep.files,
                    "windows": rep.windows, "index_seconds": round(index_s, 1),
                    "mocap": str(mocap_dir) if mocap_dir else None},
        "text_R@5": {f: round(v, 3) for f, (v, _) in text.items()},
        "text_R@5_synthetic_families": round(float(np.mean([text[f][0] for f in synth_fams if f in text])), 3),
        "text_R@5_real_families": (round(float(np.mean([text[f][0] for f in real_fams if f in text])), 3)
                                   if real_fams else None),
        "example_R@1": {w: {k: round(float(np.mean(v)), 3) for k, v in f.items()} for w, f in found.items()},
        "example_family_P@5": {w: round(float(np.mean(v)), 3) for w, v in prec.items()},
        "example_ms_per_query": {w: round(1000 * float(np.mean(v)), 1) for w, v in secs.items()},
        "example_ms_per_query_max": {w: round(1000 * float(np.max(v)), 1) for w, v in secs.items()},
        "examples": int(len(pick)),
        "family_examples": len(others),
    }
    print(f"library: {len(corpus)} synthetic + {len(real)} real clips, {rep.windows} windows, "
          f"indexed in {index_s:.1f} s")
    print("text search R@5 by family (held-out phrasings):")
    for f, (v, n) in sorted(text.items()):
        print(f"  {f:18s} {v:5.2f}  ({n} queries){'  [real motion]' if f in real_fams else ''}")
    for w in ways:
        print(f"search by example ({w}): R@1 over {len(pick)} clips " +
              ", ".join(f"{k} {v:.2f}" for k, v in out["example_R@1"][w].items()) +
              f"; family P@5 over {len(others)} other clips {out['example_family_P@5'][w]:.2f}; "
              f"{out['example_ms_per_query'][w]:.0f} ms/query (max {out['example_ms_per_query_max'][w]:.0f})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
