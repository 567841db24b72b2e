"""``remomask edit``: edit a motion file with the generator (backend/editing).

    remomask edit SOURCE.npz --task inpaint --frames 40:80 --prompt "jumps" --out DIR [--seed N --samples K
                  --models DIR]
    remomask edit SOURCE.npz --task loop [--mode return|travel]
    remomask edit SOURCE.npz --task bodypart --part arms --frames 0:120 --prompt "waves both hands"
    remomask edit SOURCE.npz --task inbetween --to OTHER.npz --seconds 2 --prompt "turns around"
    remomask edit SOURCE.npz --task prefix --seconds 3 --prompt "sits down"

Without ``--models``: ``$REMOMASK_MODELS``, else the shipped starter model. Writes one motion file per sample (like ``remomask
generate``), recording the source and the edited frames; bad input exits 2 with one ``error:`` line and writes
nothing.
"""

from __future__ import annotations

import argparse

from backend.editing.limits import LOOP_MODES, PART_NAMES, PLACES, TASKS
from backend.errors import EXIT_INTERRUPTED, EXIT_OK, UserError
from backend.serving import protocol as P

from .common import add_models_argument
from .generate import FLAGS, run_request

# edit parameter -> the argument that sets it (for messages)
EDIT_FLAGS = {**FLAGS, "frames": "--frames", "part": "--part", "prompt": "--prompt", "to": "--to",
              "seconds": "--seconds", "mode": "--mode", "place": "--place", "source": "SOURCE", "task": "--task"}


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
    add_models_argument(e)
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
    e.add_argument("--no-ground-feet", action="store_true", help="fit without foot grounding")
    e.set_defaults(run=run)


def _frames(text):
    if text is None:
        return None
    a, sep, b = str(text).partition(":")
    try:
        return [int(a), int(b)] if sep else None
    except ValueError:
        return None


def params_from_args(args):
    """argparse namespace -> validated EditParams (raises UserError with one line naming the argument)."""
    from backend.editing.request import validate_edit

    raw = {"source": args.source, "task": args.task, "seed": args.seed, "samples": args.samples,
           "use_retrieval": not args.no_retrieval, "fit": not args.no_fit, "out_dir": args.out,
           "ground_feet": not args.no_ground_feet,
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
        raise UserError(exc.message_for(EDIT_FLAGS)) from None


def run(args) -> int:
    from backend.serving.generators import Cancelled

    try:
        paths = run_request(args, params_from_args(args), what="edited motion(s)")
    except Cancelled:
        return EXIT_INTERRUPTED
    for p in paths:
        print(p)
    return EXIT_OK
