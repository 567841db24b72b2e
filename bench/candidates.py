"""Best of N on the starter: what drawing each motion N times costs, side by side with drawing the N one at a time.

The starter keeps the best of 4 draws (its ``generation.json``: ``candidates``; README "Best of four"). The
pipeline samples the draws of one motion as one batch (``Pipeline._sample_rows``: draws of the same length
together, a generator per row). This bench times, in one process on the shipped starter, the same prompts and seeds:

* ``single``: one draw per motion (``candidates=1``);
* ``best of N, batched``: the shipped path;
* ``best of N, one at a time``: the same N draws, each sampled alone (the control flow before batching: one batch
  of one per draw), then the same re-ranking.

Per setting: one warm-up, then ``--repeats`` runs, interleaved; medians of wall-clock time per request and per
motion. Also checks that the batched and one-at-a-time paths keep the same draw for most motions (they draw the
same random numbers; float rounding in a batch can flip a near-tie, rarely).

    python bench/candidates.py [--n 4] [--repeats 3] [--threads 1] [--prompts 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = ["a person walks forward", "someone jumps twice", "a person waves with the right hand",
           "doing star jumps", "karate kata", "a person sits down", "turns around", "someone dances salsa",
           "a man kicks with his left leg", "a person crawls on all fours", "someone bows", "a woman claps"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4, help="draws per motion (default 4, the starter's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=8, help=f"prompts per request (1..{len(PROMPTS)})")
    a = ap.parse_args(argv)
    import numpy as np
    import torch

    from backend.generation.model_folder import load_pipeline

    torch.set_num_threads(a.threads)
    pipe = load_pipeline()
    prompts = PROMPTS[:max(1, min(a.prompts, len(PROMPTS)))]
    batched = pipe._sample_rows

    def one_at_a_time(prompt, tok, gens, seed, ids, cond, sp, report, check, cancelled):
        out = []
        for g, i in zip(gens, ids):
            out += batched(prompt, tok, [g], seed, [i], cond, sp, report, check, cancelled)
        return out

    def run(name):
        pipe._sample_rows = one_at_a_time if name == "alone" else batched
        t0 = time.perf_counter()
        out = pipe.generate(prompts, seed=0, candidates=1 if name == "single" else a.n)
        return time.perf_counter() - t0, out

    names = ("single", "batched", "alone")
    for name in names:
        run(name)  # warm-up: the reader's encoder, caches
    times: dict = {k: [] for k in names}
    outs: dict = {}
    for _ in range(a.repeats):
        for name in names:
            dt, outs[name] = run(name)
            times[name].append(dt)
    same = float(np.mean([np.allclose(x.features, y.features, atol=1e-4)
                          for x, y in zip(outs["batched"], outs["alone"])]))
    label = {"single": "single draw (candidates=1)", "batched": f"best of {a.n}, batched (shipped)",
             "alone": f"best of {a.n}, one draw at a time"}
    print(f"starter, {len(prompts)} prompts per request, {a.threads} torch thread(s), {a.repeats} repeats, "
          f"medians:")
    res = {}
    for name in names:
        med = statistics.median(times[name])
        res[name] = med
        print(f"  {label[name]:34s} {med:6.2f} s per request  {1000 * med / len(prompts):6.0f} ms per motion  "
              f"({med / statistics.median(times['single']):.2f}x single)")
    print(f"  batched vs one at a time: {statistics.median(times['alone']) / statistics.median(times['batched']):.2f}x "
          f"faster; same kept draw for {same:.0%} of the motions")
    res["same_kept"] = same
    return res


if __name__ == "__main__":
    main()
