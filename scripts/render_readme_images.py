"""Render the README's example images with the project's own presets (the ones the tests use).

    python scripts/render_readme_images.py [--out docs/images]

A captioned clip from the synthetic corpus -> smpl_fitting (skeleton-only) -> keyed SMPL armature with
the mannequin -> `sequence` still and one `preview` frame, plus the same motion retargeted onto a
procedural Mixamo-named rig. Deterministic (corpus seed 7).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="remomask-images-"))

import bpy  # noqa: E402

from backend.synthetic import generate_clip  # noqa: E402
from remomask_addon.blender import motion_to_armature, render_presets as rp, retarget  # noqa: E402
from smpl_fitting import fit_motion  # noqa: E402


def keyed_scene(family: str, seed: int, **params):
    clip = generate_clip(family, seed, **params)
    fit = fit_motion(clip.joints)
    motion = dict(joints=clip.joints, fps=20.0, prompt=clip.caption, seed=seed, retrieved=[], **fit.as_npz_fields())
    motion.pop("fit_model", None)
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, _ = motion_to_armature.import_motion(bpy.context, motion, name=clip.caption[:40])
    lo, hi = rp.motion_frame_range(scene, arm)
    scene.frame_start, scene.frame_end = lo, hi
    return scene, arm, clip.caption


def _capsule_body(armature):
    """A capsule per bone, rigidly skinned (vertex group per bone), for any rig."""
    import numpy as np

    from remomask_addon.blender import mannequin

    mesh = bpy.data.meshes.new(f"{armature.name} body")
    verts, faces, groups = [], [], []
    for bone in armature.data.bones:
        v, f, _ = mannequin._capsule(np.array(bone.head_local), np.array(bone.tail_local), 0.045, 0.035)
        faces += [tuple(i + len(verts) for i in face) for face in f]
        groups.append((bone.name, range(len(verts), len(verts) + len(v))))
        verts += [tuple(x) for x in v]
    mesh.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new(mesh.name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.parent = armature
    for name, idx in groups:
        obj.vertex_groups.new(name=name).add(list(idx), 1.0, "REPLACE")
    obj.modifiers.new("Armature", "ARMATURE").object = armature
    return obj


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "images"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp()

    scene, arm, caption = keyed_scene("jump_forward+walk", 7)
    p = rp.render_motion(scene, arm, os.path.join(tmp, "seq.png"),
                         rp.RenderOptions(mode="sequence", sequence_count=7, resolution="720p", scale_percent=50,
                                          caption=caption))
    shutil.copy(p, os.path.join(args.out, "sequence_still.png"))

    scene, arm, caption = keyed_scene("jump_forward", 3)
    lo, hi = rp.motion_frame_range(scene, arm)
    mid = (lo + hi) // 2
    p = rp.render_motion(scene, arm, os.path.join(tmp, "frames"),
                         rp.RenderOptions(mode="frames", resolution="720p", scale_percent=50, caption=caption,
                                          frame_start=mid, frame_end=mid))
    shutil.copy(os.path.join(p, f"frame_{mid:04d}.png"), os.path.join(args.out, "preview_frame.png"))

    # Retargeted onto a procedural Mixamo-named rig in A-pose with longer legs (the tests' rig).
    from tests.retarget.rigs import build_armature, mixamo_bones, target_joints

    scene, arm, caption = keyed_scene("kick", 5)
    target = build_armature(bpy, "Mixamo rig", mixamo_bones(target_joints(leg_scale=1.25, arm_scale=0.85,
                                                                           arm_down_deg=45.0)))
    retarget.retarget_action(arm, target, "mixamo", scene=scene)
    _capsule_body(target)
    for child in arm.children:
        child.hide_render = True
    lo, hi = rp.motion_frame_range(scene, target)
    mid = (lo + hi) // 2
    p = rp.render_motion(scene, target, os.path.join(tmp, "rt"),
                         rp.RenderOptions(mode="frames", resolution="720p", scale_percent=50,
                                          caption=f"retargeted onto a Mixamo-named A-pose rig: {caption}",
                                          frame_start=mid, frame_end=mid))
    shutil.copy(os.path.join(p, f"frame_{mid:04d}.png"), os.path.join(args.out, "retarget_mixamo.png"))
    print("wrote", sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()
