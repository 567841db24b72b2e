"""Blender-side steps of the command line: a motion file -> a scene with a keyed armature, then a render,
an export or a saved .blend. Runs in any Python that has the ``bpy`` module (``remomask render``,
``remomask export``, ``remomask demo``); the add-on's operators do the same through the UI."""

from __future__ import annotations

import os
import tempfile

import bpy

from . import export as export_mod
from . import keying, motion_io
from . import render_presets as rp


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
    arm, action = keying.import_motion(bpy.context, motion, name=name[:48] or "ReMoMask", with_mannequin=with_mannequin)
    lo, hi = rp.motion_frame_range(scene, arm)
    scene.frame_start, scene.frame_end = lo, hi
    scene.frame_set(lo)
    return scene, arm, action


def save_blend(path: str, *, overwrite: bool = False) -> str:
    """Save the current file to ``path`` atomically (temporary file + rename)."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise rp.RenderError(f"Output folder does not exist: {parent}")
    if os.path.exists(path) and not overwrite:
        raise rp.RenderError(f"{path} already exists; choose another name or allow overwriting.")
    fd, tmp = tempfile.mkstemp(prefix=".remomask-", suffix=".blend", dir=parent)
    os.close(fd)
    try:
        bpy.ops.wm.save_as_mainfile(filepath=tmp, copy=True, compress=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def render_file(motion_path: str, out_path: str, options: rp.RenderOptions, progress=None) -> str:
    """Render a motion file with a preset (see ``render_presets``). Returns the path written."""
    scene, arm, _ = scene_from_motion(motion_path)
    return rp.render_motion(scene, arm, out_path, options, progress=progress)


def export_file(motion_path: str, out_path: str, *, overwrite: bool = False) -> str:
    """Export a motion file as BVH/FBX/glTF (by extension) on the SMPL skeleton (with the mannequin
    body for FBX/glTF)."""
    scene, arm, _ = scene_from_motion(motion_path, with_mannequin=not out_path.lower().endswith(".bvh"))
    return export_mod.export_armature(arm, out_path, scene=scene, overwrite=overwrite)
