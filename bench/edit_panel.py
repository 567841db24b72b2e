"""The Edit panel's own cost in Blender (headless bpy), without the generator: reading the armature back
(``edit_apply.read_source``) and writing the result as a new action version (``edit_apply.build_versions``: keying
the result onto a temporary copy, retargeting on a non-SMPL rig, splicing into a copy of the action), on the SMPL
armature and on a Mixamo-named rig, for a 6 s and a 30 s hand-keyed action. The generator is the tests' stand-in
(``tests/addon_edit/fake_edit.py``), so the figures are the add-on's share of an edit's wall time.

    python bench/edit_panel.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "addon_edit"))
sys.path.insert(0, str(REPO / "tests" / "retarget"))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="remomask-bench-"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import bpy

    import remomask_addon
    import scenes
    from fake_edit import FakeEditClient
    from remomask_addon.blender import edit_apply
    from remomask_addon.core.edit_range import FrameRange, plan_edit

    remomask_addon.register()
    try:
        print(f"bpy {bpy.app.version_string}; {os.cpu_count()} CPUs; median of {args.repeats}")
        print("| rig | action | op | read back | write version |")
        print("| --- | --- | --- | --- | --- |")
        for kind in ("smpl", "mixamo"):
            for seconds in (6, 30):
                T = seconds * 20
                for op in ("REGENERATE", "LOOP"):
                    reads, writes = [], []
                    for _ in range(args.repeats):
                        bpy.ops.wm.read_homefile(use_empty=True)
                        scene = bpy.context.scene
                        scene.render.fps = 20
                        arm = scenes.keyed_smpl(bpy, T=T) if kind == "smpl" else scenes.keyed_mixamo(bpy, T=T)
                        act = scenes.hand_keyed(bpy, arm)
                        bm = edit_apply.smpl_bone_map(arm, "mixamo" if kind == "mixamo" else None)
                        lo, hi = edit_apply.action_range(act)
                        mid = (lo + hi) // 2
                        plan = plan_edit(op, FrameRange(mid - 35, mid + 35, "typed range"), (lo, hi), 20.0,
                                         mode="return")
                        client = FakeEditClient()
                        t0 = time.perf_counter()
                        src = edit_apply.read_source(scene, arm, plan, bm, client.out_dir)
                        t1 = time.perf_counter()
                        motions = client.edit(plan.params(src, "a person jumps"))
                        t2 = time.perf_counter()
                        edit_apply.build_versions(scene, arm, plan, motions, prompt="a person jumps", bone_map=bm,
                                                  bone_map_choice="mixamo" if kind == "mixamo" else None)
                        t3 = time.perf_counter()
                        reads.append(t1 - t0)
                        writes.append(t3 - t2)
                    print(f"| {kind} | {seconds} s | {op.lower()} (reads {plan.read[1] - plan.read[0] + 1} frames) | "
                          f"{statistics.median(reads):.2f} s | {statistics.median(writes):.2f} s |")
    finally:
        remomask_addon.unregister()


if __name__ == "__main__":
    main()
