"""``remomask train <stage>|all --config starter|tiny --out DIR [--resume] ...``: hands everything after
``train`` to ``python -m backend.train`` (its own parser and ``--help``)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    t = sub.add_parser("train", add_help=False,
                       help="train model stages: remomask train <stage>|all --config starter|tiny --out DIR ...")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(run=run)


def run(args) -> int:
    from backend.train import main as train_main

    return int(train_main(args.train_args) or 0)
