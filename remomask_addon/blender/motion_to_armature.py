"""The one way motions become animation in a scene: ``key_motions``.

Every caller goes through it: the panel's Generate (and the history's Apply Again), Import Motion, Generate
Batch (``ops/``), and ``headless.scene_from_motion`` (the command line's render, export and demo). It

- loads (motion ``.npz`` or joints ``.npy`` paths) and validates every motion before anything is made;
- keys each motion onto an SMPL armature: a new one (with a body unless asked not to) or the given one; several
  motions go onto one armature laid end to end on its NLA (``nla=True``), or each onto its own;
- reaches any other rig (Mixamo, Rigify, custom) by retargeting: the motions are keyed onto a temporary SMPL
  armature (its rest skeleton put on the ground first, ``core.retarget.ground_rest``), copied onto the rig with
  ``retarget.retarget_action`` (one action per motion, or one for an NLA batch), and the temporary armature and
  its actions are removed again;
- names every action after its motion's prompt (``core.channels.action_name_for_prompt``; Blender adds .001
  when the name is taken);
- puts every new armature where the user sees it (beside the previous takes and clear of other objects, or at
  the 3D cursor), makes it the selected and active object, and sets the scene's frame range to the keyed
  frames (``take_placement``);
- is everything or nothing: on an error, every datablock the call created is removed again (``Rollback``) and
  the error is re-raised.

``import_motion`` and ``import_batch`` are the same call with the return shapes scripts like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace

import bpy

from ..core import motion_io
from ..core.channels import action_name_for_prompt
from ..core.retarget import ground_rest
from . import take_placement
from .armature import is_smpl_armature
from .keying import scene_fps_of

#: Datablock kinds a call can create, objects first (they use the meshes and armatures).
_DATA_KINDS = ("objects", "meshes", "armatures", "actions", "materials")
#: Name of the temporary SMPL armature that a retarget keys first.
RETARGET_SOURCE_NAME = "ReMoMask_retarget_source"


class Rollback:
    """Everything-or-nothing for scene edits: datablocks created inside the block are removed on an error."""

    def __enter__(self):
        self.before = {k: set(getattr(bpy.data, k)) for k in _DATA_KINDS}
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        for kind in _DATA_KINDS:
            coll = getattr(bpy.data, kind)
            for idb in [x for x in coll if x not in self.before[kind]]:
                try:
                    coll.remove(idb)
                except (ReferenceError, RuntimeError):
                    pass
        return False


@dataclass
class Keyed:
    """What ``key_motions`` made: per motion (per NLA batch when retargeting one) the armature that plays it and
    its action; the NLA strips when ``nla`` laid them out on an SMPL armature."""

    armatures: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    strips: list = field(default_factory=list)

    @property
    def armature(self):
        return self.armatures[0] if self.armatures else None


def _keying():
    """The Blender-side steps ``key_motions`` uses, as one namespace (tests replace it with a stand-in):
    build_smpl_armature(collection, rest_joints, name), build_body(armature, motion), key_motion(armature,
    motion, *, action_name, scene_fps, start_frame), lay_out_nla(armature, actions, blend_frames),
    retarget_action(source, target, bone_map, *, action_name, scene), load_motion_npz(path), load_joints_npy(path).
    """
    from . import armature, batch, keying, mannequin, retarget
    return SimpleNamespace(
        build_smpl_armature=armature.build_smpl_armature, build_body=mannequin.build_body,
        key_motion=keying.key_motion, lay_out_nla=batch.lay_out_nla, retarget_action=retarget.retarget_action,
        load_motion_npz=motion_io.load_motion, load_joints_npy=motion_io.load_joints)


def scene_collection(scene):
    """The active collection when it belongs to ``scene``, else the scene's master collection."""
    coll = getattr(bpy.context, "collection", None)
    if coll is not None and (coll == scene.collection or coll in scene.collection.children_recursive):
        return coll
    return scene.collection


def _load(k, motions) -> list[dict]:
    out = []
    for i, m in enumerate(motions):
        if isinstance(m, (str, os.PathLike)):
            m = k.load_joints_npy(m) if str(m).lower().endswith(".npy") else k.load_motion_npz(m)
        if "num_frames" not in m:
            m = motion_io.validate_motion(m, source=f"motion {i + 1}" if len(motions) > 1 else None)
        out.append(m)
    return out


def key_motions(scene, motions, *, armature=None, nla: bool = False, name: str = "ReMoMask",
                with_body: bool = True, bone_map=None, start_frame: int | None = None, blend_frames: int = 5,
                collection=None, placement: str | None = "BESIDE", select: bool = True,
                frame_range: bool = True, lock_feet: bool = True) -> Keyed:
    """Key ``motions`` (paths or motion mappings) in ``scene``; see the module doc. Returns ``Keyed``.

    armature: the armature to key (an SMPL armature directly, any other rig through retargeting with
    ``bone_map``: None for the automatic map, a preset name, a JSON path or a dict); None makes a new SMPL
    armature named ``name`` (with a body when ``with_body``) in ``collection`` (default: the active collection
    of the scene). nla: all motions onto one armature, end to end on its NLA with ``blend_frames`` cross-fades;
    otherwise the first motion goes onto ``armature`` and every further one onto a new armature. start_frame:
    the scene frame of the first key (default: the scene's start); keys follow the scene's frame rate.
    placement: where new armatures go (``take_placement.place``: 'BESIDE' previous takes and clear of other
    objects, 'CURSOR', or None: at the origin); select: new armatures become the selected and active objects;
    frame_range: the scene's frame range becomes the keyed frames (``take_placement``). lock_feet: a retargeted
    rig's feet stay planted where the motion's are (``retarget.retarget_action``); the SMPL armature's were planted
    by the backend's fit."""
    k = _keying()
    ms = _load(k, list(motions))
    if not ms:
        raise ValueError("no motions to import")
    start = scene.frame_start if start_frame is None else int(start_frame)
    fps = scene_fps_of(scene)
    collection = collection or scene_collection(scene)
    new = []
    with Rollback():
        if armature is not None and not is_smpl_armature(armature):
            out = _retarget(k, scene, collection, armature, ms, nla=nla, bone_map=bone_map, start=start, fps=fps,
                            blend_frames=blend_frames, lock_feet=lock_feet)
        else:
            out = Keyed()
            arm = armature
            for i, m in enumerate(ms):
                if arm is None:
                    arm = _new_armature(k, collection, m, name, with_body)
                    new.append(arm)
                out.armatures.append(arm)
                out.actions.append(k.key_motion(arm, m, action_name=action_name_for_prompt(m.get("prompt", "")),
                                                scene_fps=fps, start_frame=start))
                if not nla and i < len(ms) - 1:
                    arm = None       # every further motion onto its own armature
            if nla:
                out.strips = list(k.lay_out_nla(arm, out.actions, blend_frames=blend_frames) or [])
            if placement and new:
                take_placement.place(scene, new, placement)
    # the rest cannot fail half-way: it only changes the selection and the frame range
    if select:
        take_placement.select_only(scene, new)
    if frame_range:
        take_placement.fit_frame_range(scene, list(dict.fromkeys(out.armatures)))
    return out


def _new_armature(k, collection, motion, name: str, with_body: bool):
    arm = k.build_smpl_armature(collection, motion.get("rest_joints"), name)
    if with_body and k.build_body is not None:
        k.build_body(arm, motion)
    return arm


def _retarget(k, scene, collection, rig, ms, *, nla, bone_map, start, fps, blend_frames, lock_feet=True) -> Keyed:
    out = Keyed()
    ms = [ground_rest(m) for m in ms]
    for group in ([ms] if nla else [[m] for m in ms]):
        src = _new_armature(k, collection, group[0], RETARGET_SOURCE_NAME, False)
        made = []
        try:
            for m in group:
                made.append(k.key_motion(src, m, action_name=action_name_for_prompt(m.get("prompt", "")) + " (SMPL)",
                                         scene_fps=fps, start_frame=start))
            if nla:
                k.lay_out_nla(src, made, blend_frames=blend_frames)
            name = action_name_for_prompt(group[0].get("prompt", ""))
            if nla and len(group) > 1:
                name += f" +{len(group) - 1}"
            out.actions.append(k.retarget_action(src, rig, bone_map, action_name=name, scene=scene,
                                                 lock_feet=lock_feet))
            out.armatures.append(rig)
        finally:
            # the SMPL source was only a means: remove it and its actions (the motion files stay)
            data = src.data
            bpy.data.objects.remove(src)
            if data.users == 0:
                bpy.data.armatures.remove(data)
            for a in made:
                bpy.data.actions.remove(a)
    return out


def import_motion(context, motion, *, armature=None, name: str | None = None, with_mannequin: bool = True,
                  start_frame: int | None = None):
    """``key_motions`` for one motion: returns ``(armature, action)``."""
    keyed = key_motions(context.scene, [motion], armature=armature, name=name or "ReMoMask",
                        with_body=with_mannequin, start_frame=start_frame)
    return keyed.armature, keyed.actions[0]


def import_batch(context, motions, *, armature=None, name: str | None = None, with_mannequin: bool = True,
                 blend_frames: int = 5, start_frame: int | None = None):
    """``key_motions`` for several motions on one armature, laid out on its NLA: returns
    ``(armature, actions, strips)``."""
    keyed = key_motions(context.scene, motions, armature=armature, nla=True, name=name or "ReMoMask",
                        with_body=with_mannequin, blend_frames=blend_frames, start_frame=start_frame)
    return keyed.armature, keyed.actions, keyed.strips
