"""The add-on's session with the generator: the one backend client, the job table, the main-thread poller that
applies the backend's replies, the timer that drives it, and the load handlers.

Non-blocking generation: an operator (``ops/generate.py``, ``ops/importing.py``, ``ops/backend.py``) validates,
sends a request and records a job here. ``poll_once()`` (main thread) drains the client's events: progress goes
into ``scene.remomask``; a result is keyed in one undo step (``apply_results`` -> ``blender.motion_to_armature``);
an error becomes the status line and leaves the scene as it was. In Blender a ``bpy.app.timers`` callback drives
``poll_once()`` (and the modal part of Generate listens for Esc); in module mode (tests) timers never fire, so
tests call ``poll_once()`` in a loop or use ``synchronous=True``.
"""

from __future__ import annotations

import os
import time

import bpy
from bpy.props import BoolProperty, FloatProperty

from ..blender import motion_to_armature, take_placement
from ..blender.armature import is_smpl_armature
from ..core import backend_setup
from ..core import client as client_mod
from ..core import remote_client
from ..ui import history, preferences

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
    if remote_client.is_service_url(settings.remote):  # the shared service (remomask serve): same interface
        new = remote_client.ServiceClient(settings.remote, settings.token)
    else:
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


# ---------------------------------------------------------------------------------------------- targets
def target_armature(context, target: str):
    """The armature the panel's target names (None: a new one); raises ValueError for a bad selection."""
    obj = context.active_object if target == 'SELECTED' else None
    if target == 'SELECTED':
        err = selected_problem(obj)
        if err:
            raise ValueError(err)
    return obj


def selected_problem(obj) -> str | None:
    if obj is None or obj.type != 'ARMATURE':
        return "Target is 'Selected armature' but the active object is not an armature."
    if obj.mode == 'EDIT':
        return f"Armature '{obj.name}' is in Edit Mode; switch to Object or Pose Mode first."
    return None


def bone_map_for(scene, armature=None):
    """The panel's bone-map choice for retargeting onto ``armature``: None (automatic, or no retarget: a new or
    an SMPL armature), a preset name or a file path."""
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


def apply_results(scene, target: str, armature_name: str | None, motions: list[dict], nla: bool = False,
                  base_name: str = "ReMoMask", start_frame: int | None = None) -> list:
    """Key the backend's result motions (dicts with the file's ``path``) onto a new SMPL armature or the named
    one, through ``motion_to_armature.key_motions`` (which retargets onto a non-SMPL rig and rolls back on an
    error; a new armature is placed as the preferences say, selected, and the frame range fitted). Returns the
    actions, one per motion (one per batch when retargeting an NLA batch)."""
    arm = bpy.data.objects.get(armature_name) if armature_name else None
    if target == 'SELECTED' and arm is None:
        raise ValueError(f"The target armature {armature_name!r} no longer exists.")
    keyed = motion_to_armature.key_motions(
        scene, [m["path"] for m in motions], armature=arm, nla=nla, name=base_name,
        with_body=bool(getattr(scene.remomask, "with_mannequin", True)), bone_map=bone_map_for(scene, arm),
        placement=preferences.settings().place_takes, lock_feet=bool(getattr(scene.remomask, "ground_feet", True)),
        start_frame=start_frame)
    return keyed.actions


# ---------------------------------------------------------------------------------------------- poller
def _undo_push(message: str) -> None:
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        pass        # no window (module mode): nothing to push onto


def _scene(job):
    return bpy.data.scenes.get(job["scene"])


def set_status(scene, text: str, error: bool = False) -> None:
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
    if callable(job.get("cleanup")):
        job["cleanup"]()
    if job.get("handler") is not None:   # a job that handles its own replies (ops/library.py)
        job["handler"](job, {"id": rid, "error": err})
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
            set_status(scene, "Cancelled.")
        elif job["kind"] == "hello":
            set_status(scene, f"Backend check failed: {msg}", error=True)
        else:
            set_status(scene, f"{job.get('what', 'Generation')} failed ({code}): {msg}", error=True)


def _finish_result(rid, result: dict) -> None:
    job = _JOBS.pop(rid, None)
    if job is None:
        return
    if callable(job.get("cleanup")):    # a job's own request files (ops/edit.py: the read-back source)
        job["cleanup"]()
    scene = _scene(job)
    if scene is None:
        return
    props = scene.remomask
    if job["kind"] == "hello":
        device = result.get('device', '?')
        line = (f"Backend {result.get('version', '?')} (protocol {result.get('protocol')}) on {device}, torch "
                f"{result.get('torch')}, GPU used: {'yes' if backend_setup.gpu_used(device) else 'no'}; model: "
                f"{models_summary(result.get('models'))}")
        old = backend_setup.version_problem(result.get("version"), backend_setup.addon_version())
        set_status(scene, f"{old}. {line}" if old else line, error=bool(old))
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
        set_status(scene, "Cancelled.")
        return
    if callable(job.get("apply")):      # a job that applies its own result (ops/edit.py); one undo step
        try:
            set_status(scene, job["apply"](scene, result))
        except Exception as exc:   # noqa: BLE001 - shown to the user, scene left as it was
            set_status(scene, f"Could not apply the {job.get('what', 'result').lower()}: {exc}", error=True)
            return
        _undo_push(job.get("undo", "ReMoMask"))
        return
    motions = list(result.get("motions") or [])
    if not motions:
        set_status(scene, "The backend returned no motion.", error=True)
        return
    try:
        actions = apply_results(scene, job["target"], job.get("armature"), motions, base_name="ReMoMask",
                                start_frame=job.get("start_frame"))
        if job.get("after") is not None:      # an operator's own last step (ops/timeline.py)
            actions = job["after"](scene, motions, actions)
    except Exception as exc:   # noqa: BLE001 - shown to the user, scene left as it was
        set_status(scene, f"Could not apply the motion: {exc}", error=True)
        return
    props.retrieved.clear()
    for cap in motions[0].get("retrieved") or []:
        props.retrieved.add().text = str(cap)
    props.notes.clear()
    for w in result.get("warnings") or []:
        props.notes.add().text = str(w)
    for m, act in zip(motions, actions):
        history.add(scene, m, act.name if act is not None else "")
    props.progress = 1.0
    fit = motions[0].get("fit_error_mm")
    if isinstance(fit, list) and fit and all(isinstance(x, (int, float)) for x in fit):
        fit = sum(fit) / len(fit)
    extra = f", SMPL fit error {float(fit):.1f} mm" if isinstance(fit, (int, float)) else ""
    set_status(scene, f"Generated {len(motions)} motion(s) for {motions[0].get('prompt', '')!r}{extra}.")
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
        set_status(scene, "Batch cancelled.")
        return
    motions = []
    for rid in b["ids"]:
        res = b["results"].get(rid)
        if res:
            motions.extend((res.get("motions") or [])[:1])
    if b["errors"] and not motions:
        set_status(scene, "Batch failed: " + "; ".join(b["errors"]), error=True)
        return
    try:
        if b.get("rigs"):
            actions, done = [], []
            for rid, rig in zip(b["ids"], b["rigs"]):
                res = b["results"].get(rid)
                got = (res.get("motions") or [])[:1] if res else []
                if got:
                    actions += apply_results(scene, 'SELECTED', rig, got, nla=False)
                    done.append(got[0])
            motions = done
            # each take set the frame range to its own frames: the range covers all of them
            take_placement.fit_frame_range(scene, [o for o in map(bpy.data.objects.get, b["rigs"]) if o])
        else:
            actions = apply_results(scene, b["target"], b.get("armature"), motions, nla=True,
                                  base_name="ReMoMask_batch")
    except Exception as exc:   # noqa: BLE001
        set_status(scene, f"Could not apply the batch: {exc}", error=True)
        return
    for m, act in zip(motions, actions):
        history.add(scene, m, act.name if act is not None else "")
    msg = (f"Batch: {len(actions)} motion(s), one per selected rig." if b.get("rigs") else
           f"Batch: {len(actions)} motion(s) laid out in the NLA.")
    if b["errors"]:
        msg += " Failed: " + "; ".join(b["errors"])
    set_status(scene, msg)          # partly done is not an error: what worked is in the scene
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
        if job.get("handler") is not None:   # a job that handles its own replies (ops/library.py)
            if "result" in ev or "error" in ev:
                _JOBS.pop(rid, None)
            job["handler"](job, ev)
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


# ---------------------------------------------------------------------------------------------- operator plumbing
class SyncMixin:
    """``synchronous=True`` makes an operator wait for its jobs (scripts and tests: timers never fire there)."""

    synchronous: BoolProperty(name="Synchronous", default=False, options={'SKIP_SAVE', 'HIDDEN'},
                              description="Wait for the backend (scripts and tests)")
    timeout: FloatProperty(name="Timeout", default=600.0, min=1.0, options={'SKIP_SAVE', 'HIDDEN'})

    def _wait(self, rids, what: str):
        if not wait_for(rids, self.timeout):
            self.report({'ERROR'}, f"{what} timed out after {self.timeout:g} s.")
            return {'CANCELLED'}
        return {'FINISHED'}

    def _started(self, context, rids, what: str, status: str):
        """A request is on its way: show it running; then wait for it (synchronous) or let the timer poll."""
        props = context.scene.remomask
        props.running, props.progress, props.stage = True, 0.0, "starting"
        set_status(context.scene, status)
        if self.synchronous:
            res = self._wait(rids, what)
            if props.status_is_error:
                self.report({'ERROR'}, props.status)
                return {'CANCELLED'}
            return res
        ensure_timer()
        return {'FINISHED'}


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
        set_status(scene, "Cancelling...")
    return any_


# ---------------------------------------------------------------------------------------------- load handlers
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


HANDLERS = (("load_pre", _on_load_pre), ("load_post", _on_load_post))
