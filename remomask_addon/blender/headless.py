"""Blender-side steps of the command line: a motion file -> a scene with a keyed armature, then a render,
an export or a saved .blend. Runs in any Python that has the ``bpy`` module (``remomask render``,
``remomask export``, ``remomask demo``); motions are keyed by ``motion_to_armature.key_motions``, the same
call as the add-on's operators."""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy

from ..core import motion_io
from . import export as export_mod
from . import render_presets as rp
from .motion_to_armature import key_motions


def scene_from_motion(path: str, *, fps: int | None = None, with_mannequin: bool = True):
    """Start an empty scene and key the motion file (``.npz`` or joints ``.npy``) onto a new SMPL
    armature (with a mannequin body). Returns ``(scene, armature, action)``."""
    motion = motion_io.load_any(path)
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    src_fps = float(motion.get("fps", 20.0))
    scene.render.fps = int(fps or round(src_fps))
    scene.render.fps_base = 1.0
    name = str(motion.get("prompt") or os.path.splitext(os.path.basename(path))[0])
    keyed = key_motions(scene, [motion], name=name[:48] or "ReMoMask", with_body=with_mannequin)
    arm, action = keyed.armature, keyed.actions[0]
    lo, hi = rp.motion_frame_range(scene, arm)
    scene.frame_start, scene.frame_end = lo, hi
    scene.frame_set(lo)
    return scene, arm, action


def save_blend(path: str, *, overwrite: bool = False) -> str:
    """Save the current file to ``path`` atomically (temporary file + rename)."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    rp.check_output(path, overwrite)
    # A fresh temporary folder, not a pre-created file: Blender would keep a ".blend1" backup of it.
    try:
        tmp_dir = tempfile.mkdtemp(prefix=".remomask-save-", dir=parent)
    except OSError as err:
        raise rp.RenderError(f"Cannot write in {parent}: {err.strerror or err}") from err
    try:
        tmp = os.path.join(tmp_dir, os.path.basename(path))
        bpy.ops.wm.save_as_mainfile(filepath=tmp, copy=True, compress=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def render_file(motion_path: str, out_path: str, options: rp.RenderOptions, progress=None) -> str:
    """Render a motion file with a preset (see ``render_presets``). Returns the path written."""
    scene, arm, _ = scene_from_motion(motion_path)
    return rp.render_motion(scene, arm, out_path, options, progress=progress)


def load_rig(blend_path: str, armature_name: str):
    """Append an armature (and the meshes parented to it) from another .blend into the current scene."""
    if not os.path.isfile(blend_path):
        raise export_mod.ExportError(f"Target rig file not found: {blend_path}")
    try:
        with bpy.data.libraries.load(blend_path, link=False) as (src, dst):
            if armature_name not in src.objects:
                raise export_mod.ExportError(
                    f"No object '{armature_name}' in {blend_path}; it has: {', '.join(sorted(src.objects)[:20])}")
            dst.objects = list(src.objects)
    except OSError as err:
        raise export_mod.ExportError(f"Cannot read {blend_path}: {err}") from err
    loaded = [o for o in dst.objects if o is not None]
    rig = next(o for o in loaded if o.name == armature_name or o.name.startswith(armature_name + "."))
    if rig.type != "ARMATURE":
        raise export_mod.ExportError(f"'{armature_name}' in {blend_path} is a {rig.type.lower()}, not an armature.")
    keep = {rig} | {o for o in loaded if o.parent == rig}
    scene = bpy.context.scene
    for o in loaded:
        if o in keep:
            scene.collection.objects.link(o)
        else:
            bpy.data.objects.remove(o, do_unlink=True)
    return rig


def export_file(motion_path: str, out_path: str, *, overwrite: bool = False, target_blend: str | None = None,
                target_armature: str | None = None, bone_map=None) -> str:
    """Export a motion file as BVH/FBX/glTF (by extension): on the SMPL skeleton (with the mannequin body
    for FBX/glTF), or retargeted onto ``target_armature`` from ``target_blend`` with ``bone_map``
    (a preset name, a JSON path, or None for automatic mapping)."""
    from . import retarget

    if (target_blend is None) != (target_armature is None):
        raise export_mod.ExportError("Give both the target .blend file and the armature's name, or neither.")
    bvh = out_path.lower().endswith(".bvh")
    scene, arm, _ = scene_from_motion(motion_path, with_mannequin=not bvh and target_blend is None)
    if target_blend is not None:
        rig = load_rig(target_blend, target_armature)
        try:
            retarget.retarget_action(arm, rig, bone_map, scene=scene)
        except retarget.RetargetError as err:
            raise export_mod.ExportError(str(err)) from err
        arm = rig
    return export_mod.export_armature(arm, out_path, scene=scene, overwrite=overwrite, include_mesh=not bvh)
