"""Measure which 2D token columns drive which joints on the shipped starter and rewrite
backend/editing/token_map.json (see backend/editing/token_map.py).

    python scripts/measure_token_map.py [--clips 10] [--draws 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import torch

    from backend.atomic import atomic_write_text
    from backend.editing.bodypart import PARTS
    from backend.editing.token_map import TABLE_PATH, blocks_for, measure
    from backend.generation.model_folder import load_pipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--out", default=str(TABLE_PATH))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    table = measure(load_pipeline(None), n_clips=args.clips, draws=args.draws)
    table["parts"] = {name: blocks_for(table, p.joints) for name, p in PARTS.items()}
    atomic_write_text(args.out, json.dumps({"starter": table}, indent=1) + "\n")
    print(json.dumps(table["parts"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
