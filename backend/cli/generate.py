"""``remomask generate "a person jumps twice" [--models DIR] --out DIR [--seconds S | --length FRAMES] ...``

Writes one motion file (``.npz``, plus a ``.bvh`` of the SMPL fit) per prompt and sample; stdout carries only
the written paths, progress goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

from backend.errors import EXIT_INTERRUPTED, EXIT_OK, GenerationFailed, UserError, WriteFailed
from backend.serving import protocol as P

from .common import add_models_argument, load_generator, models_dir, progress_bar

# request parameter -> the flag that sets it (for messages: "--seconds must be in 0.2..9.8 seconds")
FLAGS = {"length_s": "--seconds", "out_dir": "--out", "seed": "--seed", "samples": "--samples",
         "cond_scale": "--cond-scale", "time_steps": "--time-steps", "temperature": "--temperature",
         "topk": "--topk", "candidates": "--candidates"}


def add_parser(sub) -> None:
    g = sub.add_parser("generate", help="generate motion files (.npz + .bvh) from text")
    g.add_argument("prompt", nargs="*", help="one or more prompts (quote each)")
    g.add_argument("--timeline", nargs="+", metavar="PROMPT:SECONDS",
                   help="one long motion: prompts one after another, each for its seconds")
    add_models_argument(g)
    g.add_argument("--out", required=True, help="output folder (created if missing)")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help=f"length in seconds ({P.MIN_SECONDS}..{P.MAX_SECONDS}); "
                                                      "default: the model's length estimator")
    length.add_argument("--length", type=int, metavar="FRAMES",
                        help=f"length in frames at {P.FPS} fps ({P.MIN_FRAMES}..{P.MAX_FRAMES})")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--samples", type=int, default=1, help=f"samples per prompt (1..{P.MAX_SAMPLES})")
    g.add_argument("--device", default="auto", help="auto, cuda or cpu (default auto)")
    g.add_argument("--no-fit", action="store_true", help="skip SMPL fitting (joints only, no BVH)")
    g.add_argument("--no-ground-feet", action="store_true",
                   help="fit without foot grounding (feet may go through the floor and slide)")
    g.add_argument("--smpl-dir", help="your SMPL model folder for fitting (default: skeleton-only fit)")
    g.add_argument("--cond-scale", type=float, default=P.GENERATE_DEFAULTS["cond_scale"],
                   help="classifier-free guidance scale (default: the model's; 4 for the official release, "
                        "2 for the starter)")
    g.add_argument("--time-steps", type=int, default=P.GENERATE_DEFAULTS["time_steps"],
                   help="unmasking iterations (default: the model's, 10)")
    g.add_argument("--temperature", type=float, default=P.GENERATE_DEFAULTS["temperature"],
                   help="sampling temperature (default: the model's, 1)")
    g.add_argument("--topk", type=float, default=P.GENERATE_DEFAULTS["topk"],
                   help="top-k filter threshold 0..1 (default: the model's, 0.9)")
    g.add_argument("--no-retrieval", action="store_true", help="generate without retrieved motions")
    g.add_argument("--literal", action="store_true",
                   help="use the prompts as typed: never read them in the model's training words (the starter's "
                        "caption bank; see 'read ... as ...' notes)")
    g.add_argument("--candidates", type=int, default=None, metavar="N",
                   help=f"draw each motion N times and keep the one the model's own Part-TMR scores closest to the "
                        f"prompt (1..{P.MAX_CANDIDATES}; default: the model's, 4 for the starter, 1 for the official "
                        f"release; 1 is fastest)")
    g.add_argument("--generator", help=argparse.SUPPRESS)
    g.add_argument("--fitter", help=argparse.SUPPRESS)
    g.set_defaults(run=run)


def params_from(args) -> P.GenerateParams:
    """The CLI's arguments -> the protocol's validated generate params (one set of rules for both)."""
    if args.length is not None:
        if not P.MIN_FRAMES <= args.length <= P.MAX_FRAMES:
            raise UserError(f"--length must be {P.MIN_FRAMES}..{P.MAX_FRAMES} frames ({P.FPS} fps)")
        seconds = args.length / P.FPS
    else:
        seconds = args.seconds
    timeline = getattr(args, "timeline", None)
    if bool(args.prompt) == bool(timeline):
        raise UserError("give prompts or --timeline \"PROMPT:SECONDS\" ... (not both)")
    raw = {"prompts": args.prompt, "length_s": seconds, "seed": args.seed, "samples": args.samples,
           "cond_scale": args.cond_scale, "time_steps": args.time_steps, "temperature": args.temperature,
           "topk": args.topk, "use_retrieval": not args.no_retrieval, "fit": not args.no_fit,
           "out_dir": args.out, "ground_feet": not args.no_ground_feet, "literal": getattr(args, "literal", False),
           "candidates": getattr(args, "candidates", None)}
    if timeline:
        if seconds is not None:
            raise UserError("--timeline gives each part's seconds: leave out --seconds/--length")
        raw = {**{k: v for k, v in raw.items() if k not in ("prompts", "length_s")},
               "timeline": [_timeline_part(item) for item in timeline]}
    try:
        params = P.validate_generate(raw)
    except P.ProtocolError as exc:
        raise UserError(exc.message_for(FLAGS)) from None
    if args.length is not None:
        params.length_s = args.length / P.FPS
    return params


def _timeline_part(item: str) -> dict:
    prompt, sep, secs = item.rpartition(":")
    try:
        seconds = float(secs)
    except ValueError:
        sep = ""
    if not sep or not prompt.strip():
        raise UserError(f"--timeline parts are PROMPT:SECONDS, not {item!r}")
    return {"prompt": prompt, "seconds": seconds}


def generate_files(args) -> list[Path]:
    """Load the models, generate, write the files; -> the paths written (motion files, BVH). Raises UserError
    (and its kinds) for anything the user can fix, KeyboardInterrupt when interrupted."""
    return run_request(args, params_from(args))


def run_request(args, params, what: str = "motion(s)") -> list[Path]:
    """A validated generate or edit request -> load the models, run it, write the files; -> the paths."""
    from backend.serving.jobs import run_generate

    if getattr(args, "fitter", None):
        from backend.serving import postprocess

        try:
            postprocess.set_fitter(args.fitter)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    out_dir = P.ensure_out_dir(params.out_dir)  # a ProtocolError is a UserError
    models = models_dir(args.models)
    gen, device = load_generator(models, args.device, getattr(args, "generator", None))
    print(f"remomask: models {models} on {device}", file=sys.stderr)
    bar, update = progress_bar()
    stop = threading.Event()
    t0 = time.monotonic()
    try:
        out = run_generate(gen, params, out_dir, update, stop.is_set, bvh=params.fit, smpl_dir=args.smpl_dir,
                           device=device)
    except (KeyboardInterrupt, UserError):
        stop.set()
        raise
    except OSError as exc:
        raise WriteFailed(str(exc)) from None
    except Exception as exc:  # model failure: one line (no traceback)
        logging.getLogger("remomask").debug("generation failed", exc_info=True)
        raise GenerationFailed(f"generation failed: {type(exc).__name__}: {exc}") from None
    finally:
        bar.close()
    for w in out.warnings:
        print(f"note: {w}", file=sys.stderr)
    print(f"remomask: {len(out.motions)} {what} in {time.monotonic() - t0:.1f} s -> {out_dir}", file=sys.stderr)
    return list(out.paths)


def run(args) -> int:
    from backend.serving.generators import Cancelled

    try:
        paths = generate_files(args)
    except Cancelled:
        return EXIT_INTERRUPTED
    for p in paths:
        print(p)
    return EXIT_OK
