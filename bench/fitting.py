"""Benchmark of smpl_fitting: frames per second and joint error for 196-frame sequences on CPU.

Run: python bench/fitting.py [--repeats 5] [--threads 1]
Cases: skeleton-only (rest skeleton from the input) and SMPL (synthetic SMPL-format model through smplx),
clean synthetic motion and the same with 3 mm joint noise; IK alone vs IK + refinement (foot lock on).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smpl_fitting import fit_motion, skeleton as sk  # noqa: E402
from smpl_fitting.synthetic import smooth_motion, write_synthetic_smpl_model  # noqa: E402

T = 196


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5, help="motions per case")
    ap.add_argument("--threads", type=int, default=1, help="torch threads outside the refinement")
    ap.add_argument("--joints", nargs="*", default=[], help="also fit these (T, 22, 3) .npy / motion .npz files")
    args = ap.parse_args()
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    t_import = time.perf_counter() - t0
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load avg {os.getloadavg()[0]:.1f}; torch {torch.__version__}; import torch {t_import:.2f} s")
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp(prefix="bench-smpl-")
    write_synthetic_smpl_model(tmp)
    motions = []
    for _ in range(args.repeats):
        poses, trans = smooth_motion(T, rng)
        motions.append(sk.forward_kinematics(sk.TEMPLATE_REST_JOINTS + [0, -0.22, 0.02], poses, trans)[:, :22])

    # cold: the first refinement in a fresh process (lazy imports, allocator warm-up)
    t0 = time.perf_counter()
    fit_motion(motions[0])
    print(f"first call in the process (skeleton-only, IK + refine): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    fit_motion(motions[0], smpl_model_dir=tmp, refine=False)
    print(f"first SMPL call (loads the model through smplx): {time.perf_counter() - t0:.2f} s")

    print(f"\n{'body':9} {'input':12} {'method':12} {'s / 196 fr':>10} {'frames/s':>9} {'mean mm':>8} {'max mm':>7}")
    for body, model_dir in (("skeleton", None), ("smpl", tmp)):
        for noise in (0.0, 0.003):
            for refine in (False, True):
                times, means, maxes = [], [], []
                for i, clean in enumerate(motions):
                    joints = clean + np.random.default_rng(i).normal(0, noise, clean.shape) if noise else clean
                    t0 = time.perf_counter()
                    res = fit_motion(joints, smpl_model_dir=model_dir, refine=refine)
                    times.append(time.perf_counter() - t0)
                    err = np.linalg.norm(res.joints[:, :22] - clean, axis=-1) * 1000  # vs the clean motion
                    means.append(err.mean())
                    maxes.append(err.max())
                med = float(np.median(times))
                label = "clean" if not noise else f"noise {noise * 1000:.0f} mm"
                print(f"{body:9} {label:12} {'IK + refine' if refine else 'IK only':12} {med:10.3f} "
                      f"{T / med:9.0f} {np.mean(means):8.2f} {np.max(maxes):7.2f}")
    print("\nerrors are against the clean motion; timings are medians over", args.repeats, "motions")
    for path in args.joints:
        joints = np.load(path) if path.endswith(".npy") else np.load(path)["joints"]
        for refine, lock in ((False, False), (True, False), (True, True)):
            t0 = time.perf_counter()
            res = fit_motion(joints, refine=refine, foot_lock=lock, ground_feet=False)  # accuracy to the input
            dt = time.perf_counter() - t0
            err = np.linalg.norm(res.joints[:, :22] - joints, axis=-1) * 1000
            method = "IK only" if not refine else ("IK + refine" + (" + foot lock" if lock else ""))
            print(f"{Path(path).name} ({len(joints)} frames) {method:25} {dt:.3f} s  mean {err.mean():.2f} mm  "
                  f"max {err.max():.2f} mm")


if __name__ == "__main__":
    main()
