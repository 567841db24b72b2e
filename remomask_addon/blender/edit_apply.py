"""The Edit panel's Blender side: read what an edit needs from the active armature, and write the generator's
result as a new version of the user's action, touching nothing else.

1. ``edit_target`` checks the armature and its action (one clear message for every fault);
   ``timeline_range`` takes the frame range from the timeline (``core.edit_range``).
2. ``read_source`` reads the armature back as 22 joints at 20 fps (``read_back``, through the rig's bone map for
   a non-SMPL rig) in the armature's own space (so the result keys back where it was read) and writes them as a
   joints ``.npy`` for the generator's ``edit`` request (atomically). Nothing in the scene changes.
3. ``build_versions`` (when the result is there): each result motion is keyed with the one keying path
   (``motion_to_armature.key_motions``, which retargets onto a non-SMPL rig) onto a temporary copy of the
   armature, and spliced into a copy of the user's action (``action_splice``) over the frames the generator
   changed, kept inside the range the user picked; for a body-part edit only that part's bones (through the bone
   map on another rig). The temporary armature and its actions are removed again. The first version is played;
   the user's action is kept (fake user) and can be switched back to (``use_version``). Everything or nothing:
   on an error every datablock made is removed and the armature plays what it played before.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np

import bpy

from ..core import action_versions as av
from ..core import bone_map as bone_maps
from ..core import coords, edit_range, motion_io, smpl_rig
from ..core.atomic import atomic_write
from ..core.edit_range import EditRangeError
from . import action_splice, anim_compat, motion_to_armature, read_back
from .armature import is_smpl_armature
from .keying import scene_fps_of

EditError = EditRangeError


# ---------------------------------------------------------------------------------------------- what is edited
def edit_target(obj):
    """``(action, slot)`` the active object plays, or EditError saying what is wrong."""
    if obj is None or getattr(obj, "type", None) != 'ARMATURE':
        raise EditError("Select an armature to edit (the active object is not one).")
    if obj.mode == 'EDIT':
        raise EditError(f"Armature '{obj.name}' is in Edit Mode; switch to Object or Pose Mode first.")
    ad = obj.animation_data
    action = ad.action if ad is not None else None
    if action is None:
        raise EditError(f"Armature '{obj.name}' has no active action to edit.")
    slot = getattr(ad, "action_slot", None)
    if not key_frames(action, slot):
        raise EditError(f"The action '{action.name}' has no keys.")
    if is_smpl_armature(obj):
        other = [pb.name for pb in obj.pose.bones if pb.name in smpl_rig.SMPL_JOINT_NAMES
                 and pb.rotation_mode != 'QUATERNION']
        if other:
            raise EditError(f"SMPL armature '{obj.name}': bones {', '.join(other[:4])} are not in quaternion "
                            "rotation mode (edits key quaternions); set them back to Quaternion.")
    return action, slot


def key_frames(action, slot=None) -> list[float]:
    """Frames of the action's keys."""
    out = set()
    for fc in anim_compat.fcurves(action, slot):
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out.update(co[0::2].tolist())
    return sorted(out)


def action_range(action, slot=None) -> tuple[int, int]:
    fr = key_frames(action, slot)
    return int(math.floor(fr[0])), int(math.ceil(fr[-1]))


def selected_key_frames(action, slot=None) -> list[float]:
    """Frames of the selected keys; none when every key is selected (new keys come selected: that is no choice)."""
    n_sel = n_all = 0
    out = set()
    for fc in anim_compat.fcurves(action, slot):     # (the panel calls this on every redraw: two arrays only)
        n = len(fc.keyframe_points)
        co, mask = np.empty(2 * n, dtype=np.float32), np.empty(n, dtype=bool)
        fc.keyframe_points.foreach_get("co", co)
        fc.keyframe_points.foreach_get("select_control_point", mask)
        n_sel, n_all = n_sel + int(mask.sum()), n_all + n
        out.update(co[0::2][mask].tolist())
    return [] if n_sel == n_all else sorted(out)


def timeline_range(scene, action, slot=None, typed=None) -> edit_range.FrameRange:
    """The range from the timeline: preview range, selected keys (some, not all), two selected markers, else
    ``typed``."""
    preview = (scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range else None
    marks = [m.frame for m in scene.timeline_markers if m.select]
    return edit_range.range_from_timeline(preview=preview, selected_keys=selected_key_frames(action, slot),
                                          markers=marks, typed=typed)


def smpl_bone_map(armature, bone_map=None) -> dict | None:
    """SMPL joint name -> the rig's bone (None for an SMPL armature): the retargeting's map (``bone_map``: a preset
    name, a JSON path, a dict or None for the automatic one); EditError when it misses a bone read-back needs."""
    if is_smpl_armature(armature):
        return None
    from . import retarget
    try:
        bm = bone_maps.resolve_map(bone_map, smpl_rig.SMPL_JOINT_NAMES, armature.data.bones,
                                   source_name="SMPL", target_name=armature.name,
                                   auto=lambda: retarget.auto_bone_map(armature))
    except bone_maps.RetargetError as exc:
        raise EditError(f"Cannot edit '{armature.name}': {exc}.") from None
    missing = [j for j in read_back.JOINT_NAMES if j not in bm]
    if missing:
        raise EditError(f"Cannot edit '{armature.name}': its bone map has no bone for {', '.join(missing[:6])}"
                        f"{' ...' if len(missing) > 6 else ''}; choose or fix the bone map (Retarget panel).")
    return dict(bm)


# ---------------------------------------------------------------------------------------------- reading
def character_matrix(armature) -> np.ndarray:
    """World -> the armature's "character space" (its own axes and origin, real-world units: what keying and
    retargeting key in), 4x4."""
    mw = np.array(armature.matrix_world)
    scale = np.diag(list(armature.matrix_world.to_scale()) + [1.0])
    return scale @ np.linalg.inv(mw)


def read_source(scene, armature, plan: edit_range.EditPlan, bone_map: dict | None, folder) -> str:
    """The armature's motion over ``plan.read`` as a joints ``.npy`` (y-up, metres, 20 fps, character space) in
    ``folder``; returns its path. Changes nothing in the scene."""
    try:
        j = read_back.armature_joints(armature, scene=scene, frame_range=plan.read, bone_map=bone_map)
    except read_back.ReadBackError as exc:
        raise EditError(str(exc)) from None
    z = coords.points_to_zup(j.astype(np.float64))
    m = character_matrix(armature)
    z = z @ m[:3, :3].T + m[:3, 3]
    joints = coords.points_to_yup(z).astype(np.float32)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{armature.name}_{plan.op.lower()}")[:60]
    path = os.path.join(os.fspath(folder), f"edit_source_{name}_{os.getpid()}.npy")
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, joints)
    atomic_write(path, write, suffix=".npy")
    return path


# ---------------------------------------------------------------------------------------------- writing
def _temporary_copy(scene, armature):
    tmp = armature.copy()
    tmp.name = "ReMoMask_edit_target"
    tmp.animation_data_clear()
    scene.collection.objects.link(tmp)
    return tmp


def _keyed_result(scene, armature, motion, start_frame: int, bone_map):
    """The result ``motion`` keyed (one keying path, retargeting included) onto a temporary copy of
    ``armature``: returns its action; the copy is removed again."""
    tmp = _temporary_copy(scene, armature)
    try:
        keyed = motion_to_armature.key_motions(scene, [motion], armature=tmp, bone_map=bone_map,
                                               start_frame=start_frame, placement=None, select=False,
                                               frame_range=False)
        return keyed.actions[0]
    finally:
        bpy.data.objects.remove(tmp)


def _bone_of_path(path: str) -> str | None:
    m = re.match(r'pose\.bones\["(.+)"\]\.', path)
    return m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m else None


def _current_value(armature):
    def value(path, index):
        try:
            v = armature.path_resolve(path)
        except ValueError:
            return 0.0
        return float(v[index]) if hasattr(v, "__len__") else float(v)
    return value


def _result_changed(motion: dict, entry: dict) -> list:
    ch = entry.get("changed")
    if ch is None and motion.get("edit_changed") is not None:
        ch = np.asarray(motion["edit_changed"]).reshape(-1, 2).tolist()
    if not ch:
        raise EditError("The generator's result does not say which frames it changed.")
    return [(int(a), int(b)) for a, b in ch]


def build_versions(scene, armature, plan: edit_range.EditPlan, results: list[dict], *, prompt: str,
                   bone_map: dict | None = None, bone_map_choice=None) -> list:
    """One new action version per result motion (dicts with ``path`` and ``changed``), the first one played.
    Everything or nothing (see the module doc). Returns the new actions."""
    action, slot = edit_target(armature)
    root = av.root_of(action.name, action)
    k = av.next_version(root, [(a.name, a) for a in bpy.data.actions])
    ad = armature.animation_data
    before = (ad.action, getattr(ad, "action_slot", None))
    made = []
    try:
        with motion_to_armature.Rollback():
            for i, entry in enumerate(results):
                m = motion_io.load_motion(entry["path"])
                n = int(m["num_frames"])
                window = plan.window(_result_changed(m, entry), n)
                if window is None:
                    raise EditError("The generator changed no frame inside the range.")
                start = plan.start_frame(n)
                tmp_action = _keyed_result(scene, armature, m, int(round(start)), bone_map_choice)
                try:
                    allow = _channel_filter(plan, tmp_action)
                    name = av.version_name(root, k) + (f".s{i + 1}" if len(results) > 1 else "")
                    new = action_splice.splice_action(action, tmp_action, window, name=name, slot=slot,
                                                      channel_filter=allow, current_value=_current_value(armature))
                finally:
                    bpy.data.actions.remove(tmp_action)
                new[av.ROOT], new[av.VERSION], new[av.OF] = root, k, action.name
                new[av.OP] = av.describe(plan.op, prompt, window) + (f" (sample {i + 1})" if len(results) > 1 else "")
                new["remomask_edit_window"] = list(window)
                new.use_fake_user = True
                if plan.op == "LOOP":
                    action_splice.add_cycles(new, action_splice.matching_slot(new, slot),
                                             _root_location_paths(armature, bone_map) if plan.mode == "travel"
                                             else ())
                made.append(new)
            action.use_fake_user = True
            use_version(armature, made[0])
    except Exception:       # Rollback removed every action made; the armature plays what it played
        anim_compat.assign_action(armature, before[0], before[1])
        raise
    return made


def _root_location_paths(armature, bone_map) -> tuple:
    root = "pelvis" if bone_map is None else bone_map.get("pelvis", "pelvis")
    return (f'pose.bones["{bpy.utils.escape_identifier(root)}"].location',)


def _channel_filter(plan, tmp_action):
    """Which of the keyed result's channels an edit writes: all of them, or a body part's bones (through the
    retarget's bone map on another rig)."""
    if plan.bones is None:
        return None
    bones = set(plan.bones)
    if "remomask_bone_map" in tmp_action:
        bm = json.loads(tmp_action["remomask_bone_map"])
        bones = {bm[b] for b in plan.bones if b in bm}
    return lambda path: _bone_of_path(path) in bones


def use_version(armature, action) -> None:
    """Play ``action`` (a version) on ``armature``: its slot for this object (the one named like the armature's
    current slot, else its first)."""
    ad = armature.animation_data or armature.animation_data_create()
    cur = getattr(ad, "action_slot", None)
    slot = None
    if anim_compat.has_slotted_actions():
        slot = next((s for s in action.slots if cur is not None and s.identifier == cur.identifier),
                    anim_compat.default_slot(action))
    anim_compat.assign_action(armature, action, slot)


def versions_of(action) -> list[tuple[int, str, str]]:
    """(version, action name, what was done) of every version of ``action``'s root."""
    root = av.root_of(action.name, action)
    return av.versions(root, [(a.name, a) for a in bpy.data.actions])


def edit_source_folder() -> str:
    """Where the read-back sources go: the add-on's user folder (else the system's temporary folder)."""
    try:
        from ..ui import preferences
        d = preferences.user_dir(create=True) / "edits"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)
    except Exception:   # noqa: BLE001 - no user folder
        import tempfile
        return tempfile.gettempdir()


def scene_fps(scene) -> float:
    return scene_fps_of(scene)
