"""Foot skate of generated walks vs the synthetic corpus's walks (same measure for both).

    /work/venv/bin/python bench/quality.py [--model DIR] [--n 12]

A foot (toe joint) is "in contact" on a frame when it is within 3 cm of the clip's lowest toe height; skate
is its horizontal speed on such frames. Prints the mean contact speed (cm/s) and the skating ratio (share of
contact frames faster than 2.5 cm/frame = 50 cm/s), for corpus walks and for generated walks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FPS = 20
TOES = (10, 11)  # left_foot, right_foot (HumanML3D order)


def foot_skate(joints: np.ndarray, height: float = 0.03, fast: float = 0.025) -> tuple[float, float]:
    """(mean horizontal toe speed on contact frames in m/s, share of contact frames moving > ``fast`` m/frame)."""
    j = np.asarray(joints, dtype=np.float64)
    speeds, n_fast, n = [], 0, 0
    for t in TOES:
        y = j[:, t, 1]
        ground = y.min()
        d = np.linalg.norm(np.diff(j[:, t][:, [0, 2]], axis=0), axis=-1)  # m/frame
        contact = (y[1:] < ground + height) & (y[:-1] < ground + height)
        speeds.append(d[contact])
        n_fast += int((d[contact] > fast).sum())
        n += int(contact.sum())
    s = np.concatenate(speeds)
    return (float(s.mean() * FPS) if len(s) else 0.0), (n_fast / n if n else 0.0)


def summarise(clips) -> dict:
    vals = np.array([foot_skate(c) for c in clips])
    return {"clips": len(clips), "contact_speed_cm_s": round(float(vals[:, 0].mean() * 100), 2),
            "skating_ratio": round(float(vals[:, 1].mean()), 3)}


def main(argv=None) -> int:
    import torch

    from backend.generation.project_weights import load_starter
    from backend.synthetic import generate_clip

    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None, help="model folder (default: the shipped starter)")
    p.add_argument("--n", type=int, default=12, help="walks per set")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    corpus = [generate_clip("walk", 1000 + i, direction="forward").joints for i in range(a.n)]
    pipe = load_starter(a.model)
    prompts = ["a person walks forward", "someone walks forward slowly", "a man walks ahead quickly",
               "a woman is walking forward"]
    t0 = time.monotonic()
    gen = []
    seed = 0
    while len(gen) < a.n:
        gen += [s.joints for s in pipe.generate(prompts, lengths=[120] * len(prompts), seed=seed)]
        seed += 1
    gen = gen[:a.n]
    res = {"corpus_walks": summarise(corpus), "generated_walks": summarise(gen),
           "generation_seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
