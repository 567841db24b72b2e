"""Generate: the panel's prompt -> a request to the backend (the reply is keyed by ``session.poll_once``);
Cancel, New Seed, and the history's Apply Again."""

from __future__ import annotations

import os
import random

import bpy
from bpy.props import IntProperty

from ..core import client as client_mod
from ..core.requests import GenerateRequest, check_length
from ..ui import preferences
from . import session


def validate_generate(context, settings: preferences.Settings, prompts=None) -> str | None:
    """A user-facing message when generation cannot start with the panel's values, else None."""
    props = context.scene.remomask
    prompts = prompts if prompts is not None else [props.prompt]
    if not prompts or any(not p or not p.strip() for p in prompts):
        return "Type a prompt first (it is empty)."
    if not props.auto_length:
        err = check_length(props.length_s)
        if err:
            return err
    if props.target == 'SELECTED':
        err = session.selected_problem(context.active_object)
        if err:
            return err
    return session.generation_busy() or settings.problem()


def _motions_dir() -> str | None:
    try:
        d = preferences.user_dir(create=True) / "motions"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)
    except Exception:   # noqa: BLE001 - let the backend choose
        return None


def generate_request(props, prompt: str, length_s) -> GenerateRequest:
    """The panel's settings as a generate request (motion files go to the add-on's user folder)."""
    return GenerateRequest(prompt=prompt, length_s=length_s, seed=int(props.seed), samples=int(props.samples),
                           cond_scale=None if props.auto_guidance else float(props.cond_scale),
                           time_steps=int(props.time_steps), temperature=float(props.temperature),
                           topk=float(props.topk), use_retrieval=bool(props.use_retrieval), fit=True,
                           ground_feet=bool(getattr(props, "ground_feet", True)), out_dir=_motions_dir(),
                           literal=bool(getattr(props, "prompt_as_typed", False)))


class REMOMASK_OT_generate(session.SyncMixin, bpy.types.Operator):
    """Generate a motion from the prompt with the ReMoMask backend"""
    bl_idname = "remomask.generate"
    bl_label = "Generate"
    bl_options = {'REGISTER'}

    _timer_handle = None
    _rid = None

    def execute(self, context):
        props = context.scene.remomask
        settings = preferences.settings(context)
        err = validate_generate(context, settings)
        if err:
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        length = None if props.auto_length else float(props.length_s)
        req = generate_request(props, props.prompt.strip(), length)
        try:
            c = session.get_client(settings)
            rid = c.request(req.method, req.to_params())
        except client_mod.BackendError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        armature = context.active_object.name if props.target == 'SELECTED' else None
        session.add_job(rid, {"kind": "generate", "scene": context.scene.name, "target": props.target,
                              "armature": armature, "prompt": req.prompt})
        self._rid = rid
        return self._started(context, [rid], "Generation", f"Generating {req.prompt!r}...")

    def invoke(self, context, event):
        res = self.execute(context)
        if res != {'FINISHED'} or self.synchronous or self._rid is None:
            return res
        wm = context.window_manager
        self._timer_handle = wm.event_timer_add(session.POLL_INTERVAL, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type == 'ESC' and event.value == 'PRESS':
            session.cancel_job(context.scene, self._rid)
            self._end(context)
            return {'CANCELLED'}
        if event.type == 'TIMER':
            session.poll_once()
            if self._rid not in session._JOBS:
                self._end(context)
                return {'FINISHED'}
            props = context.scene.remomask
            _status_bar(context, f"ReMoMask: {props.stage or 'working'} {int(round(props.progress * 100))}% "
                                 "(Esc cancels)")
        return {'PASS_THROUGH'}

    def _end(self, context):
        if self._timer_handle is not None:
            context.window_manager.event_timer_remove(self._timer_handle)
            self._timer_handle = None
        _status_bar(context, None)


def _status_bar(context, text):
    ws = getattr(context, "workspace", None)
    if ws is not None:
        try:
            ws.status_text_set(text)
        except (AttributeError, RuntimeError, TypeError):
            pass


class REMOMASK_OT_cancel(bpy.types.Operator):
    """Cancel the running generation, edit or timeline (the scene stays as it is; the library's jobs go on)"""
    bl_idname = "remomask.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        if not session.cancel_job(context.scene, kinds=session.GENERATION_KINDS):
            self.report({'INFO'}, "Nothing is running.")
            return {'CANCELLED'}
        return {'FINISHED'}


class REMOMASK_OT_new_seed(bpy.types.Operator):
    """Pick a new random seed"""
    bl_idname = "remomask.new_seed"
    bl_label = "New Seed"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        props = context.scene.remomask
        old = props.seed
        new = old
        while new == old:
            new = random.randint(0, 2**31 - 1)
        props.seed = new
        return {'FINISHED'}


class REMOMASK_OT_history_apply(bpy.types.Operator):
    """Key the selected history entry again (onto a new armature or the selected one)"""
    bl_idname = "remomask.history_apply"
    bl_label = "Apply Again"
    bl_options = {'REGISTER', 'UNDO'}

    index: IntProperty(default=-1, options={'SKIP_SAVE'})

    def execute(self, context):
        props = context.scene.remomask
        idx = self.index if self.index >= 0 else props.history_index
        if not (0 <= idx < len(props.history)):
            self.report({'ERROR'}, "Pick an entry in the history first.")
            return {'CANCELLED'}
        item = props.history[idx]
        if not os.path.isfile(item.path):
            self.report({'ERROR'}, f"The motion file is gone: {item.path}")
            return {'CANCELLED'}
        try:
            arm = session.target_armature(context, props.target)
            session.apply_results(context.scene, props.target, arm.name if arm else None,
                                  [{"path": item.path, "prompt": item.prompt, "seed": item.seed, "sample": item.sample}])
        except Exception as exc:   # noqa: BLE001
            self.report({'ERROR'}, f"Could not apply {item.path}: {exc}")
            return {'CANCELLED'}
        return {'FINISHED'}
