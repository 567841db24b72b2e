"""Render the README's images of the Edit panel at work, with the project's own `sequence` preset (the edited
frames in orange).

    python scripts/render_edit_panel_images.py [--out docs/images]

The real generator (the shipped starter, `python -m backend.server` on the CPU) generates an 8 s walk (seed 1),
keyed onto an SMPL armature with the mannequin; the Edit panel's operators then run as a user would: Regenerate
Range 60-130 "a person jumps in place" (seed 0), back to the walk, Change Body Part (arms) 40-140 "a person waves
with the right hand"; and the walk retargeted onto a procedural Mixamo-named rig, its range 60-130 regenerated
there. Each edit is a new action version; each image shows one version.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "retarget"))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="remomask-images-"))

import bpy  # noqa: E402

import remomask_addon  # noqa: E402
from remomask_addon.blender import motion_to_armature, render_presets as rp  # noqa: E402
from remomask_addon.core import client as client_mod  # noqa: E402
from remomask_addon.ops import session  # noqa: E402


def _readme_script():
    spec = importlib.util.spec_from_file_location("render_readme_images",
                                                  os.path.join(REPO, "scripts", "render_readme_images.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _render(scene, arm, path, highlight=None):
    lo, hi = rp.motion_frame_range(scene, arm)
    opts = rp.RenderOptions(mode="sequence", quality="preview", resolution="360p", sequence_count=10,
                            overwrite=True, frame_start=lo, frame_end=hi, highlight=highlight)
    rp.render_motion(scene, arm, path, opts)
    print("wrote", path)


def _edit(op, **props):
    ep = bpy.context.scene.remomask_edit
    for k, v in props.items():
        setattr(ep, k, v)
    res = bpy.ops.remomask.edit(op=op, synchronous=True, timeout=300)
    assert res == {'FINISHED'}, bpy.context.scene.remomask.status
    act = bpy.context.active_object.animation_data.action
    w = tuple(act["remomask_edit_window"])
    return act, (w[0], w[1] + 1)


def _select(arm):
    for o in bpy.context.scene.objects:
        o.select_set(o == arm)
    bpy.context.view_layer.objects.active = arm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "images"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    remomask_addon.register()
    client = client_mod.BackendClient(sys.executable, os.path.join(REPO, "backend", "starter"), "cpu",
                                      project_dir=REPO, env={"OMP_NUM_THREADS": "1"})
    session._CLIENT = client
    session.get_client = lambda settings: client
    try:
        tmp = tempfile.mkdtemp(prefix="remomask-edit-images-")
        rid = client.request("generate", {"prompt": "a person walks forward", "length_s": 8.0, "seed": 1,
                                          "out_dir": tmp})
        walk_path = next(e for e in client.wait(rid, timeout=300) if "result" in e)["result"]["motions"][0]["path"]
        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        scene.render.fps = 20
        arm, walk = motion_to_armature.import_motion(bpy.context, walk_path)
        _select(arm)
        _render(scene, arm, os.path.join(args.out, "edit_panel_source.png"))
        _, w = _edit('REGENERATE', prompt="a person jumps in place", range_start=60, range_end=130, seed=0)
        _render(scene, arm, os.path.join(args.out, "edit_panel_regenerate.png"), w)
        bpy.ops.remomask.edit_use_version(action=walk.name)
        _, w = _edit('BODYPART', prompt="a person waves with the right hand", range_start=40, range_end=140,
                     part='ARMS', seed=0)
        _render(scene, arm, os.path.join(args.out, "edit_panel_arms.png"), w)
        # the same walk on a Mixamo-named rig, edited there through the retarget path
        import rigs
        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        scene.render.fps = 20
        rig = rigs.build_armature(bpy, "Mixamo", rigs.mixamo_bones(rigs.target_joints(leg_scale=1.1)))
        _readme_script()._capsule_body(rig)
        motion_to_armature.key_motions(scene, [walk_path], armature=rig, placement=None, select=False)
        scene.remomask.bone_map = 'mixamo'
        _select(rig)
        _, w = _edit('REGENERATE', prompt="a person jumps in place", range_start=60, range_end=130, seed=0)
        _render(scene, rig, os.path.join(args.out, "edit_panel_mixamo.png"), w)
    finally:
        client.stop()
        session._CLIENT = None
        remomask_addon.unregister()


if __name__ == "__main__":
    main()
