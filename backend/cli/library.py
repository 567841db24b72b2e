"""``remomask library index|search``: a searchable index of a folder of motions (backend/library).

    remomask library index FOLDER [--out INDEX] [--window 196 --stride 98] [--models DIR] [--json]
    remomask library search INDEX "someone jumps over something" [--k 10] [--json]
    remomask library search INDEX --like MOTION [--k 10] [--json]

INDEX is the index folder (default ``FOLDER/.remomask-library``) or the motion folder holding it. The index
records the model that built it; searching it with another model is refused.
"""

from __future__ import annotations

import json
import sys

from backend.errors import EXIT_OK, UserError

from .common import add_models_argument, progress_bar
from .describe import load_embedder


def add_parser(sub) -> None:
    lib = sub.add_parser("library", help="index a folder of motions and search it by text or by example")
    lsub = lib.add_subparsers(dest="library_command", metavar="index|search")
    lsub.required = True
    i = lsub.add_parser("index", help="embed every motion file under FOLDER (only new or changed files)")
    i.add_argument("folder")
    i.add_argument("--out", help="index folder (default FOLDER/.remomask-library)")
    i.add_argument("--window", type=int, default=196, help="window length in frames at 20 fps (default 196)")
    i.add_argument("--stride", type=int, default=98, help="frames between window starts (default 98)")
    add_models_argument(i)
    i.add_argument("--device", default="cpu", help="auto, cuda or cpu (default cpu)")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    i.set_defaults(run=run_index)
    s = lsub.add_parser("search", help="the windows of an index closest to a text or an example motion")
    s.add_argument("index", help="the index folder, or the motion folder holding .remomask-library")
    s.add_argument("text", nargs="?", help="what to look for, e.g. \"someone jumps over something\"")
    s.add_argument("--like", metavar="MOTION", help="search by example: a motion .npz, joints .npy or BVH")
    s.add_argument("--k", type=int, default=10, help="how many hits (default 10)")
    add_models_argument(s)
    s.add_argument("--device", default="cpu", help="auto, cuda or cpu (default cpu)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(run=run_search)


def run_index(args) -> int:
    from backend.library.index import WINDOW, build_index

    if not 8 <= args.window <= WINDOW:
        raise UserError(f"--window must be in 8..{WINDOW} frames")
    if not 1 <= args.stride <= args.window:
        raise UserError("--stride must be in 1..--window")
    emb = load_embedder(args.models, args.device)
    bar, update = progress_bar("index")
    try:
        rep = build_index(emb, args.folder, args.out, window=args.window, stride=args.stride,
                          progress=lambda f, _name: update(f))
    finally:
        bar.close()
    d = rep.to_dict()
    if args.json:
        print(json.dumps(d, indent=1))
    else:
        if rep.rebuilt_for_model:
            print("note: the previous index was built with another model: every file was embedded again")
        for f, msg in rep.errors.items():
            print(f"skipped {f}: {msg}", file=sys.stderr)
        print(f"{rep.index_dir}: {rep.files} file(s), {rep.windows} window(s); embedded {len(rep.embedded)}, "
              f"unchanged {rep.reused}, removed {len(rep.removed)}, unreadable {len(rep.errors)} "
              f"({rep.seconds:.1f} s)")
    return EXIT_OK


def run_search(args) -> int:
    from backend.library.search import MAX_K, load_index, read_meta, resolve_index_dir, search_like, search_text

    if (args.text is None) == (args.like is None):
        raise UserError("give either a TEXT to search for or --like MOTION")
    if not 1 <= args.k <= MAX_K:
        raise UserError(f"--k must be in 1..{MAX_K}")
    read_meta(resolve_index_dir(args.index))  # a missing index fails before the models load
    emb = load_embedder(args.models, args.device)
    lib = load_index(args.index, emb)
    hits = search_text(emb, lib, args.text, args.k) if args.text is not None else search_like(emb, lib, args.like, args.k)
    if args.json:
        print(json.dumps({"index": str(lib.path), "query": args.text or {"like": args.like}, "hits": hits}, indent=1))
        return EXIT_OK
    if not hits:
        print("no hits")
    for h in hits:
        print(f"{h['score']:.3f}  {h['path']}  frames {h['start']}-{h['end']} ({h['start_s']:g}-{h['end_s']:g} s)"
              + (f"  [{h['prompt']}]" if h["prompt"] else ""))
    return EXIT_OK
