"""``remomask`` command line: generate motions to files, inspect a models folder.

    remomask generate "a person jumps twice" --models DIR --out DIR [--seconds S | --length FRAMES]
                      [--seed N] [--samples K] [--device auto|cuda|cpu] [--no-fit]
    remomask generate --timeline "a person walks forward:4" "jumps twice:3" --models DIR --out DIR
    remomask edit SOURCE.npz --task inpaint|inbetween|prefix|suffix|outpaint|loop|bodypart ... --out DIR
                  (backend/editing/cli.py)
    remomask info --models DIR [--json] [--load]
    remomask train <stage>|all --config starter|tiny [...]   (python -m backend.train)
    remomask render | export | demo ...   (Blender side, see backend/cli_blender.py)

Exit codes: 0 done, 1 the model or a file write failed, 2 bad input (arguments, models folder),
130 interrupted. User errors print one ``error: ...`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

from . import __version__
from . import protocol as P
from .generators import Cancelled, GeneratorError, make_generator, resolve_device

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UserError(Exception):
    pass


class LoadFailed(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="remomask", description="ReMoMask text-to-motion (generator backend).")
    ap.add_argument("--version", action="version", version=f"remomask {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("generate", help="generate motion files (.npz + .bvh) from text")
    g.add_argument("prompt", nargs="*", help="one or more prompts (quote each)")
    g.add_argument("--timeline", nargs="+", metavar="PROMPT:SECONDS",
                   help="one long motion: prompts one after another, each for its seconds")
    g.add_argument("--models", required=True, help="models folder (official release or starter model)")
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
    g.add_argument("--generator", help=argparse.SUPPRESS)
    g.add_argument("--fitter", help=argparse.SUPPRESS)

    i = sub.add_parser("info", help="check a models folder and print what it holds")
    i.add_argument("--models", required=True)
    i.add_argument("--device", default="cpu", help="device to load on for the check (default cpu)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--load", action="store_true", help="also load every model (slower; checks the weights fit)")
    i.add_argument("--generator", help=argparse.SUPPRESS)

    t = sub.add_parser("train", add_help=False,
                       help="train model stages: remomask train <stage>|all --config starter|tiny [--resume] ...")
    t.add_argument("train_args", nargs=argparse.REMAINDER)

    from .cli_blender import add_parsers  # noqa: PLC0415 - Blender-side subcommands (bpy imported lazily)
    add_parsers(sub)
    from .editing.cli import add_parser as add_edit_parser  # noqa: PLC0415 - remomask edit
    add_edit_parser(sub)
    return ap


def _load(args):
    models = Path(args.models).expanduser()
    if not models.is_dir():
        raise UserError(f"models folder not found: {models}")
    try:
        device = resolve_device(args.device)
        gen = make_generator(args.generator)
        gen.load(models, device)
    except GeneratorError as exc:
        raise UserError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - unreadable files etc.: one line, not a traceback
        raise LoadFailed(f"could not load the models from {models}: {type(exc).__name__}: {exc}") from None
    return gen, device


def _params(args) -> P.GenerateParams:
    if args.length is not None:
        if not P.MIN_FRAMES <= args.length <= P.MAX_FRAMES:
            raise UserError(f"--length must be {P.MIN_FRAMES}..{P.MAX_FRAMES} frames ({P.FPS} fps)")
        seconds = args.length / P.FPS
    else:
        seconds = args.seconds
    if bool(args.prompt) == bool(args.timeline):
        raise UserError("give prompts or --timeline \"PROMPT:SECONDS\" ... (not both)")
    if args.timeline:
        if seconds is not None:
            raise UserError("--timeline gives each part's seconds: leave out --seconds/--length")
        items = []
        for item in args.timeline:
            prompt, sep, secs = item.rpartition(":")
            try:
                items.append({"prompt": prompt, "seconds": float(secs)})
            except ValueError:
                sep = ""
            if not sep or not prompt.strip():
                raise UserError(f"--timeline parts are PROMPT:SECONDS, not {item!r}")
    raw = {"prompts": args.prompt, "length_s": seconds, "seed": args.seed, "samples": args.samples,
           "cond_scale": args.cond_scale, "time_steps": args.time_steps, "temperature": args.temperature,
           "topk": args.topk, "use_retrieval": not args.no_retrieval, "fit": not args.no_fit,
           "out_dir": args.out}
    if args.timeline:
        raw = {**{k: v for k, v in raw.items() if k not in ("prompts", "length_s")}, "timeline": items}
    try:
        params = P.validate_generate(raw)
    except P.ProtocolError as exc:
        msg = exc.message.replace("'length_s'", "--seconds").replace("'out_dir'", "--out")
        for k in ("seed", "samples", "cond_scale", "time_steps", "temperature", "topk"):
            msg = msg.replace(f"'{k}'", "--" + k.replace("_", "-"))
        raise UserError(msg) from None
    if args.length is not None:
        params.length_s = args.length / P.FPS
    return params


def cmd_generate(args) -> int:
    from .jobs import WriteError, run_generate  # noqa: PLC0415

    params = _params(args)
    if args.fitter:
        from . import postprocess  # noqa: PLC0415
        try:
            postprocess.set_fitter(args.fitter)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        out_dir = P.ensure_out_dir(params.out_dir)
    except P.ProtocolError as exc:
        raise UserError(exc.message) from None
    gen, device = _load(args)
    print(f"remomask: models {args.models} on {device}", file=sys.stderr)

    from tqdm import tqdm  # noqa: PLC0415

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
    except Exception as exc:  # noqa: BLE001 - model failure: one line (no traceback)
        bar.close()
        logging.getLogger("remomask").debug("generation failed", exc_info=True)
        print(f"error: generation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    bar.close()
    for w in out.warnings:
        print(f"note: {w}", file=sys.stderr)
    for p in out.paths:
        print(p)
    print(f"remomask: {len(out.motions)} motion(s) in {time.monotonic() - t0:.1f} s -> {out_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_info(args) -> int:
    models = Path(args.models).expanduser()
    if args.generator is None and not args.load:
        if not models.is_dir():
            raise UserError(f"models folder not found: {models}")
        from backend.model_folder import describe_folder  # noqa: PLC0415

        desc = describe_folder(models)
        problems = desc.get("problems") or []
        if args.json:
            print(json.dumps(desc, indent=2, default=str))
        else:
            for k, v in desc.items():
                if k != "problems":
                    print(f"{k}: {json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}")
            for pr in problems:
                print(f"problem: {pr}")
        if problems:
            print(f"error: {models} is not a complete models folder ({len(problems)} problem(s))",
                  file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    gen, device = _load(args)
    info = gen.describe()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(f"models folder: {info.get('path', args.models)}")
        print(f"kind: {info.get('kind', 'unknown')}")
        for k, v in info.items():
            if k not in ("path", "kind"):
                print(f"{k}: {v}")
        print(f"loaded on: {device}")
    return EXIT_OK


def cmd_train(args) -> int:
    """Hands the rest of the command line to ``python -m backend.train`` (see backend/train)."""
    try:
        from .train import main as train_main  # noqa: PLC0415
    except ImportError as exc:
        raise UserError(f"training code is not available: {exc}") from None
    return int(train_main(args.train_args) or 0)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # everything after "train" (its --help too) belongs to backend.train
        try:
            return cmd_train(argparse.Namespace(train_args=argv[1:]))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    ap = _parser()
    args = ap.parse_args(argv)   # argparse itself exits 2 with a usage line on bad arguments
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="remomask %(levelname)s: %(message)s")
    try:
        from .cli_blender import HANDLERS  # noqa: PLC0415
        from .editing.cli import cmd_edit  # noqa: PLC0415
        return {"generate": cmd_generate, "info": cmd_info, "train": cmd_train,
                "edit": lambda a: cmd_edit(a, sys.modules[__name__]), **HANDLERS}[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LoadFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("remomask: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
