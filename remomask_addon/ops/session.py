"""The add-on's session with the generator: the one backend client, the job table, the main-thread poller that
applies the backend's replies, the timer that drives it, and the load handlers.

Non-blocking generation: an operator (``ops/generate.py``, ``ops/importing.py``, ``ops/backend.py``) validates,
sends a request and records a job here. ``poll_once()`` (main thread) drains the client's events: progress goes
into ``scene.remomask``; a result is keyed in one undo step (``apply_results`` -> ``blender.motion_to_armature``);
an error becomes the status line and leaves the scene as it was. In Blender a ``bpy.app.timers`` callback drives
``poll_once()`` (and the modal part of Generate listens for Esc); in module mode (tests) timers never fire, so
tests call ``poll_once()`` in a loop or use ``synchronous=True``.

Every request the add-on sends is a *job* in ``_JOBS`` (request id -> ``Job``, the one schema below), recorded with
``add_job``. A job's ``kind`` says which panel it belongs to: the generation kinds (``GENERATION_KINDS``: Generate,
Batch, Edit, Timeline) share the Generate panel's running/progress/status and its Cancel, one at a time; the
library kinds (``LIBRARY_KINDS``) report to the Library panel through their own hooks and neither block nor are
cancelled by a generation. The backend runs one request at a time and queues the others, so a job started while
one of the other group runs says that it waits until its first progress event (``waiting_for``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, TypedDict

import bpy
from bpy.props import BoolProperty, FloatProperty

from ..blender import motion_to_armature, take_placement
from ..blender.armature import is_smpl_armature
from ..core import backend_setup
from ..core import client as client_mod
from ..core import examples
from ..core import remote_client
from ..ui import history, preferences

POLL_INTERVAL = 0.1

GENERATION_KINDS = frozenset({"generate", "edit", "timeline"})   # the Generate panel's jobs
LIBRARY_KINDS = frozenset({"describe", "library_index", "library_search"})   # the Library panel's jobs
KINDS = GENERATION_KINDS | LIBRARY_KINDS | {"hello"}                # hello: Check Backend


class Job(TypedDict, total=False):
    """One pending request (a dict with these keys; ``kind`` and ``scene`` are required).

    The hooks replace the session's default for one event; each gets the job, its scene (None when the scene was
    removed) and the event's payload:

    - ``on_progress(job, scene, event)``: a progress event (default: the Generate panel's progress and stage).
    - ``on_result(job, scene, result) -> str | None``: the result (default: ``key_result``, the motions keyed
      onto the panel's target). For a generation kind the session does the rest: the panel stops running, the
      returned line becomes the status, one undo step (``undo``) is pushed, and an exception becomes the error
      status "Could not apply the <what>: ..." with the scene left as the hook left it (hooks roll back).
      A library job's hook owns its panel: the session does nothing else.
    - ``on_error(job, scene, error)``: the error reply (also "cancelled" and a dead backend; default: the
      Generate panel's error status).
    - ``on_end(job)``: every end, first, exactly once: a result, an error, a cancelled job's late reply, the
      backend stopped, another file opened (the job's temporary files).
    """

    kind: str                   # one of KINDS
    scene: str                  # the name of the scene the job reports to
    what: str                   # for its messages: "Edit", "Timeline" (default "Generation" / "motion")
    prompt: str
    target: str                 # the Generate panel's target ('NEW' / 'SELECTED') for the default keying
    armature: str | None        # the target armature's name
    start_frame: int | None     # where the default keying starts
    batch: str                  # a batch's key in _BATCHES (ops/importing.py)
    undo: str                   # the undo step's name after on_result
    cancelled: bool
    info: dict                  # hello's result
    on_progress: Callable[[Any, Any, dict], None]
    on_result: Callable[[Any, Any, dict], str | None]
    on_error: Callable[[Any, Any, dict], None]
    on_end: Callable[[Any], None]
    # plus the operator's own keys (ops/library.py: tmp, action, query, blend_messages)


_HOOKS = ("on_progress", "on_result", "on_error", "on_end")
_NOUNS = {"generate": "a generation", "edit": "an edit", "timeline": "a timeline generation",
          "describe": "a description", "library_index": "library indexing", "library_search": "a library search",
          "hello": "a backend check"}

_CLIENT: client_mod.BackendClient | None = None
_JOBS: dict = {}          # request id -> Job
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
    examples.keep_for(new.settings_key())      # the examples came from a backend with these settings
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
    _drop_all()


def _fail_jobs_of(c, message):
    for rid in list(_JOBS):
        _finish_error(rid, {"code": client_mod.DEAD, "message": message})


# ---------------------------------------------------------------------------------------------- jobs
def add_job(rid, job: Job) -> Job:
    """Record the request ``rid`` as ``job`` (see ``Job``); ValueError for a job that breaks the schema."""
    if job.get("kind") not in KINDS:
        raise ValueError(f"Unknown job kind {job.get('kind')!r}; one of {sorted(KINDS)}.")
    if not isinstance(job.get("scene"), str):
        raise ValueError("A job needs the name of its scene.")
    for hook in _HOOKS:
        if job.get(hook) is not None and not callable(job[hook]):
            raise ValueError(f"The job's {hook} is not callable.")
    _JOBS[rid] = job
    return job


def jobs(kinds=None) -> dict:
    """The pending jobs (request id -> Job), only those of ``kinds`` when given."""
    return {r: j for r, j in _JOBS.items() if kinds is None or j.get("kind") in kinds}


def busy(kinds=None) -> bool:
    """Whether a job (of ``kinds``) is pending."""
    return bool(jobs(kinds))


def generation_busy() -> str | None:
    """The message for starting a generation, an edit or a timeline while one of them runs (they share the
    Generate panel's progress, status and Cancel: one at a time); None when none runs. Library jobs do not count."""
    running = jobs(GENERATION_KINDS)
    if not running:
        return None
    job = next(iter(running.values()))
    what = "a batch" if job.get("batch") else _NOUNS.get(job.get("kind"), "a generation")
    return f"{what[0].upper()}{what[1:]} is already running; wait for it or press Cancel."


def waiting_for(rids, kinds=None) -> str:
    """What the backend (one request at a time, the others queued) runs before ``rids``: "" when no other job
    of ``kinds`` is pending, else e.g. "queued after library indexing"."""
    others = sorted({_NOUNS.get(j.get("kind"), "another request") for r, j in jobs(kinds).items()
                     if r not in rids and not j.get("cancelled")})
    return f"queued after {' and '.join(others)}" if others else ""


def _end(job) -> None:
    """A job's end hook, exactly once."""
    hook = job.pop("on_end", None)
    if callable(hook):
        hook(job)


def _drop_all() -> None:
    """Forget every job (their end hooks run) and batch."""
    for rid in list(_JOBS):
        job = _JOBS.pop(rid, None)
        if job is not None:
            try:
                _end(job)
            except Exception as exc:   # noqa: BLE001 - a temporary file that cannot go: nothing to tell
                print(f"ReMoMask: {exc}")
    _BATCHES.clear()


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
    _end(job)
    scene = _scene(job)
    if job.get("on_error") is not None:     # a job that shows its own errors (ops/library.py)
        job["on_error"](job, scene, err)
        return
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


class ResultError(Exception):
    """A result that cannot be applied, with the whole message for the status line."""


def _finish_result(rid, result: dict) -> None:
    job = _JOBS.pop(rid, None)
    if job is None:
        return
    _end(job)                           # a job's own request files (ops/edit.py: the read-back source)
    scene = _scene(job)
    if job["kind"] in LIBRARY_KINDS:    # the Library panel's job: its hook does everything
        if job.get("on_result") is not None:
            job["on_result"](job, scene, result)
        return
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
        examples.remember(result, _CLIENT.settings_key() if _CLIENT is not None else None)
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
    apply = job.get("on_result") or key_result
    try:
        line = apply(job, scene, result)
    except ResultError as exc:
        set_status(scene, str(exc), error=True)
        return
    except Exception as exc:   # noqa: BLE001 - shown to the user, scene left as it was
        set_status(scene, f"Could not apply the {job.get('what', 'motion').lower()}: {exc}", error=True)
        return
    if line is not None:
        set_status(scene, line)
    _undo_push(job.get("undo", "ReMoMask: generate motion"))


def key_result(job: Job, scene, result: dict, after=None) -> str:
    """The default ``on_result``: key the result's motions onto the job's target (``apply_results``), then
    ``after(scene, motions, actions) -> actions`` when given (ops/timeline.py), then the panel's retrieved
    captions, notes, history and progress. Returns the status line; raises with the scene as it was."""
    props = scene.remomask
    motions = list(result.get("motions") or [])
    if not motions:
        raise ResultError("The backend returned no motion.")
    actions = apply_results(scene, job["target"], job.get("armature"), motions, base_name="ReMoMask",
                            start_frame=job.get("start_frame"))
    if after is not None:
        actions = after(scene, motions, actions)
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
    return f"Generated {len(motions)} motion(s) for {motions[0].get('prompt', '')!r}{extra}."


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
        if ev.get("event") == "progress":
            scene = _scene(job)
            if job.get("on_progress") is not None:
                job["on_progress"](job, scene, ev)
            elif scene is not None and not job.get("cancelled"):
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
        """A request is on its way: show it running (its stage says what it waits for: a library job the backend
        runs first); then wait for it (synchronous) or let the timer poll."""
        props = context.scene.remomask
        props.running, props.progress = True, 0.0
        props.stage = waiting_for(rids, LIBRARY_KINDS) or "starting"
        set_status(context.scene, status)
        if self.synchronous:
            res = self._wait(rids, what)
            if props.status_is_error:
                self.report({'ERROR'}, props.status)
                return {'CANCELLED'}
            return res
        ensure_timer()
        return {'FINISHED'}


def cancel_job(scene, rid=None, kinds=None) -> bool:
    """Cancel one job, or this scene's jobs (only those of ``kinds`` when given). The scene is left as it is; a
    late result is dropped. The Generate panel shows "Cancelling..." when one of its own jobs was cancelled."""
    ids = [rid] if rid is not None else [r for r, j in jobs(kinds).items() if j["scene"] == scene.name]
    any_ = panel = False
    for r in ids:
        job = _JOBS.get(r)
        if job is None:
            continue
        job["cancelled"] = True
        any_ = True
        panel = panel or job.get("kind") not in LIBRARY_KINDS
        if job.get("batch") and job["batch"] in _BATCHES:
            _BATCHES[job["batch"]]["cancelled"] = True
        if _CLIENT is not None:
            try:
                _CLIENT.cancel(r)
            except (client_mod.BackendError, OSError):
                pass
    if panel:
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
    _drop_all()


@bpy.app.handlers.persistent
def _on_load_post(*_args):
    """A file saved while generating still says 'running': nothing runs for it now."""
    for scene in bpy.data.scenes:
        props = getattr(scene, "remomask", None)
        if props is not None and props.running:
            props.running = False
            props.stage = ""


HANDLERS = (("load_pre", _on_load_pre), ("load_post", _on_load_post))
