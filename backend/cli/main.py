"""The ``remomask`` entry point: builds the parser from the command modules and applies the error contract.

Exit codes (backend/errors.py): 0 done, 1 the model or a file write failed, 2 bad input (arguments, models
folder, a motion file), 130 interrupted. User errors print one ``error: ...`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from backend import __version__
from backend.errors import EXIT_INTERRUPTED, UserError

from . import batch, blender, describe, edit, generate, info, library, serve, train

COMMANDS = (generate, edit, describe, library, info, train, blender, batch, serve)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="remomask", description="ReMoMask text-to-motion (generator backend).")
    ap.add_argument("--version", action="version", version=f"remomask {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # everything after "train" (its --help too) belongs to backend.train
        args = argparse.Namespace(train_args=argv[1:], run=train.run)
    else:
        args = build_parser().parse_args(argv)  # argparse itself exits 2 with a usage line on bad arguments
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="remomask %(levelname)s: %(message)s")
    try:
        return args.run(args)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("remomask: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
