"""``remomask info [--models DIR] [--json] [--load]``: what a models folder holds (without ``--load``, no
weights are read); with ``--load`` every model is loaded and the pipeline's own description is printed. Both
end with what the model knows: its families (label, source, one example prompt) from ``coverage.json``."""

from __future__ import annotations

import argparse
import json
import sys

from backend.errors import EXIT_OK, EXIT_USAGE

from .common import add_models_argument, load_generator, models_dir, require_models_dir


def add_parser(sub) -> None:
    i = sub.add_parser("info", help="check a models folder and print what it holds")
    add_models_argument(i)
    i.add_argument("--device", default="cpu", help="device to load on for the check (default cpu)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--load", action="store_true", help="also load every model (slower; checks the weights fit)")
    i.add_argument("--generator", help=argparse.SUPPRESS)
    i.set_defaults(run=run)


def _print(desc: dict, as_json: bool, skip=()) -> None:
    if as_json:
        print(json.dumps(desc, indent=2, default=str))
        return
    for k, v in desc.items():
        if k not in skip:
            print(f"{k}: {json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}")


def _families(models) -> tuple[list[dict], str | None]:
    """(the folder's families as JSON, a problem reading coverage.json or None)."""
    from backend.errors import ModelError
    from backend.generation.coverage import load_coverage

    try:
        return [f.to_json() for f in load_coverage(models).families], None
    except ModelError as e:
        return [], str(e)


def _print_families(families: list[dict]) -> None:
    if not families:
        print("families: not listed (the folder's coverage.json names none)")
        return
    print(f"families: {len(families)} (label, source, an example prompt)")
    for f in families:
        ex = f["examples"][0] if f["examples"] else ""
        print(f"  {f['label']} ({f['source']}): {ex!r}")


def run(args) -> int:
    models = models_dir(args.models)
    if args.generator is None and not args.load:
        require_models_dir(models)
        from backend.generation.model_folder import describe_folder

        desc = describe_folder(models)
        families, problem = _families(models)
        problems = desc.get("problems") or []
        if problem:
            problems.append(problem)
        if args.json:
            desc["families"] = families
        _print(desc, args.json, skip=("problems",))
        if not args.json:
            _print_families(families)
            for pr in problems:
                print(f"problem: {pr}")
        if problems:
            print(f"error: {models} is not a complete models folder ({len(problems)} problem(s))",
                  file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    gen, device = load_generator(models, args.device, args.generator)
    info = gen.describe()
    families, _problem = _families(models)  # the loaded pipeline has read coverage.json already
    if args.json:
        _print({**info, "families": families}, True)
        return EXIT_OK
    print(f"models folder: {info.get('path', models)}")
    print(f"kind: {info.get('kind', 'unknown')}")
    _print(info, False, skip=("path", "kind", "examples"))
    _print_families(families)
    print(f"loaded on: {device}")
    return EXIT_OK
