"""Seconds per frame of the render presets at 720p (preview = Workbench, final = Cycles CPU/EEVEE GPU).

    python bench/render.py [--frames N] [--resolution 720p] [--final-samples S]

Renders a keyed SMPL mannequin (a synthetic walk) with the same code path as the add-on and
`remomask render`, and prints one line per preset. The first frame of each preset is a warm-up
(shader/kernel compilation) and is reported separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="remomask-bench-"))

import bpy  # noqa: E402

from remomask_addon.blender import motion_to_armature, render_presets as rp  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=4, help="timed frames per preset (after one warm-up)")
    ap.add_argument("--resolution", default="720p", choices=sorted(rp.RESOLUTIONS))
    ap.add_argument("--final-samples", type=int, default=None, help="override the final preset's samples")
    args = ap.parse_args()

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=40))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Blender {bpy.app.version_string}")
    for quality in ("preview", "final"):
        if quality == "final" and args.final_samples:
            rp.QUALITY["final"] = rp.QualityPreset("CYCLES", args.final_samples, "override")
        out = tempfile.mkdtemp()
        opts = rp.RenderOptions(mode="frames", quality=quality, resolution=args.resolution,
                                frame_start=1, frame_end=1 + args.frames)
        job = rp.RenderJob(scene, arm, os.path.join(out, "frames"), opts)
        engine = scene.render.engine
        times = []
        t = time.perf_counter()
        while job.step():
            now = time.perf_counter()
            times.append(now - t)
            t = now
        times.append(time.perf_counter() - t)
        warm, timed = times[0], times[1:]
        per = sum(timed) / len(timed)
        print(f"{quality:8s} {engine:18s} {args.resolution} samples={rp.QUALITY[quality].samples:3d}: "
              f"{per:.2f} s/frame over {len(timed)} frames (first frame {warm:.2f} s)")


if __name__ == "__main__":
    main()
