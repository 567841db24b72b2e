"""Operators of the ReMoMask panel and the main-thread poller that applies the backend's replies.

Non-blocking generation: ``Generate`` validates, sends a request and returns. ``poll_once()`` (main thread)
drains the client's events: progress goes into ``scene.remomask``; a result is keyed in one undo step; an error
becomes the status line and leaves the scene as it was. In Blender a ``bpy.app.timers`` callback drives
``poll_once()`` (and the modal part of Generate listens for Esc); in module mode (tests) timers never fire, so
tests call ``poll_once()`` in a loop or use ``synchronous=True``.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .core import client as client_mod
from . import history, preferences
from .blender import motion_to_armature
from .core.requests import GenerateRequest, HelloRequest, check_length, parse_batch

POLL_INTERVAL = 0.1

_CLIENT: client_mod.BackendClient | None = None
_JOBS: dict = {}          # request id -> job dict
_BATCHES: dict = {}       # batch key -> {"ids": [...], "results": {id: result}, "errors": [...], ...}
_BATCH_SEQ = [0]


# ---------------------------------------------------------------------------------------------- client
def get_client(settings: preferences.Settings) -> client_mod.BackendClient:
    """The one backend client of this Blender session; recreated when the preferences change."""
    global _CLIENT
    log = None
    try:
        log = str(preferences.user_dir(create=True) / "backend.log")
    except Exception:   # noqa: BLE001 - no user folder: no log file
        pass
    new = client_mod.BackendClient(settings.python, settings.models_dir, settings.device, remote=settings.remote,
                                   token=settings.token, project_dir=settings.project_dir, log_path=log)
    if _CLIENT is not None and _CLIENT.settings_key() == new.settings_key():
        return _CLIENT
    if _CLIENT is not None:
        _fail_jobs_of(_CLIENT, "The backend settings changed; the generator was restarted.")
        _CLIENT.stop()
    _CLIENT = new
    return _CLIENT


def stop_backend() -> None:
    """Stop the backend (frees its GPU memory); pending jobs end with an error status."""
    global _CLIENT
    if _CLIENT is not None:
        _CLIENT.stop()
        try:
            poll_once()           # pending jobs -> "stopped" status on their scenes
        except (AttributeError, ReferenceError, RuntimeError):
            pass                  # restricted context while Blender shuts down
        _CLIENT = None
    _JOBS.clear()
    _BATCHES.clear()


def _fail_jobs_of(c, message):
    for rid in list(_JOBS):
        _finish_error(rid, {"code": client_mod.DEAD, "message": message})


# ---------------------------------------------------------------------------------------------- keying glue
def _target_armature(context, target: str):
    obj = context.active_object if target == 'SELECTED' else None
    if target == 'SELECTED':
        err = _selected_problem(obj)
        if err:
            raise ValueError(err)
    return obj


def _selected_problem(obj) -> str | None:
    if obj is None or obj.type != 'ARMATURE':
        return "Target is 'Selected armature' but the active object is not an armature."
    if obj.mode == 'EDIT':
        return f"Armature '{obj.name}' is in Edit Mode; switch to Object or Pose Mode first."
    return None


def _bone_map(scene, armature=None):
    """The panel's bone-map choice for retargeting onto ``armature``: None (automatic, or no retarget: a new or
    an SMPL armature), a preset name or a file path."""
    from .blender.armature import is_smpl_armature

    if armature is None or is_smpl_armature(armature):
        return None
    props = scene.remomask
    if props.bone_map == 'AUTO':
        return None
    if props.bone_map == 'FILE':
        path = bpy.path.abspath(props.bone_map_file)
        if not props.bone_map_file or not os.path.isfile(path):
            raise ValueError(f"Bone map file not found: {props.bone_map_file!r}")
        return path
    return props.bone_map


def key_motions(scene, target: str, armature_name: str | None, motions: list[dict], nla: bool = False,
                base_name: str = "ReMoMask") -> list:
    """Key the backend's result motions (dicts with the file's ``path``) onto a new SMPL armature or the named
    one, through ``motion_to_armature.key_motions`` (which retargets onto a non-SMPL rig and rolls back on an
    error). Returns the actions, one per motion (one per batch when retargeting an NLA batch)."""
    arm = bpy.data.objects.get(armature_name) if armature_name else None
    if target == 'SELECTED' and arm is None:
        raise ValueError(f"The target armature {armature_name!r} no longer exists.")
    keyed = motion_to_armature.key_motions(
        scene, [m["path"] for m in motions], armature=arm, nla=nla, name=base_name,
        with_body=bool(getattr(scene.remomask, "with_mannequin", True)), bone_map=_bone_map(scene, arm))
    return keyed.actions


def _undo_push(message: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        pass        # no window (module mode): nothing to push onto


# ---------------------------------------------------------------------------------------------- poller
def _scene(job):
    return bpy.data.scenes.get(job["scene"])


def _set_status(scene, text: str, error: bool = False) -> None:
    if scene is None:
        return
    scene.remomask.status = text
    scene.remomask.status_is_error = error
    if error:
        print(f"ReMoMask: {text}")


def _finish_error(rid, err: dict) -> None:
    job = _JOBS.pop(rid, None)
    if job is None:
        return
    scene = _scene(job)
    code = err.get("code", "error")
    msg = err.get("message", "unknown error")
    if job.get("batch"):
        b = _BATCHES.get(job["batch"])
        if b is not None:
            b["errors"].append(f"{job.get('prompt', '')!r}: {msg}")
            _maybe_finish_batch(job["batch"])
        return
    if scene is not None:
        scene.remomask.running = False
        scene.remomask.stage = ""
        if job.get("cancelled") or code == "cancelled":
            _set_status(scene, "Cancelled.")
        elif job["kind"] == "hello":
            _set_status(scene, f"Backend check failed: {msg}", error=True)
        else:
            _set_status(scene, f"Generation failed ({code}): {msg}", error=True)


def _finish_result(rid, result: dict) -> None:
    job = _JOBS.pop(rid, None)
    if job is None:
        return
    scene = _scene(job)
    if scene is None:
        return
    props = scene.remomask
    if job["kind"] == "hello":
        _set_status(scene, f"Backend {result.get('version', '?')} (protocol {result.get('protocol')}) on "
                           f"{result.get('device', '?')}, torch {result.get('torch')}; models: "
                           f"{models_summary(result.get('models'))}")
        job["info"] = result
        return
    if job.get("batch"):
        b = _BATCHES.get(job["batch"])
        if b is not None:
            b["results"][rid] = result
            _maybe_finish_batch(job["batch"])
        return
    props.running = False
    props.stage = ""
    if job.get("cancelled"):
        _set_status(scene, "Cancelled.")
        return
    motions = list(result.get("motions") or [])
    if not motions:
        _set_status(scene, "The backend returned no motion.", error=True)
        return
    try:
        actions = key_motions(scene, job["target"], job.get("armature"), motions, base_name="ReMoMask")
    except Exception as exc:   # noqa: BLE001 - shown to the user, scene left as it was
        _set_status(scene, f"Could not apply the motion: {exc}", error=True)
        return
    props.retrieved.clear()
    for cap in motions[0].get("retrieved") or []:
        props.retrieved.add().text = str(cap)
    for m, act in zip(motions, actions):
        history.add(scene, m, act.name if act is not None else "")
    props.progress = 1.0
    fit = motions[0].get("fit_error_mm")
    if isinstance(fit, list) and fit and all(isinstance(x, (int, float)) for x in fit):
        fit = sum(fit) / len(fit)
    extra = f", SMPL fit error {float(fit):.1f} mm" if isinstance(fit, (int, float)) else ""
    _set_status(scene, f"Generated {len(motions)} motion(s) for {motions[0].get('prompt', '')!r}{extra}.")
    _undo_push("ReMoMask: generate motion")


def _maybe_finish_batch(key) -> None:
    b = _BATCHES.get(key)
    if b is None or len(b["results"]) + len(b["errors"]) < len(b["ids"]):
        return
    _BATCHES.pop(key)
    scene = bpy.data.scenes.get(b["scene"])
    if scene is None:
        return
    props = scene.remomask
    props.running = False
    props.stage = ""
    if b.get("cancelled"):
        _set_status(scene, "Batch cancelled.")
        return
    motions = []
    for rid in b["ids"]:
        res = b["results"].get(rid)
        if res:
            motions.extend((res.get("motions") or [])[:1])
    if b["errors"] and not motions:
        _set_status(scene, "Batch failed: " + "; ".join(b["errors"]), error=True)
        return
    try:
        if b.get("rigs"):
            actions, done = [], []
            for rid, rig in zip(b["ids"], b["rigs"]):
                res = b["results"].get(rid)
                got = (res.get("motions") or [])[:1] if res else []
                if got:
                    actions += key_motions(scene, 'SELECTED', rig, got, nla=False)
                    done.append(got[0])
            motions = done
        else:
            actions = key_motions(scene, b["target"], b.get("armature"), motions, nla=True,
                                  base_name="ReMoMask_batch")
    except Exception as exc:   # noqa: BLE001
        _set_status(scene, f"Could not apply the batch: {exc}", error=True)
        return
    for m, act in zip(motions, actions):
        history.add(scene, m, act.name if act is not None else "")
    msg = (f"Batch: {len(actions)} motion(s), one per selected rig." if b.get("rigs") else
           f"Batch: {len(actions)} motion(s) laid out in the NLA.")
    if b["errors"]:
        msg += " Failed: " + "; ".join(b["errors"])
    _set_status(scene, msg)          # partly done is not an error: what worked is in the scene
    _undo_push("ReMoMask: batch")


def models_summary(models) -> str:
    """One line out of hello's ``models`` (which can hold a whole provenance or config): kind, folder, and
    what is missing."""
    if not isinstance(models, dict) or not models:
        return "none"
    folder = os.path.basename(os.path.normpath(str(models.get("path", "")))) or "?"
    parts = [f"{models.get('kind', 'unknown')} ({folder})"]
    if str(models.get("retrieval", "")).startswith("retrieval unavailable"):
        parts.append("no retrieval")
    if models.get("length_estimator", True) in (None, False):
        parts.append("no length estimator")
    return ", ".join(parts)


def poll_once() -> int:
    """Apply every event the backend has sent so far (main thread only). Returns how many were handled."""
    if _CLIENT is None:
        return 0
    events = _CLIENT.poll()
    for ev in events:
        rid = ev.get("id")
        job = _JOBS.get(rid)
        if job is None:
            continue
        if ev.get("event") == "progress":
            scene = _scene(job)
            if scene is not None and not job.get("cancelled"):
                frac = float(ev.get("fraction") or 0.0)
                if job.get("batch"):
                    b = _BATCHES.get(job["batch"])
                    if b is not None:
                        done = len(b["results"]) + len(b["errors"])
                        frac = (done + frac) / max(1, len(b["ids"]))
                scene.remomask.progress = max(0.0, min(1.0, frac))
                scene.remomask.stage = str(ev.get("stage") or "")
        elif "result" in ev:
            _finish_result(rid, ev["result"] or {})
        elif "error" in ev:
            _finish_error(rid, ev["error"] or {})
    if events:
        _redraw()
    return len(events)


def busy() -> bool:
    return bool(_JOBS)


def _redraw():
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for win in wm.windows:
        for area in win.screen.areas:
            if area.type in {'VIEW_3D', 'PREFERENCES'}:
                area.tag_redraw()


def _timer():
    poll_once()
    from .core import backend_setup
    if _JOBS or backend_setup.STATE.running:
        return POLL_INTERVAL
    return None


def ensure_timer() -> None:
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=POLL_INTERVAL)


def remove_timer() -> None:
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)


def wait_for(rids, timeout: float) -> bool:
    """Poll until none of ``rids`` is pending (True) or the timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poll_once()
        if not any(r in _JOBS for r in rids):
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------------------- validation
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
        err = _selected_problem(context.active_object)
        if err:
            return err
    if _JOBS:
        return "A generation is already running; wait for it or press Cancel."
    return settings.problem()


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
                           ground_feet=bool(getattr(props, "ground_feet", True)), out_dir=_motions_dir())


# ---------------------------------------------------------------------------------------------- operators
class _SyncMixin:
    synchronous: BoolProperty(name="Synchronous", default=False, options={'SKIP_SAVE', 'HIDDEN'},
                              description="Wait for the backend (scripts and tests)")
    timeout: FloatProperty(name="Timeout", default=600.0, min=1.0, options={'SKIP_SAVE', 'HIDDEN'})

    def _wait(self, rids, what: str):
        if not wait_for(rids, self.timeout):
            self.report({'ERROR'}, f"{what} timed out after {self.timeout:g} s.")
            return {'CANCELLED'}
        return {'FINISHED'}


class REMOMASK_OT_generate(_SyncMixin, bpy.types.Operator):
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
            c = get_client(settings)
            rid = c.request(req.method, req.to_params())
        except client_mod.BackendError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        armature = context.active_object.name if props.target == 'SELECTED' else None
        _JOBS[rid] = {"kind": "generate", "scene": context.scene.name, "target": props.target,
                      "armature": armature, "prompt": req.prompt}
        self._rid = rid
        props.running = True
        props.progress = 0.0
        props.stage = "starting"
        _set_status(context.scene, f"Generating {req.prompt!r}...")
        if self.synchronous:
            res = self._wait([rid], "Generation")
            if props.status_is_error:
                self.report({'ERROR'}, props.status)
                return {'CANCELLED'}
            return res
        ensure_timer()
        return {'FINISHED'}

    def invoke(self, context, event):
        res = self.execute(context)
        if res != {'FINISHED'} or self.synchronous or self._rid is None:
            return res
        wm = context.window_manager
        self._timer_handle = wm.event_timer_add(POLL_INTERVAL, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type == 'ESC' and event.value == 'PRESS':
            cancel_job(context.scene, self._rid)
            self._end(context)
            return {'CANCELLED'}
        if event.type == 'TIMER':
            poll_once()
            if self._rid not in _JOBS:
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


def cancel_job(scene, rid=None) -> bool:
    """Cancel one job (or all of this scene's). The scene is left as it is; a late result is dropped."""
    ids = [rid] if rid is not None else [r for r, j in _JOBS.items() if j["scene"] == scene.name]
    any_ = False
    for r in ids:
        job = _JOBS.get(r)
        if job is None:
            continue
        job["cancelled"] = True
        any_ = True
        if job.get("batch") and job["batch"] in _BATCHES:
            _BATCHES[job["batch"]]["cancelled"] = True
        if _CLIENT is not None:
            try:
                _CLIENT.cancel(r)
            except (client_mod.BackendError, OSError):
                pass
    if any_:
        scene.remomask.running = False
        scene.remomask.stage = ""
        _set_status(scene, "Cancelling...")
    return any_


class REMOMASK_OT_cancel(bpy.types.Operator):
    """Cancel the running generation (the scene stays as it is)"""
    bl_idname = "remomask.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        if not cancel_job(context.scene):
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
            arm = _target_armature(context, props.target)
            key_motions(context.scene, props.target, arm.name if arm else None,
                        [{"path": item.path, "prompt": item.prompt, "seed": item.seed, "sample": item.sample}])
        except Exception as exc:   # noqa: BLE001
            self.report({'ERROR'}, f"Could not apply {item.path}: {exc}")
            return {'CANCELLED'}
        return {'FINISHED'}


class REMOMASK_OT_import_motion(bpy.types.Operator):
    """Import a motion file (.npz from the generator, or .npy joints) without the backend"""
    bl_idname = "remomask.import_motion"
    bl_label = "Import Motion"
    bl_options = {'REGISTER', 'UNDO'}

    filepath: StringProperty(subtype='FILE_PATH', options={'SKIP_SAVE'})
    filter_glob: StringProperty(default="*.npz;*.npy", options={'HIDDEN'})
    target: EnumProperty(name="Target", items=[
        ('PANEL', "As in the panel", ""),
        ('NEW', "New SMPL armature", ""),
        ('SELECTED', "Selected armature", ""),
    ], default='PANEL')

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}

    def execute(self, context):
        path = bpy.path.abspath(self.filepath)
        if not path or not os.path.isfile(path):
            self.report({'ERROR'}, f"No such motion file: {self.filepath!r}")
            return {'CANCELLED'}
        ext = Path(path).suffix.lower()
        if ext not in (".npz", ".npy"):
            self.report({'ERROR'}, f"Unsupported file type {ext!r}: expected .npz (motion) or .npy (joints).")
            return {'CANCELLED'}
        target = context.scene.remomask.target if self.target == 'PANEL' else self.target
        scene = context.scene
        try:
            arm = _target_armature(context, target)
            arm = motion_to_armature.key_motions(
                scene, [path], armature=arm, name="ReMoMask_import", with_body=bool(scene.remomask.with_mannequin),
                bone_map=_bone_map(scene, arm)).armature
        except Exception as exc:   # noqa: BLE001 - bad files: one clear message, nothing half-made
            self.report({'ERROR'}, f"Could not import {os.path.basename(path)}: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported {os.path.basename(path)} onto {arm.name}.")
        return {'FINISHED'}


class REMOMASK_OT_batch(_SyncMixin, bpy.types.Operator):
    """Generate one motion per line of a text block or file and lay them out in the NLA"""
    bl_idname = "remomask.batch"
    bl_label = "Generate Batch"
    bl_options = {'REGISTER'}

    def execute(self, context):
        props = context.scene.remomask
        if props.batch_text:
            txt = bpy.data.texts.get(props.batch_text)
            if txt is None:
                self.report({'ERROR'}, f"No text block named {props.batch_text!r}.")
                return {'CANCELLED'}
            source = txt.as_string()
        elif props.batch_file:
            path = bpy.path.abspath(props.batch_file)
            try:
                source = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                self.report({'ERROR'}, f"Could not read the batch file: {exc}")
                return {'CANCELLED'}
        else:
            self.report({'ERROR'}, "Choose a text block or a file with one prompt per line.")
            return {'CANCELLED'}
        try:
            lines = parse_batch(source)
        except ValueError as exc:
            self.report({'ERROR'}, f"Batch: {exc}")
            return {'CANCELLED'}
        if not lines:
            self.report({'ERROR'}, "The batch has no prompts.")
            return {'CANCELLED'}
        settings = preferences.settings(context)
        err = validate_generate(context, settings, prompts=[p for p, _ in lines])
        if err and not err.startswith("Length"):
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        default_len = None if props.auto_length else float(props.length_s)
        if default_len is not None and check_length(default_len):
            self.report({'ERROR'}, check_length(default_len))
            return {'CANCELLED'}
        rigs = None
        if props.batch_layout == 'RIGS':
            # Blender does not record the order of a selection: the rigs are taken in name order.
            rigs = sorted(o.name for o in context.selected_objects if o.type == 'ARMATURE')
            if len(rigs) != len(lines):
                self.report({'ERROR'}, f"The batch has {len(lines)} prompt(s) but {len(rigs)} armature(s) are "
                                       "selected: select one armature per prompt.")
                return {'CANCELLED'}
        _BATCH_SEQ[0] += 1
        key = f"batch{_BATCH_SEQ[0]}"
        armature = context.active_object.name if props.target == 'SELECTED' and rigs is None else None
        ids = []
        try:
            c = get_client(settings)
            for prompt, length in lines:
                req = replace(generate_request(props, prompt, length if length is not None else default_len),
                              samples=1)
                rid = c.request(req.method, req.to_params())
                ids.append(rid)
                _JOBS[rid] = {"kind": "generate", "scene": context.scene.name, "batch": key, "prompt": prompt}
        except client_mod.BackendError as exc:
            for rid in ids:
                _JOBS.pop(rid, None)
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        _BATCHES[key] = {"ids": ids, "results": {}, "errors": [], "scene": context.scene.name,
                         "target": props.target, "armature": armature, "rigs": rigs}
        props.running = True
        props.progress = 0.0
        props.stage = "starting"
        _set_status(context.scene, f"Batch of {len(ids)} prompt(s)...")
        if self.synchronous:
            res = self._wait(ids, "Batch")
            if props.status_is_error:
                self.report({'ERROR'}, props.status)
                return {'CANCELLED'}
            return res
        ensure_timer()
        return {'FINISHED'}


class REMOMASK_OT_check_backend(_SyncMixin, bpy.types.Operator):
    """Start the backend (if needed) and show its version, device and models"""
    bl_idname = "remomask.check_backend"
    bl_label = "Check Backend"

    def execute(self, context):
        settings = preferences.settings(context)
        err = settings.problem()
        if err:
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        try:
            req = HelloRequest(token=settings.token)
            rid = get_client(settings).request(req.method, req.to_params())
        except client_mod.BackendError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        _JOBS[rid] = {"kind": "hello", "scene": context.scene.name}
        _set_status(context.scene, "Checking the backend...")
        if self.synchronous:
            res = self._wait([rid], "Backend check")
            props = context.scene.remomask
            self.report({'ERROR'} if props.status_is_error else {'INFO'}, props.status)
            return {'CANCELLED'} if props.status_is_error else res
        ensure_timer()
        return {'FINISHED'}


class REMOMASK_OT_release_backend(bpy.types.Operator):
    """Stop the backend process (frees its GPU memory); the next generation starts it again"""
    bl_idname = "remomask.release_backend"
    bl_label = "Release Generator"

    def execute(self, context):
        running = _CLIENT is not None and _CLIENT.alive
        for scene in bpy.data.scenes:
            cancel_job(scene)
        stop_backend()
        self.report({'INFO'}, "Generator stopped." if running else "The generator was not running.")
        return {'FINISHED'}


class REMOMASK_OT_setup_backend(bpy.types.Operator):
    """Create a Python environment in the add-on's user folder and install the generator (torch) into it"""
    bl_idname = "remomask.setup_backend"
    bl_label = "Set Up Backend"

    synchronous: BoolProperty(default=False, options={'SKIP_SAVE', 'HIDDEN'})

    def execute(self, context):
        from .core import backend_setup
        if not bpy.app.online_access:
            self.report({'ERROR'}, "Setting up the backend downloads packages (pip), but Blender's online access "
                                   "is off. Allow it in Preferences > System > Network, or set 'Backend Python' "
                                   "to an environment you made yourself.")
            return {'CANCELLED'}
        settings = preferences.settings(context)
        project = settings.project_dir
        if not project or not os.path.isfile(os.path.join(project, "pyproject.toml")):
            self.report({'ERROR'}, "Set 'Project folder' (your ReMoMask for Blender checkout, with "
                                   "pyproject.toml) in the add-on preferences first.")
            return {'CANCELLED'}
        if backend_setup.STATE.running:
            self.report({'ERROR'}, "The backend set-up is already running.")
            return {'CANCELLED'}
        user = preferences.user_dir(create=True)
        state = backend_setup.start(user, project, synchronous=self.synchronous)
        if self.synchronous:
            if state.failed:
                self.report({'ERROR'}, state.message)
                return {'CANCELLED'}
            self.report({'INFO'}, state.message)
            return {'FINISHED'}
        ensure_timer()
        self.report({'INFO'}, f"Setting up the backend in {user} (log: {state.log_path})")
        return {'FINISHED'}


CLASSES = (REMOMASK_OT_generate, REMOMASK_OT_cancel, REMOMASK_OT_new_seed, REMOMASK_OT_history_apply,
           REMOMASK_OT_import_motion, REMOMASK_OT_batch, REMOMASK_OT_check_backend, REMOMASK_OT_release_backend,
           REMOMASK_OT_setup_backend)


@bpy.app.handlers.persistent
def _on_load_pre(*_args):
    """Opening another file: running jobs are cancelled (their results would land in the wrong file)."""
    for rid in list(_JOBS):
        if _CLIENT is not None:
            try:
                _CLIENT.cancel(rid)
            except (client_mod.BackendError, OSError):
                pass
    _JOBS.clear()
    _BATCHES.clear()


@bpy.app.handlers.persistent
def _on_load_post(*_args):
    """A file saved while generating still says 'running': nothing runs for it now."""
    for scene in bpy.data.scenes:
        props = getattr(scene, "remomask", None)
        if props is not None and props.running:
            props.running = False
            props.stage = ""


_HANDLERS = (("load_pre", _on_load_pre), ("load_post", _on_load_post))


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for name, fn in _HANDLERS:
        getattr(bpy.app.handlers, name).append(fn)


def unregister():
    remove_timer()
    stop_backend()
    for name, fn in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        while fn in handlers:
            handlers.remove(fn)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
