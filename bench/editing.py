"""Editing with the generator: latency of each task next to plain generation of the same number of new frames,
the semantic pass rate of each task, and token transitions against feature cross-fades for "X, then Y".

    python bench/editing.py [--models DIR] [--samples 1] [--repeats 3] [--seeds 10] [--json out.json]
                            [--skip-rates] [--skip-sequences]

CPU, one torch thread. Sources are the model's own generations (a 160-frame walk, an 80-frame wave). Latency is
the median of ``--repeats`` runs of the whole task (text, retrieval, sampling, decoding, stitching), without
SMPL fitting or file writing. Rates use the checks of backend/synthetic/checks.py on the changed frames, as
tests/editing/test_starter_editing.py does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _timed(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    import torch

    from backend.editing import tasks
    from backend.editing.measures import contact_skate, joint_steps
    from backend.editing.source import source_from_joints
    from backend.editing.timeline import compose_parts, generate_timeline
    from backend.generation.model_folder import load_pipeline
    from backend.generation.prompt_parts import split_sequence
    from backend.synthetic import checks as C
    from backend.train.evaluate import SEMANTIC_SUITE, _squat

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=None)
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-rates", action="store_true")
    ap.add_argument("--skip-sequences", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    pipe = load_pipeline(a.models)
    s = a.samples

    def src(prompt, n):
        g = pipe.generate([prompt], [n], seed=1)[0]
        return source_from_joints(g.joints, g.features)

    walk, wave = src("a person walks forward", 160), src("a person waves with the right hand", 80)
    # (name, run(samples, seed), new frames, check, window of the result to check)
    jobs = [
        ("inpaint 3 s", lambda n, sd: tasks.inpaint(pipe, walk, 60, 120, "a person jumps in place", seed=sd,
                                                   samples=n), 60, C.check_jump, lambda o: o.changed[0]),
        ("bodypart arms 6 s", lambda n, sd: tasks.bodypart(pipe, walk, 20, 140, "arms",
                                                           "a person waves with the right hand", seed=sd,
                                                           samples=n), 120,
         lambda j: C.check_wave(j, "right"), lambda o: (20, 140)),
        ("prefix 3 s", lambda n, sd: tasks.prefix(pipe, walk, 60, "a person sits down", seed=sd, samples=n), 60,
         C.check_sit_down, lambda o: o.changed[0]),
        ("suffix 4 s", lambda n, sd: tasks.suffix(pipe, wave, 80, "a person walks forward", seed=sd, samples=n),
         80, C.check_walk_forward, lambda o: o.changed[0]),
        ("inbetween 3 s", lambda n, sd: tasks.inbetween(pipe, walk, wave, "a person jumps in place", 60,
                                                        seed=sd, samples=n), 60, C.check_jump,
         lambda o: o.changed[0]),
        ("outpaint 3 s + 3 s", lambda n, sd: tasks.outpaint(pipe, wave, 60, 60, "a person jumps in place", seed=sd,
                                                             samples=n), 120, C.check_jump,
         lambda o: o.changed[1]),
        ("loop return", lambda n, sd: tasks.loop(pipe, walk, "a person walks forward", seed=sd, samples=n), 40,
         None, None),
        ("loop travel", lambda n, sd: tasks.loop(pipe, walk, "a person walks forward", mode="travel", seed=sd,
                                                 samples=n), 40, None, None),
        ("X while Y 6 s", lambda n, sd: pipe.generate(["a person walks forward while waving with the right hand"],
                                                      [120], seed=sd, samples=n), 120,
         lambda j: C.check_wave(j, "right"), lambda o: (0, len(o.joints))),
    ]
    rows = []
    for name, run, new, check, window in jobs:
        t_edit, _ = _timed(lambda: run(s, 0), a.repeats)
        plain_frames = min(new, 196)
        t_plain, _ = _timed(lambda: pipe.generate(["a person jumps in place"], [plain_frames], seed=0, samples=s),
                            a.repeats)
        row = {"task": name, "new_frames": new, "edit_s": round(t_edit, 3),
               "plain_generation_s": round(t_plain, 3), "ratio": round(t_edit / t_plain, 2)}
        if check is not None and not a.skip_rates:
            out = run(a.seeds, 0)
            row["pass_rate"] = float(np.mean([bool(check(o.joints[slice(*window(o))])) for o in out]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    items = [("a person walks forward", 5), ("a person jumps in place", 5),
             ("a person waves with the right hand", 5), ("a person does a squat", 5)]
    t_tl, _ = _timed(lambda: generate_timeline(pipe, items, seed=0, samples=s), a.repeats)
    t_plain, _ = _timed(lambda: pipe.generate([p for p, _ in items], [100] * 4, seed=0, samples=s), a.repeats)
    row = {"task": "timeline 4 x 5 s", "new_frames": 400, "edit_s": round(t_tl, 3),
           "plain_generation_s": round(t_plain, 3), "ratio": round(t_tl / t_plain, 2)}
    if not a.skip_rates:
        checks = [C.check_walk_forward, C.check_jump, lambda j: C.check_wave(j, "right"), _squat]
        out = generate_timeline(pipe, items, seed=0, samples=a.seeds)
        row["pass_rate_per_part"] = np.mean([[bool(fn(o.joints[x:y])) for fn, (x, y) in zip(checks, o.part_frames)]
                                             for o in out], 0).tolist()
    rows.append(row)
    print(json.dumps(row), flush=True)
    t60, _ = _timed(lambda: generate_timeline(pipe, [("a person walks forward", 30), ("a person runs forward", 30)],
                                              seed=0, samples=1), 1)
    rows.append({"task": "timeline 2 x 30 s", "new_frames": 1200, "edit_s": round(t60, 3)})
    print(json.dumps(rows[-1]), flush=True)

    seq = []
    if not a.skip_sequences:
        suite = {n: (p, f) for n, p, f in SEMANTIC_SUITE}

        def acc(j):
            return np.linalg.norm(np.diff(j, 2, axis=0), axis=-1).max(-1) * 400

        for name in ("walk_then_wave", "jump_then_wave"):
            prompt, fn = suite[name]
            res = {"crossfade": [], "tokens": []}
            for seed in range(a.seeds * 2):
                pl, toks = pipe._part_tokens([prompt], [split_sequence(prompt)], None, seed)
                t0 = time.perf_counter()
                x = pipe.generate([prompt], None, seed=seed)[0]
                t1 = time.perf_counter()
                y = compose_parts(pipe, [prompt], pl, toks, seed, 1, True, None, None)[0]
                t2 = time.perf_counter()
                p = toks[0][0] * 4
                for key, m, lo, hi, dt in (("crossfade", x, p - 14, p + 6, t1 - t0),
                                           ("tokens", y, p - 10, p + 10, t2 - t1)):
                    res[key].append((bool(fn(m.joints)), acc(m.joints)[lo:hi].max(),
                                     contact_skate(m.joints)[lo:hi].max() * 20, joint_steps(m.joints)[lo:hi].max(),
                                     dt))
            for key, v in res.items():
                v = np.asarray(v, float)
                r = {"prompt": name, "join": key, "pass_rate": float(v[:, 0].mean()),
                     "seam_accel_p50_m_s2": round(float(np.median(v[:, 1])), 1),
                     "seam_accel_p90_m_s2": round(float(np.percentile(v[:, 1], 90)), 1),
                     "seam_toe_skate_p50_m_s": round(float(np.median(v[:, 2])), 2),
                     "seam_toe_skate_p90_m_s": round(float(np.percentile(v[:, 2], 90)), 2),
                     "seam_step_p90_m": round(float(np.percentile(v[:, 3], 90)), 3),
                     "seconds_median": round(float(np.median(v[:, 4])), 3)}
                seq.append(r)
                print(json.dumps(r), flush=True)

    print()
    print(f"{'task':24s} {'new frames':>10s} {'edit s':>8s} {'plain s':>8s} {'x':>6s} {'pass':>6s}")
    for r in rows:
        pr = r.get("pass_rate", r.get("pass_rate_per_part"))
        pr = "-" if pr is None else (f"{pr:.0%}" if isinstance(pr, float) else "/".join(f"{x:.0%}" for x in pr))
        print(f"{r['task']:24s} {r['new_frames']:10d} {r['edit_s']:8.2f} {r.get('plain_generation_s', float('nan')):8.2f}"
              f" {r.get('ratio', float('nan')):6.2f} {pr:>6s}")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "load_average": os.getloadavg(), "torch_threads": torch.get_num_threads()},
              "model": pipe.info.get("kind"), "samples": s, "tasks": rows, "sequences": seq}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["machine"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
