"""Prompt timeline: *Generate Timeline* sends the scene's prompt markers as one ``generate`` with a timeline (one
long continuous motion, keyed from the first marker's frame like any generated motion, onto the panel's target);
*Redo Part* re-generates the part under the current frame (with its marker's current name as the prompt, or the
``prompt`` given) and its transitions with the generator's in-painting, and makes a new version of the timeline
action whose keys differ only on the frames the generator changed (``blender/timeline.py``). Both are
non-blocking like Generate (``session``), and the result is one undo step."""

from __future__ import annotations

import functools
import os

import bpy
from bpy.props import IntProperty, StringProperty

from ..blender import timeline as btl
from ..blender.keying import scene_fps_of
from ..core import client as client_mod
from ..core import timeline as tl
from ..ui import preferences
from . import session
from .generate import _motions_dir
from .render import active_armature


def _busy_or_settings(context, settings) -> str | None:
    return session.generation_busy() or settings.problem()


def _send(op, context, settings, req, job: dict, what: str, status: str):
    try:
        rid = session.get_client(settings).request(req.method, req.to_params())
    except client_mod.BackendError as exc:
        op.report({'ERROR'}, str(exc))
        return {'CANCELLED'}
    session.add_job(rid, {"scene": context.scene.name, **job})
    return op._started(context, [rid], what, status)


def _drop(actions) -> None:
    for a in actions:
        if a is not None and a.name in bpy.data.actions:
            bpy.data.actions.remove(a)


def after_generate(plan: tl.Plan, scene, motions, actions):
    """Generate Timeline's last step after ``session.key_result``: tag every keyed timeline action with its motion
    file and parts."""
    try:
        for m, act in zip(motions, actions):
            btl.tag(act, path=m["path"], prompts=plan.prompts, seconds=plan.seconds, start_frame=plan.start_frame)
    except Exception:
        _drop(actions)
        raise
    return actions


def after_redo(armature_name: str, previous_name: str, record: dict, index: int, prompt: str, scene, motions,
               actions):
    """Redo Part's last step after ``session.key_result``: splice the re-done part into a new version of the
    timeline action."""
    try:
        arm = bpy.data.objects.get(armature_name)
        previous = bpy.data.actions.get(previous_name)
        if arm is None or previous is None:
            raise ValueError("The armature or its timeline action was removed while the part was generated.")
        m = motions[0]
        changed = [tuple(c) for c in (m.get("changed") or [])] or [tl.segment_hole(record["seconds"], index)]
        span = (min(c[0] for c in changed), max(c[1] for c in changed))
        version = btl.finish_redo(arm, previous, actions[0], span, record, index=index, prompt=prompt,
                                  path=m["path"], scene_fps=scene_fps_of(scene))
    except Exception:
        _drop(actions)
        raise
    return [version]


class REMOMASK_OT_timeline_generate(session.SyncMixin, bpy.types.Operator):
    """Generate one long motion from the prompt markers on the timeline (each part until the next marker, an
    'end' marker or the scene end)"""

    bl_idname = "remomask.timeline_generate"
    bl_label = "Generate Timeline"
    bl_options = {'REGISTER'}

    def execute(self, context):
        scene, props = context.scene, context.scene.remomask
        settings = preferences.settings(context)
        try:
            plan = btl.plan_of(scene)
        except tl.TimelineError as err:
            self.report({'ERROR'}, str(err))
            return {'CANCELLED'}
        err = session.selected_problem(context.active_object) if props.target == 'SELECTED' else None
        err = err or _busy_or_settings(context, settings)
        if err:
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        req = tl.TimelineRequest(plan.prompts, plan.seconds, seed=int(props.seed), samples=int(props.samples),
                                 use_retrieval=bool(props.use_retrieval), ground_feet=bool(props.ground_feet),
                                 out_dir=_motions_dir())
        armature = context.active_object.name if props.target == 'SELECTED' else None
        job = {"kind": "timeline", "target": props.target, "armature": armature, "prompt": " | ".join(plan.prompts),
               "start_frame": plan.start_frame,
               "on_result": functools.partial(session.key_result, after=functools.partial(after_generate, plan))}
        return _send(self, context, settings, req, job, "Timeline",
                     f"Generating a {plan.total_seconds:.1f} s timeline of {len(plan.prompts)} parts...")


class REMOMASK_OT_timeline_redo_part(session.SyncMixin, bpy.types.Operator):
    """Re-generate one part of the active timeline action and its transitions (the rest of the action's keys stay
    exactly as they are; the previous version is kept)"""

    bl_idname = "remomask.timeline_redo_part"
    bl_label = "Redo Part"
    bl_options = {'REGISTER'}

    part: IntProperty(name="Part", default=0, min=0, description="Part number (1 = first); 0: the part at the "
                      "current frame", options={'SKIP_SAVE'})
    prompt: StringProperty(name="Prompt", default="", options={'SKIP_SAVE'},
                           description="New prompt; empty: the part's marker's current name (or its old prompt)")

    def execute(self, context):
        scene, props = context.scene, context.scene.remomask
        settings = preferences.settings(context)
        arm = active_armature(context)
        action = arm.animation_data.action if arm is not None and arm.animation_data is not None else None
        record = btl.record_of(action)
        if record is None:
            self.report({'ERROR'}, "Select an armature whose active action is a prompt timeline "
                                   "(made by Generate Timeline).")
            return {'CANCELLED'}
        n = len(record["prompts"])
        fps = scene_fps_of(scene)
        index = self.part - 1 if self.part else btl.part_at(record, scene.frame_current, fps)
        if not 0 <= index < n:
            self.report({'ERROR'}, f"There is no part {self.part}; the timeline has {n}.")
            return {'CANCELLED'}
        prompt = self.prompt.strip() or marker_prompt(scene, record, index, fps) or record["prompts"][index]
        try:
            hole = tl.segment_hole(record["seconds"], index)
        except tl.TimelineError as err:
            self.report({'ERROR'}, str(err))
            return {'CANCELLED'}
        if not os.path.isfile(record["path"]):
            self.report({'ERROR'}, f"The timeline's motion file is gone: {record['path']}")
            return {'CANCELLED'}
        err = _busy_or_settings(context, settings)
        if err:
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        req = tl.SegmentEditRequest(record["path"], hole, prompt, seed=int(props.seed),
                                    use_retrieval=bool(props.use_retrieval), ground_feet=bool(props.ground_feet),
                                    out_dir=_motions_dir())
        job = {"kind": "edit", "target": 'SELECTED', "armature": arm.name, "prompt": prompt,
               "start_frame": record["start_frame"],
               "on_result": functools.partial(session.key_result, after=functools.partial(
                   after_redo, arm.name, action.name, record, index, prompt))}
        return _send(self, context, settings, req, job, "Redo part", f"Re-doing part {index + 1}: {prompt!r}...")


def marker_prompt(scene, record, index: int, scene_fps: float) -> str | None:
    """The name of the marker that starts part ``index`` (where the plan put it), if it is still there."""
    frame = record["start_frame"] + round(sum(record["seconds"][:index]) * scene_fps)
    for m in scene.timeline_markers:
        if int(m.frame) == frame and m.name.strip() and m.name.strip().lower() not in tl.END_NAMES:
            return m.name.strip()
    return None
