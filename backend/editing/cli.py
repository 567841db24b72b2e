"""``remomask edit``: edit a motion file with the generator (registered by ``backend.cli``).

    remomask edit SOURCE.npz --task inpaint --frames 40:80 --prompt "jumps" --out DIR [--seed N --samples K
                  --models DIR]
    remomask edit SOURCE.npz --task loop [--mode return|travel]
    remomask edit SOURCE.npz --task bodypart --part arms --frames 0:120 --prompt "waves both hands"
    remomask edit SOURCE.npz --task inbetween --to OTHER.npz --seconds 2 --prompt "turns around"
    remomask edit SOURCE.npz --task prefix --seconds 3 --prompt "sits down"

Without ``--models`` the shipped starter model is used. Writes one motion file per sample (like ``remomask
generate``), recording the source and the edited frames; bad input exits 2 with one ``error:`` line and writes
nothing.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from backend import protocol as P

from .limits import LOOP_MODES, PART_NAMES, PLACES, TASKS


def add_parser(sub) -> None:
    e = sub.add_parser("edit", help="edit a motion file: in-paint, in-between, continue, loop, body parts")
    e.add_argument("source", help="the motion file to edit (.npz from remomask, or a joints .npy)")
    e.add_argument("--task", required=True, choices=TASKS)
    e.add_argument("--frames", metavar="START:END", help="source frames [START, END) at 20 fps (inpaint, bodypart)")
    e.add_argument("--part", choices=PART_NAMES, help="body part (bodypart)")
    e.add_argument("--prompt", help="what the new motion does")
    e.add_argument("--to", metavar="OTHER.npz", help="the clip to lead into (inbetween)")
    e.add_argument("--seconds", type=float, nargs="+", metavar="S",
                   help="new motion: prefix/suffix/outpaint (outpaint: one value or BEFORE AFTER), the gap of "
                        "inbetween, the seam of loop")
    e.add_argument("--mode", choices=LOOP_MODES, default="return", help="loop: return to the start or travel on")
    e.add_argument("--place", choices=PLACES, help="inbetween/inpaint: the motion after the new frames follows "
                                                   "them (follow) or stays where it is (world)")
    e.add_argument("--models", help="models folder (default: the shipped starter model)")
    e.add_argument("--out", required=True, help="output folder (created if missing)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--samples", type=int, default=1, help=f"1..{P.MAX_SAMPLES}")
    e.add_argument("--device", default="auto", help="auto, cuda or cpu (default auto)")
    e.add_argument("--no-fit", action="store_true", help="skip SMPL fitting (joints only, no BVH)")
    e.add_argument("--smpl-dir", help="your SMPL model folder for fitting")
    e.add_argument("--cond-scale", type=float)
    e.add_argument("--time-steps", type=int)
    e.add_argument("--temperature", type=float)
    e.add_argument("--topk", type=float)
    e.add_argument("--no-retrieval", action="store_true")
    e.add_argument("--generator", help=argparse.SUPPRESS)
    e.add_argument("--fitter", help=argparse.SUPPRESS)


def _frames(text):
    if text is None:
        return None
    a, sep, b = str(text).partition(":")
    try:
        return [int(a), int(b)] if sep else None
    except ValueError:
        return None


def params_from_args(args, user_error=ValueError):
    """argparse namespace -> validated EditParams (raises ``user_error`` with one line)."""
    from .request import validate_edit

    UserError = user_error

    raw = {"source": args.source, "task": args.task, "seed": args.seed, "samples": args.samples,
           "use_retrieval": not args.no_retrieval, "fit": not args.no_fit, "out_dir": args.out,
           "cond_scale": args.cond_scale, "time_steps": args.time_steps, "temperature": args.temperature,
           "topk": args.topk}
    if args.frames is not None:
        f = _frames(args.frames)
        if f is None:
            raise UserError(f"--frames must be START:END (whole frame numbers), not {args.frames!r}")
        raw["frames"] = f
    for k in ("part", "prompt", "to", "place"):
        if getattr(args, k) is not None:
            raw[k] = getattr(args, k)
    if args.task == "loop":
        raw["mode"] = args.mode
    if args.seconds is not None:
        if len(args.seconds) > 2 or (len(args.seconds) == 2 and args.task != "outpaint"):
            raise UserError("--seconds takes one value (outpaint: one or two)")
        raw["seconds"] = args.seconds[0] if len(args.seconds) == 1 else list(args.seconds)
    try:
        return validate_edit(raw)
    except P.ProtocolError as exc:
        msg = exc.message.replace("'out_dir'", "--out")
        for k in ("seed", "samples", "cond_scale", "time_steps", "temperature", "topk", "frames", "part", "prompt",
                  "to", "seconds", "mode", "place", "source", "task"):
            msg = msg.replace(f"'{k}'", "--" + k.replace("_", "-") if k != "source" else "SOURCE")
        raise UserError(msg) from None


def cmd_edit(args, cli) -> int:
    """``cli``: the running ``backend.cli`` module (its UserError, loader and exit codes; passed in because
    ``python -m backend.cli`` runs it as ``__main__``)."""
    from backend.generators import Cancelled
    from backend.jobs import WriteError, run_generate

    UserError, EXIT_OK, EXIT_FAIL, EXIT_INTERRUPTED = cli.UserError, cli.EXIT_OK, cli.EXIT_FAIL, cli.EXIT_INTERRUPTED
    params = params_from_args(args, UserError)
    if args.fitter:
        from backend import postprocess

        try:
            postprocess.set_fitter(args.fitter)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        out_dir = P.ensure_out_dir(params.out_dir)
    except P.ProtocolError as exc:
        raise UserError(exc.message) from None
    if args.models is None:
        from backend.starter_weights import STARTER_DIR

        args.models = str(STARTER_DIR)
    gen, device = cli._load(args)
    print(f"remomask: models {args.models} on {device}", file=sys.stderr)
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", file=sys.stderr, disable=None, bar_format="{desc:<10} {bar} {n:.0f}%")
    stop = threading.Event()

    def emit(stage, fraction):
        bar.set_description_str(stage)
        bar.n = round(100 * fraction, 1)
        bar.refresh()

    t0 = time.monotonic()
    try:
        out = run_generate(gen, params, out_dir, emit, stop.is_set, bvh=params.fit, smpl_dir=args.smpl_dir,
                           device=device)
    except KeyboardInterrupt:
        stop.set()
        bar.close()
        print("remomask: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Cancelled:
        bar.close()
        return EXIT_INTERRUPTED
    except (WriteError, OSError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except Exception as exc:  # noqa: BLE001 - model failure: one line
        bar.close()
        print(f"error: edit failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    bar.close()
    for w in out.warnings:
        print(f"note: {w}", file=sys.stderr)
    for p in out.paths:
        print(p)
    print(f"remomask: {len(out.motions)} edited motion(s) in {time.monotonic() - t0:.1f} s -> {out_dir}",
          file=sys.stderr)
    return EXIT_OK
