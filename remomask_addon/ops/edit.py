"""The Edit panel's operators: Regenerate range, In-between, Extend, Lead in, Loop, Change body part (one
operator, ``remomask.edit``, with the operation as its option), switching between action versions, and flipping
through / accepting / discarding an edit's samples.

An edit validates and reads everything first (``blender.edit_apply``: the armature, its action, the range, the
bone map, the read-back source file); any fault is one message and the scene is untouched. Then it sends the
generator's ``edit`` request and returns; the session's poller (``session.poll_once``) applies the result in one
undo step through ``edit_apply.build_versions`` (new action versions; the user's action is kept). Cancel, a
failed request or a backend that dies leave the scene as it was: nothing is written before the result is there.

Samples: with more than one, every sample becomes a candidate version (``remomask_edit_pending``), the first is
played; ``edit_use_version`` flips between them, ``edit_accept`` keeps the one playing and removes the others,
``edit_discard`` removes them all and plays the action the edit was made from.
"""

from __future__ import annotations

import functools
import os

import bpy
from bpy.props import EnumProperty, StringProperty

from ..blender import edit_apply
from ..core import action_versions as av
from ..core import client as client_mod
from ..core.edit_range import EditRangeError, plan_edit
from ..ui import preferences
from . import session

PENDING = "remomask_edit_pending"

OP_ITEMS = [("REGENERATE", "Regenerate Range", "Regenerate the range with the prompt"),
            ("INBETWEEN", "In-between", "Fill the gap between your keys around the range with the prompt"),
            ("EXTEND", "Extend", "Continue after the action's end with the prompt"),
            ("LEAD_IN", "Lead In", "Generate motion that leads into the action's start"),
            ("LOOP", "Loop", "Make the action loop, shown with Cycles modifiers"),
            ("BODYPART", "Change Body Part", "Regenerate one body part over the range; the rest keeps its keys")]


def pending_of(armature) -> list:
    """The candidate versions (an edit's samples) waiting to be accepted on ``armature``'s action."""
    ad = armature.animation_data if armature is not None else None
    act = ad.action if ad is not None else None
    if act is None or PENDING not in act:
        return []
    return [a for a in bpy.data.actions if a.get(PENDING) == act[PENDING]]


def prepare_edit(context, op: str):
    """Everything an edit needs, checked and read, nothing changed: ``(armature, plan, params, bone_map_choice,
    bone_map)``; EditRangeError (or ValueError) with the message for the user otherwise."""
    scene, obj = context.scene, context.active_object
    ep = scene.remomask_edit
    action, slot = edit_apply.edit_target(obj)
    if pending_of(obj):
        raise EditRangeError("Accept or discard the samples of the last edit first.")
    prompt = " ".join(ep.prompt.split())
    if op != "LOOP" and not prompt:
        raise EditRangeError("Type a prompt for the edit first (it is empty).")
    choice = session.bone_map_for(scene, obj)
    bm = edit_apply.smpl_bone_map(obj, choice)
    rng = None
    if op in ("REGENERATE", "INBETWEEN", "BODYPART"):
        rng = edit_apply.timeline_range(scene, action, slot, typed=(ep.range_start, ep.range_end))
    plan = plan_edit(op, rng, edit_apply.action_range(action, slot), edit_apply.scene_fps(scene),
                     key_frames=edit_apply.key_frames(action, slot), seconds=ep.seconds, part=ep.part.lower(),
                     mode=ep.loop_mode.lower())
    source = edit_apply.read_source(scene, obj, plan, bm, edit_apply.edit_source_folder())
    params = plan.params(source, prompt, seed=ep.seed, samples=ep.samples, out_dir=_out_dir())
    return obj, plan, params, choice, bm


def _out_dir() -> str | None:
    try:
        d = preferences.user_dir(create=True) / "motions"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)
    except Exception:   # noqa: BLE001 - let the backend choose
        return None


def apply_edit(job, scene, result: dict, *, armature_name: str, action_name: str, plan, prompt: str, bone_map, choice,
               source) -> str:
    """The edit job's ``on_result``: new versions on the armature (the session pushes one undo step). Returns the
    status."""
    try:
        arm = bpy.data.objects.get(armature_name)
        if arm is None:
            raise EditRangeError(f"The armature {armature_name!r} no longer exists.")
        ad = arm.animation_data
        if ad is None or ad.action is None or ad.action.name != action_name:
            raise EditRangeError(f"'{armature_name}' plays another action than '{action_name}' now; the edit was "
                                 "made for that one and is not written.")
        motions = list(result.get("motions") or [])
        if not motions:
            raise EditRangeError("The backend returned no motion.")
        made = edit_apply.build_versions(scene, arm, plan, motions, prompt=prompt, bone_map=bone_map,
                                         bone_map_choice=choice)
    finally:
        _remove(source)
    if len(made) > 1:
        for a in made:
            a[PENDING] = made[0].name
        return (f"{len(made)} samples of the edit: flip between them, then Accept one (or Discard). "
                f"Playing {made[0].name}.")
    return f"Edited: {made[0].name} ({made[0][av.OP]}); '{made[0][av.OF]}' is kept."


def _remove(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class REMOMASK_OT_edit(session.SyncMixin, bpy.types.Operator):
    """Edit the active armature's action with the generator (a new action version; yours is kept)"""
    bl_idname = "remomask.edit"
    bl_label = "Edit Motion"
    bl_options = {'REGISTER'}

    op: EnumProperty(name="Operation", items=OP_ITEMS, default="REGENERATE")

    def execute(self, context):
        busy = session.generation_busy()
        if busy:
            self.report({'ERROR'}, busy)
            return {'CANCELLED'}
        settings = preferences.settings(context)
        try:
            arm, plan, params, choice, bm = prepare_edit(context, self.op)
        except (EditRangeError, ValueError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        problem = settings.problem()
        if problem and session._CLIENT is None:
            os.unlink(params["source"])
            self.report({'ERROR'}, problem)
            return {'CANCELLED'}
        prompt = params.get("prompt", "")
        try:
            rid = session.get_client(settings).request("edit", params)
        except client_mod.BackendError as exc:
            os.unlink(params["source"])
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        session.add_job(rid, {
            "kind": "edit", "what": "Edit", "scene": context.scene.name, "prompt": prompt,
            "undo": f"ReMoMask: {dict((k, n) for k, n, _ in OP_ITEMS)[self.op]}",
            "on_result": functools.partial(apply_edit, armature_name=arm.name,
                                           action_name=arm.animation_data.action.name, plan=plan, prompt=prompt,
                                           bone_map=bm, choice=choice, source=params["source"]),
            "on_end": lambda job, source=params["source"]: _remove(source)})
        return self._started(context, [rid], "Edit", f"Editing '{arm.name}': {self.op.lower()} ...")


class REMOMASK_OT_edit_use_version(bpy.types.Operator):
    """Play this version of the action on the active armature (the others are kept)"""
    bl_idname = "remomask.edit_use_version"
    bl_label = "Use Version"
    bl_options = {'REGISTER', 'UNDO'}

    action: StringProperty(name="Action", options={'SKIP_SAVE'})

    def execute(self, context):
        obj = context.active_object
        act = bpy.data.actions.get(self.action)
        if obj is None or obj.type != 'ARMATURE' or act is None:
            self.report({'ERROR'}, "Select the armature and pick an existing version.")
            return {'CANCELLED'}
        edit_apply.use_version(obj, act)
        return {'FINISHED'}


class REMOMASK_OT_edit_accept(bpy.types.Operator):
    """Keep the sample that is playing as the new version; the other samples are removed"""
    bl_idname = "remomask.edit_accept"
    bl_label = "Accept Sample"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        obj = context.active_object
        cands = pending_of(obj)
        if not cands:
            self.report({'ERROR'}, "No samples are waiting: select the edited armature.")
            return {'CANCELLED'}
        keep = obj.animation_data.action
        for a in cands:
            del a[PENDING]
            if a != keep:
                bpy.data.actions.remove(a)
        keep.name = av.version_name(keep[av.ROOT], int(keep[av.VERSION]))
        session.set_status(context.scene, f"Accepted {keep.name}.")
        return {'FINISHED'}


class REMOMASK_OT_edit_discard(bpy.types.Operator):
    """Remove the edit's samples and play the action they were made from"""
    bl_idname = "remomask.edit_discard"
    bl_label = "Discard Samples"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        obj = context.active_object
        cands = pending_of(obj)
        if not cands:
            self.report({'ERROR'}, "No samples are waiting: select the edited armature.")
            return {'CANCELLED'}
        of = bpy.data.actions.get(cands[0].get(av.OF, ""))
        if of is not None:
            edit_apply.use_version(obj, of)
        for a in cands:
            bpy.data.actions.remove(a)
        session.set_status(context.scene, "Samples discarded.")
        return {'FINISHED'}


CLASSES = (REMOMASK_OT_edit, REMOMASK_OT_edit_use_version, REMOMASK_OT_edit_accept, REMOMASK_OT_edit_discard)
