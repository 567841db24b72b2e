"""The ``remomask`` subcommands that run Blender headless through the ``bpy`` module:

    remomask render MOTION --out DIR|FILE [--mode video|frames|sequence] [--preset preview|final]
                    [--resolution 720p] [--scale PCT] [--camera fit|follow] [--figures K] [--no-caption]
                    [--overwrite]
    remomask export MOTION --out FILE.(fbx|bvh|glb) [--target-blend FILE --target-armature NAME]
                    [--bone-map mixamo|rigify|FILE.json] [--overwrite]
    remomask demo "prompt" --out DIR [--models DIR] [--seconds S] [--seed N] [--mode video] [--preset preview]

``demo`` is the main job: prompt -> motion (.npz + BVH) -> keyed SMPL armature with a body saved as a .blend
-> rendered video. bpy is imported only by these commands (the backend never needs it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from backend.errors import EXIT_FAIL, EXIT_OK, UserError

from .common import BLENDER_LOG, add_models_argument, blender_output_to_log, progress_bar


def add_parser(sub) -> None:
    r = sub.add_parser("render", help="render a motion file (video, PNG frames or a sequence still) with Blender")
    r.add_argument("motion", help="motion .npz (or joints .npy)")
    r.add_argument("--out", required=True, help="output folder, or a file/folder name")
    _render_options(r)
    r.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _verbose(r)
    r.set_defaults(run=cmd_render)

    e = sub.add_parser("export", help="export a motion file as FBX, BVH or glTF with Blender's exporters")
    e.add_argument("motion", help="motion .npz (or joints .npy)")
    e.add_argument("--out", required=True, help="output file: .fbx, .bvh or .glb")
    e.add_argument("--target-blend", help="a .blend holding the rig to retarget onto")
    e.add_argument("--target-armature", help="the rig's object name in --target-blend")
    e.add_argument("--bone-map", help="mixamo, rigify or a bone-map .json (default: automatic)")
    e.add_argument("--overwrite", action="store_true")
    _verbose(e)
    e.set_defaults(run=cmd_export)

    d = sub.add_parser("demo", help="prompt -> motion files, a keyed .blend and a video (the main job)")
    d.add_argument("prompt", help="the prompt (quote it)")
    d.add_argument("--out", required=True, help="output folder (created if missing)")
    add_models_argument(d)
    d.add_argument("--seconds", type=float, help="length in seconds (default: the length estimator)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto")
    d.add_argument("--no-render", action="store_true", help="stop after the .blend")
    d.add_argument("--literal", action="store_true", help="use the prompt as typed (see remomask generate --help)")
    _render_options(d, default_scale=50)
    d.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _verbose(d)
    d.set_defaults(run=cmd_demo)


def _verbose(p) -> None:
    p.add_argument("--verbose", action="store_true",
                   help=f"show Blender's own output (by default it goes to {BLENDER_LOG})")


def _render_options(p, default_scale: int = 100) -> None:
    p.add_argument("--mode", default="video", choices=["video", "frames", "sequence"])
    p.add_argument("--preset", default="preview", choices=["preview", "final"])
    p.add_argument("--resolution", default="720p", choices=["360p", "720p", "1080p", "square"])
    p.add_argument("--scale", type=int, default=default_scale, help="percent of the resolution (1..100)")
    p.add_argument("--camera", default="fit", choices=["fit", "follow"])
    p.add_argument("--figures", type=int, default=8, help="figures in a sequence still (2..64)")
    p.add_argument("--no-caption", action="store_true", help="do not burn the prompt into the images")
    p.add_argument("--highlight", metavar="START:END",
                   help="sequence still: draw these motion frames in the highlight colour (default: the frames an "
                        "edit changed, when the file is an edit)")


def _import_blender():
    try:
        from remomask_addon.blender import export, headless, render_presets  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(f"this command needs Blender as a Python module (pip install 'bpy~=4.5.0'): {exc}") \
            from None
    return export, headless, render_presets


def _options(rp, args, caption: str | None):
    return rp.RenderOptions(mode=args.mode, quality=args.preset, resolution=args.resolution,
                            scale_percent=args.scale, camera=args.camera, sequence_count=args.figures,
                            caption=None if args.no_caption else caption, overwrite=args.overwrite)


MODE_SUFFIX = {"video": ".mp4", "sequence": ".png", "frames": ""}


def _render_target(out: str, mode: str, stem: str, rp) -> str:
    """A folder (existing, or given with a trailing slash) gets a name from the motion; a file name must fit
    the mode (a video is an .mp4, a sequence still a .png, frames a folder): the suffix is added when missing,
    and a wrong one is refused rather than writing an MP4 named .png."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
        return os.path.join(out, rp.default_output_name(mode, stem))
    suffix, want = Path(out).suffix.lower(), MODE_SUFFIX[mode]
    if suffix and suffix != want:
        kind = f"a {want} file" if want else "a folder of PNG frames"
        raise UserError(f"--mode {mode} writes {kind}; --out {out} ends in {suffix}")
    return out if suffix or not want else out + want


def _render(headless, rp, motion: str, out: str, args, caption: str | None = None) -> str:
    stem = Path(motion).stem
    scene, arm, action = headless.scene_from_motion(motion)
    if caption is None:
        caption = str(action.get("remomask_prompt") or stem)
    target = _render_target(out, args.mode, stem, rp)
    opts = _options(rp, args, caption)
    hl = _highlight(getattr(args, "highlight", None), motion)
    if hl is not None:
        opts.highlight = (scene.frame_start + hl[0], scene.frame_start + hl[1])
    bar, update = progress_bar("render")
    try:
        return rp.render_motion(scene, arm, target, opts, progress=update)
    finally:
        bar.close()


def _highlight(text: str | None, motion: str) -> tuple[int, int] | None:
    """``--highlight START:END`` (motion frames), else the first range an edit changed (``edit_frames``)."""
    if text:
        a, sep, b = text.partition(":")
        try:
            lo, hi = int(a), int(b)
        except ValueError:
            sep = ""
        if not sep or hi <= lo or lo < 0:
            raise UserError(f"--highlight must be START:END motion frames with START < END, not {text!r}")
        return lo, hi
    try:
        import numpy as np

        with np.load(motion, allow_pickle=False) as z:
            if "edit_frames" in z.files and z["edit_frames"].size:
                lo, hi = (int(x) for x in z["edit_frames"].reshape(-1, 2)[0])
                return lo, hi
    except (OSError, ValueError):
        pass  # not an .npz (a joints .npy): nothing to highlight; the loader reports real problems
    return None


def _run_with_blender(body, verbose: bool = False) -> int:
    """Import the add-on's Blender modules, run ``body(export, headless, render_presets) -> [paths written]``
    with Blender's own printing sent to a log file (unless ``verbose``), then print the paths: stdout carries
    nothing else. No bpy: one error line, exit 1. A bad motion file, render or export request: one error
    line, exit 2."""
    try:
        export, headless, rp = _import_blender()
    except RuntimeError as exc:
        raise UserError(str(exc), exit_code=EXIT_FAIL) from None
    from remomask_addon.core.motion_io import MotionFileError

    try:
        with blender_output_to_log(verbose):
            paths = body(export, headless, rp)
    except (MotionFileError, rp.RenderError, export.ExportError) as exc:
        raise UserError(str(exc)) from None
    for p in paths:
        print(p)
    return EXIT_OK


def cmd_render(args) -> int:
    return _run_with_blender(lambda export, headless, rp: [_render(headless, rp, args.motion, args.out, args)],
                             args.verbose)


def cmd_export(args) -> int:
    def body(export, headless, rp):
        return [headless.export_file(args.motion, args.out, overwrite=args.overwrite, target_blend=args.target_blend,
                                     target_armature=args.target_armature, bone_map=args.bone_map)]

    return _run_with_blender(body, args.verbose)


def cmd_demo(args) -> int:
    """generate (the same function as ``remomask generate``) -> .blend -> video."""
    from .common import models_dir, require_models_dir

    require_models_dir(models_dir(args.models))  # before Blender is imported
    return _run_with_blender(lambda export, headless, rp: _demo(args, headless, rp), args.verbose)


def _demo(args, headless, rp) -> list[str]:
    from .generate import generate_files

    os.makedirs(args.out, exist_ok=True)
    gen_args = argparse.Namespace(
        prompt=[args.prompt], models=args.models, out=args.out, seed=args.seed, device=args.device,
        seconds=args.seconds, length=None, samples=1, no_fit=False, no_ground_feet=False, smpl_dir=None,
        cond_scale=None,
        time_steps=None, temperature=None, topk=None, no_retrieval=False, literal=args.literal)
    written = [str(p) for p in generate_files(gen_args)]
    npz = next((p for p in written if p.endswith(".npz")), None)
    if npz is None:
        raise UserError("the generator wrote no motion file", exit_code=EXIT_FAIL)
    stem = Path(npz).stem
    scene, arm, _ = headless.scene_from_motion(npz)
    opts = _options(rp, args, args.prompt)
    opts.keep_stage = True
    if not args.no_render:
        target = os.path.join(args.out, rp.default_output_name(args.mode, stem))
        bar, update = progress_bar("render")
        try:
            written.append(rp.render_motion(scene, arm, target, opts, progress=update))
        finally:
            bar.close()
    else:
        rp.build_stage(scene, arm, opts, list(range(scene.frame_start, scene.frame_end + 1)))
    written.append(headless.save_blend(os.path.join(args.out, stem + ".blend"), overwrite=args.overwrite))
    return written
