"""The actions of ``.blend`` files as motions the library can index (issue 17: "every action in .blend files,
through Blender").

The backend indexes motion files; it cannot open ``.blend`` files. Before it indexes a folder, the add-on reads
every ``.blend`` under it: its objects and actions are appended (``bpy.data.libraries.load``), each action is
played on an armature of that file (the one it is assigned to, else the one whose bones it animates most) and read
back as 22 joints at 20 fps (``read_back.armature_joints``: an SMPL armature directly, another rig through an
automatic bone map), and written as a joints ``.npy`` under ``FOLDER/.remomask-blend-actions/<the .blend's path>/
<action>.npy``. Everything appended is removed again: the open file is left as it was.

The cache is incremental: a ``.blend`` whose size and modification time are those recorded in its folder's
``stamp.json`` is not opened again (its ``.npy`` files keep their times, so the backend does not embed them
again); each ``.blend``'s folder is replaced whole (``core/atomic.atomic_dir``); the folders of vanished
``.blend`` files are removed. Actions are read at the open scene's frame rate. An action that cannot be read
(no armature of the file plays it, a rig without the 22 mapped bones) is reported with one line and skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import bpy
import numpy as np

from ..core import atomic
from . import anim_compat
from .armature import is_smpl_armature
from .read_back import ReadBackError, armature_joints

#: Must match ``backend/library/index.py`` ``BLEND_ACTIONS_DIR`` (the one hidden folder the backend indexes).
CACHE_DIR_NAME = ".remomask-blend-actions"
STAMP = "stamp.json"
#: Datablock kinds appending a .blend's objects and actions may create (all removed again).
_KINDS = ("objects", "meshes", "armatures", "actions", "materials", "images", "textures", "node_groups",
          "collections", "curves", "cameras", "lights", "lattices", "grease_pencils")
_BONE_PATH = re.compile(r'pose\.bones\["((?:[^"\\]|\\.)*)"\]')


def blend_files(folder: Path) -> list[Path]:
    """``.blend`` files under ``folder`` (sorted), skipping hidden folders and files."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if f.lower().endswith(".blend") and not f.startswith(".")]
    return out


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9 _.+-]", "_", name).strip(" .") or "action"


def _animated_bones(action) -> set[str]:
    return {m.group(1) for fc in anim_compat.fcurves(action) for m in [_BONE_PATH.match(fc.data_path)] if m}


def _armature_for(action, armatures):
    for arm in armatures:
        ad = arm.animation_data
        if ad is not None and ad.action == action:
            return arm
    bones = _animated_bones(action)
    best = max(armatures, key=lambda a: len(bones & set(a.data.bones.keys())), default=None)
    if best is None or not bones & set(best.data.bones.keys()):
        return None
    return best


def _bone_map(arm) -> dict | None:
    if is_smpl_armature(arm):
        return None
    from .retarget import auto_bone_map

    return dict(auto_bone_map(arm))


def read_blend_actions(scene, path: Path) -> tuple[dict, dict]:
    """({action name: joints (T, 22, 3) float32 at 20 fps}, {action name: message}) of one ``.blend``; the
    appended datablocks are removed again. OSError/RuntimeError when the file cannot be opened."""
    before = {k: set(getattr(bpy.data, k)) for k in _KINDS if hasattr(bpy.data, k)}
    libraries = set(bpy.data.libraries)
    view_layer = bpy.context.view_layer
    active = view_layer.objects.active
    joints, errors = {}, {}
    try:
        with bpy.data.libraries.load(str(path), link=False) as (src, dst):
            dst.objects = list(src.objects)
            dst.actions = list(src.actions)
        arms = [o for o in dst.objects if o is not None and o.type == 'ARMATURE']
        coll = bpy.data.collections.new("ReMoMask blend reading")
        scene.collection.children.link(coll)
        linked = set()
        for arm in arms:                      # the armatures and their parents (their world matrices)
            o = arm
            while o is not None and o.name not in linked:
                coll.objects.link(o)
                linked.add(o.name)
                o = o.parent
        for act in [a for a in dst.actions if a is not None]:
            arm = _armature_for(act, arms)
            if arm is None:
                errors[act.name] = "no armature of the file plays it"
                continue
            try:
                anim_compat.assign_action(arm, act, anim_compat.default_slot(act)
                                          if anim_compat.has_slotted_actions() else None)
                lo, hi = act.frame_range
                joints[act.name] = armature_joints(arm, scene=scene, frame_range=(lo, hi), bone_map=_bone_map(arm))
            except (ReadBackError, ValueError, RuntimeError) as exc:
                errors[act.name] = f"cannot be read on '{arm.name}': {exc}"
    finally:
        for kind, old in before.items():
            coll = getattr(bpy.data, kind)
            for idb in [x for x in coll if x not in old]:
                try:
                    coll.remove(idb)
                except (ReferenceError, RuntimeError):
                    pass
        for lib in [x for x in bpy.data.libraries if x not in libraries]:
            bpy.data.libraries.remove(lib)
        view_layer.objects.active = active
    return joints, errors


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached(out_dir: Path, stamp: dict) -> dict | None:
    try:
        old = json.loads((out_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and old.get("blend") == stamp else None


def export_blend_actions(scene, folder) -> tuple[list[str], dict]:
    """Bring ``FOLDER/.remomask-blend-actions`` up to date with the ``.blend`` files under ``folder``. Returns
    (the ``.blend`` files read again, {"<file.blend>: <action>" or "<file.blend>": message})."""
    folder = Path(folder).resolve()
    cache = folder / CACHE_DIR_NAME
    blends = blend_files(folder)
    read, errors = [], {}
    keep = set()
    for path in blends:
        rel = path.relative_to(folder).as_posix()
        out_dir = cache / rel
        keep.add(out_dir)
        try:
            stamp = _stamp(path)
        except OSError as exc:
            errors[rel] = f"cannot be read ({exc.strerror or exc})"
            continue
        old = _cached(out_dir, stamp)
        if old is not None:
            errors.update({f"{rel}: {a}": m for a, m in old.get("errors", {}).items()})
            continue
        try:
            joints, errs = read_blend_actions(scene, path)
        except (OSError, RuntimeError) as exc:
            errors[rel] = f"cannot be opened ({' '.join(str(exc).split())})"
            continue
        read.append(rel)
        errors.update({f"{rel}: {a}": m for a, m in errs.items()})
        with atomic.atomic_dir(out_dir) as tmp:
            used = set()
            for name, j in joints.items():
                stem = _safe_name(name)
                while stem.lower() in used:
                    stem += "_"
                used.add(stem.lower())
                np.save(tmp / f"{stem}.npy", np.asarray(j, np.float32), allow_pickle=False)
            (tmp / STAMP).write_text(json.dumps({"blend": stamp, "errors": errs}), encoding="utf-8")
    if cache.is_dir():          # folders of .blend files that are gone
        for stamp_file in sorted(cache.rglob(STAMP)):
            d = stamp_file.parent
            if d not in keep:
                shutil.rmtree(d, ignore_errors=True)
    return read, errors
