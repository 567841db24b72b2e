"""Held-out evaluation of a trained model folder: text-to-motion retrieval on the synthetic test split and
semantic checks of generated motions (backend/synthetic/checks.py) over several seeds.

    python -m backend.train.evaluate [DIR] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

import numpy as np

from backend.synthetic import checks as C
from backend.synthetic import is_compound
from backend.synthetic.skeleton import J
from backend.train.action_checks import both, then


def _stand_up(joints) -> C.Check:
    a = np.asarray(joints)
    v = float(a[-1, 0, 1] / max(a[0, 0, 1], 1e-6))
    return C.Check(v > 1.4, v, 1.4, f"final/initial pelvis height {v:.2f} (need > 1.4)")


def _raise_both(joints) -> C.Check:
    a = np.asarray(joints)
    lw = a[:, J["left_wrist"], 1] - a[:, J["head"], 1]
    rw = a[:, J["right_wrist"], 1] - a[:, J["head"], 1]
    v = float(np.minimum(lw, rw).max())
    return C.Check(v > 0, v, 0.0, f"both wrists above the head by {v:+.3f} m at best (need > 0)")


def _squat(joints) -> C.Check:
    a = np.asarray(joints)
    h0 = max(a[0, 0, 1], 1e-6)
    low, end = float(a[:, 0, 1].min() / h0), float(a[-1, 0, 1] / h0)
    ok = low < 0.8 and end > 0.9
    return C.Check(ok, low, 0.8, f"lowest pelvis {low:.2f} of start (need < 0.8), final {end:.2f} (need > 0.9)")


def _stays(joints) -> C.Check:
    """A motion in place: the root ends within 0.5 m of where it started."""
    a = np.asarray(joints)
    v = float(np.linalg.norm(a[-1, 0, [0, 2]] - a[0, 0, [0, 2]]))
    return C.Check(v < 0.5, v, 0.5, f"root moved {v:.2f} m (need < 0.5)")


# (name, prompt, check)
SEMANTIC_SUITE: list[tuple[str, str, Callable]] = [
    ("walk_forward", "a person walks forward", C.check_walk_forward),
    ("run_forward", "a person runs forward", C.check_walk_forward),
    ("jog_forward", "someone jogs forward", C.check_walk_forward),
    ("jump_in_place", "a person jumps in place", both(C.check_jump, _stays)),
    ("jump_forward", "a man jumps forward", C.check_jump),
    ("wave_right", "a person waves with the right hand", lambda j: C.check_wave(j, "right")),
    ("wave_left", "a woman waves with the left hand", lambda j: C.check_wave(j, "left")),
    ("turn_left", "a person turns to the left", lambda j: C.check_turn(j, "left")),
    ("turn_right", "a person turns to the right", lambda j: C.check_turn(j, "right")),
    ("spin_left", "someone spins around to the left", lambda j: C.check_turn(j, "left", 180.0)),
    ("sit_down", "a person sits down", C.check_sit_down),
    ("stand_up", "a person stands up from a chair", _stand_up),
    ("raise_arms", "a person raises both arms above the head", _raise_both),
    ("squat", "a person does a squat", _squat),
    ("walk_then_wave", "a person walks forward, then waves with the right hand",
     then(C.check_walk_forward, lambda j: C.check_wave(j, "right"))),
    ("jump_then_wave", "a person jumps in place, then waves with the right hand",
     then(C.check_jump, lambda j: C.check_wave(j, "right"))),
]


# The same checks asked in phrasings the starter never trained on: sentences of the corpus's held-out
# templates (backend/synthetic/captions.py, templates 5-6 of each family).
HELDOUT_PROMPTS = {
    "walk_forward": "a person is moving forward on foot at a steady pace",
    "run_forward": "a man is running ahead quickly",
    "jog_forward": "someone moves forward at a steady jog",
    "jump_in_place": "a person jumps up and down twice on the spot",
    "jump_forward": "a woman leaps far ahead once",
    "wave_right": "a person lifts the right hand and waves hello",
    "wave_left": "someone waves twice with the left hand",
    "turn_left": "a person makes a left turn in place",
    "turn_right": "a man rotates in place, turning ninety degrees to the right",
    "spin_left": "someone rotates a full circle to the left",
    "sit_down": "a person lowers the body and sits down",
    "stand_up": "a person gets up from sitting on a chair",
    "raise_arms": "a person brings both arms up above the head, then down",
    "squat": "a man does deep knee bends twice",
    "walk_then_wave": "a man walks quickly forward and then lifts the right hand and waves hello",
    "jump_then_wave": "a woman jumps up and down twice on the spot, then lifts the right hand and waves hello",
}
HELDOUT_SUITE = [(name, HELDOUT_PROMPTS[name], fn) for name, _, fn in SEMANTIC_SUITE]


SEMANTIC_CANDIDATES = 1  # the semantic suites measure the model's single draw (their floors were set on one)


def semantic_suite(pipeline, seeds=tuple(range(20)), lengths: dict | None = None, suite=None,
                   candidates: int | None = SEMANTIC_CANDIDATES) -> dict:
    """Generate every suite prompt once per seed (``samples=len(seeds)`` in one batch per prompt set) and run
    its check; ``candidates``: draws per motion (default single draws, as PROVENANCE records them; None: the
    model's own). Returns {name: {"prompt", "pass_rate", "values", "messages"}}."""
    suite = suite or SEMANTIC_SUITE
    prompts = [p for _, p, _ in suite]
    out = {name: {"prompt": p, "passes": 0, "values": [], "messages": []} for name, p, _ in suite}
    for seed in seeds:
        ls = None if lengths is None else [lengths.get(n, 120) for n, _, _ in suite]
        res = pipeline.generate(prompts, lengths=ls, seed=int(seed), samples=1, candidates=candidates)
        for (name, _, fn), r in zip(suite, res):
            chk = fn(r.joints)
            out[name]["passes"] += int(bool(chk))
            out[name]["values"].append(round(float(chk.value), 3))
            out[name]["messages"].append(chk.message)
    for v in out.values():
        v["pass_rate"] = v["passes"] / len(seeds)
    return out


def retrieval_eval(directory=None, n_test: int | None = None, seed: int | None = None) -> dict:
    """Text -> motion retrieval on the synthetic test split (held-out phrasings) with the folder's Part-TMR,
    against the test motions (instance and family R@k) and against the shipped database (family R@1)."""
    import torch

    from backend.generation.project_weights import STARTER_DIR, load_text_model
    from backend.train.dataset import TextMotionDataset, corpus_features
    from backend.train.stages import retrieval_metrics
    from backend.motion.normalize import Normalizer
    from backend.retrieval.database import load_database
    from backend.retrieval.retriever import Retriever
    from backend.synthetic import make_corpus
    from pathlib import Path

    d = Path(directory) if directory else STARTER_DIR
    prov = json.loads((d / "PROVENANCE.json").read_text())
    cc = prov["config"]["corpus"]
    n_test = n_test or cc["n_test"]
    seed = cc["seed"] if seed is None else seed
    norm = Normalizer.load(d)
    test = TextMotionDataset(corpus_features(make_corpus(n_test, seed, split="test")), norm)
    text = load_text_model(d)
    with torch.no_grad():
        m = retrieval_metrics(text, test, prov["config"]["part_tmr"]["max_frames"])
    db = load_database(d / "database")
    r = Retriever(text, db)
    res = r([it.caption for it in test.items], k=1)
    m["database_top1_scores_mean"] = float(np.mean([s[0] for s in res.scores]))
    m["database_captions_top1"] = [c[0] for c in res.captions[:5]]
    return m


def motion_text_eval(directory=None, n_test: int | None = None, seed: int | None = None, ks=(1, 5)) -> dict:
    """Motion -> text (the reverse of :func:`retrieval_eval`, what ``remomask describe`` does) on the synthetic
    test split with the folder's Part-TMR: each test motion against (a) the test captions (instance and family
    R@k) and (b) the folder's retrieval database captions (family R@k: a hit when one of the first k distinct
    captions comes from a training clip of the motion's family; the database rows are the training corpus in
    order, ``synth<row>_0``, then any real windows or their stand-ins, ``gen<n>_0``, which never count). A two-part
    clip's family is ``first+second``."""
    import torch

    from backend.generation.model_folder import load_pipeline
    from backend.generation.project_weights import STARTER_DIR
    from backend.library.describe import _top
    from backend.library.embed import MotionEmbedder
    from backend.motion.features import joints_to_features
    from backend.synthetic import make_corpus
    from pathlib import Path

    d = Path(directory) if directory else STARTER_DIR
    cc = json.loads((d / "PROVENANCE.json").read_text())["config"]["corpus"]
    n_test = n_test or cc["n_test"]
    seed = cc["seed"] if seed is None else seed
    test = make_corpus(n_test, seed, split="test")
    train_fam = [c.family for c in make_corpus(cc["n_train"], cc["seed"], split="train")]
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
    emb = MotionEmbedder.from_pipeline(load_pipeline(d))
    m = emb.embed([joints_to_features(c.joints) for c in test])
    t = emb.embed_text([c.caption for c in test])
    fam = [c.family for c in test]
    sim = m @ t.T
    order = np.argsort(-sim, axis=1, kind="stable")
    n = len(test)
    out: dict = {"n_test": n, "database_entries": len(emb.db)}
    db = emb.db
    # rows past the procedural clips (real windows, or a shipped folder's stand-ins ``gen<n>_0``) have no procedural
    # family: never a hit for these procedural test motions
    rows = [int(g.removeprefix("synth")) if g.startswith("synth") else -1
            for g in (str(i).split("_")[0] for i in db.motion_ids)]
    db_fam = [train_fam[r] if 0 <= r < len(train_fam) else "?" for r in rows]
    st = m @ db.text_emb.T
    keys = [" ".join(str(c).lower().split()) for c in db.captions]
    for k in ks:
        out[f"m2t_R@{k}"] = float(np.mean([i in order[i, :k] for i in range(n)]))
        out[f"m2t_family_R@{k}"] = float(np.mean([any(fam[j] == fam[i] for j in order[i, :k]) for i in range(n)]))
        out[f"m2t_database_family_R@{k}"] = float(np.mean(
            [any(db_fam[j] == fam[i] for j in _top(st[i], keys, k)) for i in range(n)]))
    single = [i for i in range(n) if not is_compound(fam[i])]
    out["m2t_database_family_R@1_single_actions"] = float(np.mean(
        [db_fam[_top(st[i], keys, 1)[0]] == fam[i] for i in single]))
    return out


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(prog="python -m backend.train.evaluate")
    p.add_argument("dir", nargs="?", default=None)
    p.add_argument("--seeds", type=int, default=20)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    from backend.generation.model_folder import load_pipeline

    pipe = load_pipeline(a.dir)
    res = {"retrieval": retrieval_eval(a.dir), "semantic": semantic_suite(pipe, range(a.seeds)),
           "semantic_heldout": semantic_suite(pipe, range(a.seeds), suite=HELDOUT_SUITE)}
    for part in ("semantic", "semantic_heldout"):
        for k, v in res[part].items():
            print(f"{part:16s} {k:14s} {v['pass_rate']:.2f}  {v['values']}", file=sys.stderr)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
