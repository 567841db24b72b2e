"""``remomask describe MOTION [--k 5] [--models DIR] [--json]``: the retrieval database's captions and motions
closest to a motion file (a motion .npz, a joints .npy or a BVH on the SMPL skeleton), with cosine scores.

Retrieval over the model's own database (Part-TMR, motion -> text), not free-form captioning: every caption
printed is one of the database's.
"""

from __future__ import annotations

import json

from backend.errors import EXIT_OK, UserError

from .common import add_models_argument, load_generator, models_dir


def add_parser(sub) -> None:
    d = sub.add_parser("describe", help="the closest captions and motions of the model's database to a motion file")
    d.add_argument("motion", help="a motion .npz, a joints .npy or a BVH on the SMPL/HumanML3D skeleton")
    d.add_argument("--k", type=int, default=5, help="how many captions and motions (1..100, default 5)")
    add_models_argument(d)
    d.add_argument("--device", default="cpu", help="auto, cuda or cpu (default cpu)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(run=run)


def load_embedder(models_arg, device_arg: str = "cpu"):
    """The models folder's Part-TMR as a MotionEmbedder (UserError when it has none)."""
    import torch

    from backend.library.embed import MotionEmbedder

    if device_arg == "cpu":
        torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
    gen, _ = load_generator(models_dir(models_arg), device_arg)
    return MotionEmbedder.from_pipeline(gen.pipeline)


def run(args) -> int:
    from backend.library.describe import MAX_K, describe_motion
    from backend.library.reading import read_motion

    if not 1 <= args.k <= MAX_K:
        raise UserError(f"--k must be in 1..{MAX_K}")
    motion = read_motion(args.motion)  # a bad file fails before the models load
    emb = load_embedder(args.models, args.device)
    res = describe_motion(emb, motion, args.k)
    if args.json:
        print(json.dumps(res, indent=1))
        return EXIT_OK
    print(f"{res['source']}: {res['frames']} frames, {res['seconds']:g} s"
          + (f" (its prompt: {res['prompt']!r})" if res["prompt"] else ""))
    print("closest captions of the model's database (motion -> text, cosine):")
    for c in res["captions"]:
        print(f"  {c['score']:.3f}  {c['caption']}  [{c['id']}]")
    print("closest database motions (motion -> motion, cosine):")
    for m in res["motions"]:
        print(f"  {m['score']:.3f}  {m['id']}: {m['caption']}")
    for w in res["warnings"]:
        print(f"note: {w}")
    return EXIT_OK
