"""Command line: ``python -m smpl_fitting --in motion.npz --out fitted.npz [--smpl-model DIR]`` or a folder:
``python -m smpl_fitting --dir FOLDER [--out-dir OUT]`` (writes ``<name>_smpl.npz`` for every ``.npz``/``.npy``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from backend.atomic import atomic_write_stream

from .errors import FitError

SUFFIX = "_smpl"


def read_motion(path: Path) -> dict:
    """Fields of a motion file: a DESIGN.md ``.npz`` (with ``joints``) or a bare ``.npy`` joints array."""
    if not path.is_file():
        raise FitError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            return {"joints": np.load(path, allow_pickle=False), "fps": np.array(20.0)}
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise FitError(f"{path}: not a readable .npz/.npy motion file ({exc})") from exc
    if "joints" not in fields:
        raise FitError(f"{path}: has no 'joints' array (fields: {', '.join(sorted(fields)) or 'none'})")
    return fields


def write_npz_atomic(path: Path, fields: dict) -> None:
    atomic_write_stream(path, lambda fh: np.savez(fh, **fields))


def fit_file(src: Path, dst: Path, args, progress=None) -> float:
    from .fit import fit_motion  # noqa: PLC0415
    fields = read_motion(src)
    fps = float(np.asarray(fields.get("fps", 20.0)).reshape(-1)[0]) if "fps" in fields else 20.0
    if abs(fps - 20.0) > 1e-6:
        raise FitError(f"{src}: fps is {fps:g}; the fit expects HumanML3D's 20 fps")
    contacts = None
    features = fields.get("features")
    frames = int(np.shape(fields["joints"])[0]) if np.ndim(fields["joints"]) else 0
    if (features is not None and np.ndim(features) == 2 and np.shape(features)[1] == 263
            and np.shape(features)[0] in (frames, frames - 1)):
        contacts = np.asarray(features, np.float64)[:, 259:263]  # the generator's foot-contact channels
    try:
        result = fit_motion(fields["joints"], smpl_model_dir=args.smpl_model, gender=args.gender,
                            refine=not args.no_refine, foot_lock=not args.no_foot_lock,
                            fit_betas=args.fit_betas, ground_feet=not args.no_ground_feet,
                            contacts=contacts if not args.no_ground_feet else None,
                            device=args.device, progress=progress)
    except FitError as exc:
        raise FitError(f"{src}: {exc}") from exc
    fields.update(result.as_npz_fields())
    write_npz_atomic(dst, fields)
    return float(result.fit_error_mm.mean())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m smpl_fitting",
                                description="Fit SMPL pose parameters to HumanML3D joints (T, 22, 3).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--in", dest="inp", type=Path, help="motion .npz (with 'joints') or joints .npy")
    src.add_argument("--dir", type=Path, help="fit every .npz/.npy in this folder")
    p.add_argument("--out", type=Path, help="output .npz (single file mode; default <in>_smpl.npz)")
    p.add_argument("--out-dir", type=Path, help="folder mode: where <name>_smpl.npz go (default: --dir)")
    p.add_argument("--smpl-model", default=None, help="SMPL model folder (SMPL_NEUTRAL.pkl, read via smplx)")
    p.add_argument("--gender", default="neutral", choices=["neutral", "male", "female"])
    p.add_argument("--fit-betas", action="store_true", help="fit SMPL shape (needs --smpl-model)")
    p.add_argument("--no-refine", action="store_true", help="analytic IK only")
    p.add_argument("--no-foot-lock", action="store_true",
                   help="feet in contact are not pinned in place (with grounding: only their height is fixed)")
    p.add_argument("--no-ground-feet", action="store_true",
                   help="no foot grounding: the fit follows the input joints, feet may go through the floor")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm  # noqa: PLC0415
    try:
        if args.inp is not None:
            out = args.out or args.inp.with_name(args.inp.stem + SUFFIX + ".npz")
            bar = tqdm(total=100, desc=args.inp.name, disable=args.quiet, file=sys.stderr,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

            def progress(stage, frac):
                weights = {"body": 0, "ik": 10, "refine": 15, "ground": 95, "done": 100}
                target = 100 if stage == "done" else weights.get(stage, 0) + (85 if stage == "refine" else 5) * frac
                bar.update(max(0.0, target - bar.n))
                bar.set_postfix_str(stage)

            err = fit_file(args.inp, out, args, progress)
            bar.close()
            print(f"{out}: mean joint error {err:.2f} mm")
            return 0
        if not args.dir.is_dir():
            raise FitError(f"{args.dir}: not a folder")
        files = sorted(f for f in args.dir.iterdir()
                       if f.suffix in (".npz", ".npy") and not f.stem.endswith(SUFFIX) and f.is_file())
        if not files:
            raise FitError(f"{args.dir}: no .npz or .npy motion files")
        out_dir = args.out_dir or args.dir
        failed = []
        for f in tqdm(files, desc="fitting", unit="motion", disable=args.quiet, file=sys.stderr):
            try:
                err = fit_file(f, out_dir / (f.stem + SUFFIX + ".npz"), args)
                tqdm.write(f"{f.name}: mean joint error {err:.2f} mm", file=sys.stderr)
            except FitError as exc:
                failed.append(f.name)
                tqdm.write(f"error: {exc}", file=sys.stderr)
        print(f"fitted {len(files) - len(failed)} of {len(files)} motions into {out_dir}")
        return 1 if failed else 0
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
