"""``remomask batch PROMPTS.txt --out DIR [--samples K] [--render video|sequence|none] [--ray auto|ADDRESS]
[--resume]``: a whole prompt file generated (and rendered), in one process or over a Ray cluster
(``backend/scale/batch.py``). stdout carries only the manifest's path; progress goes to stderr."""

from __future__ import annotations

import argparse

from backend.errors import EXIT_FAIL, EXIT_OK
from backend.serving import protocol as P

from .common import add_models_argument


def add_parser(sub) -> None:
    b = sub.add_parser("batch", help="generate (and render) every prompt of a file, on one machine or a Ray cluster")
    b.add_argument("prompts", help="text file: one prompt per line, or a timeline 'PROMPT:SECONDS | PROMPT:SECONDS'")
    b.add_argument("--out", required=True, help="output folder: one sub-folder per item and manifest.jsonl")
    add_models_argument(b)
    b.add_argument("--samples", type=int, default=1, help=f"samples per prompt (1..{P.MAX_SAMPLES})")
    b.add_argument("--seed", type=int, default=0, help="the seed of the first item; item i uses seed + i")
    b.add_argument("--render", default="none", choices=["video", "sequence", "none"],
                   help="render each motion with the headless preview preset (default none)")
    b.add_argument("--max-renders", type=int, metavar="N", help="render only the first N items of the file")
    b.add_argument("--render-scale", type=int, default=50, help="percent of 360p for renders (default 50)")
    b.add_argument("--ray", metavar="auto|ADDRESS",
                   help="run on Ray: 'auto' (the cluster in $RAY_ADDRESS, else a local Ray) or a cluster address")
    b.add_argument("--actors", type=int, help="generator actors on Ray (default: one per GPU, else 1)")
    b.add_argument("--resume", action="store_true", help="continue a batch in --out: finished items are skipped")
    b.add_argument("--device", default="auto", help="auto, cuda or cpu (one-process mode and each actor)")
    b.add_argument("--no-fit", action="store_true", help="skip SMPL fitting (joints only, no BVH)")
    b.add_argument("--smpl-dir", help="your SMPL model folder for fitting (default: skeleton-only fit)")
    b.add_argument("--generator", help=argparse.SUPPRESS)
    b.add_argument("--fitter", help=argparse.SUPPRESS)
    b.set_defaults(run=run)


def run(args) -> int:
    import sys

    from backend.errors import UserError
    from backend.scale.batch import run_batch
    from backend.scale.stages import BatchOptions

    if not 1 <= args.samples <= P.MAX_SAMPLES:
        raise UserError(f"--samples must be 1..{P.MAX_SAMPLES}")
    if args.max_renders is not None and args.max_renders < 0:
        raise UserError("--max-renders must be >= 0")
    if not 1 <= args.render_scale <= 100:
        raise UserError("--render-scale must be 1..100")
    if args.actors is not None and args.actors < 1:
        raise UserError("--actors must be >= 1")
    opts = BatchOptions(models=args.models, device=args.device, samples=args.samples, seed=args.seed,
                        fit=not args.no_fit, smpl_dir=args.smpl_dir, render=args.render,
                        render_scale=args.render_scale, max_renders=args.max_renders, generator=args.generator,
                        fitter=args.fitter)
    s = run_batch(args.prompts, args.out, opts, ray=args.ray, resume=args.resume, actors=args.actors)
    print(f"remomask: {s.items} item(s): {s.ok} ok ({s.skipped} already done), {s.failed} failed; "
          f"{s.motions} motion(s), {s.renders} render(s) in {s.seconds:.1f} s", file=sys.stderr)
    print(s.manifest)
    if s.failed:
        print(f"error: {s.failed} item(s) failed after a retry; see 'error' in {s.manifest} and rerun with --resume",
              file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
