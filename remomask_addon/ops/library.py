"""Describe and the motion library (issue 17) in Blender: the operators of the Describe button and the Library
panel (``ui/library_panel.py``).

- *Describe*: the active armature's animation read back as 22 joints at 20 fps (``blender/read_back.py``, any rig
  through its bone map), written to a temporary joints ``.npy`` and sent as the protocol's ``describe``; the top
  captions and their scores land in ``scene.remomask_library`` under the described action's name.
- *Index*: the actions of the folder's ``.blend`` files read back into joints files first
  (``blender/blend_actions.py``, in Blender, incremental), then the protocol's ``library_index`` on the folder,
  in the background, with progress and cancel.
- *Search*: ``library_search`` by text, or by example (the active armature's animation, like Describe).
- *Apply*: the selected hit's window keyed through ``motion_to_armature.key_motions`` (the Generate panel's
  target: a new SMPL armature placed like other takes, or the selected rig, retargeted); one undo step.
- *Preview*: a sequence still of the window (``render_presets``, sequence mode, Workbench), rendered from a
  temporary armature that is removed again with everything the render made, cached in the add-on's user folder by (index, window, file stamp).

Requests go through the session's one client; their replies are handled here, on the main thread, by
``session.poll_once`` through the job's hooks (``_on_progress``, ``_on_result``, ``_on_error``, ``_on_end``; see
``session.Job``). They are library jobs: they neither block nor are cancelled by the Generate panel. Nothing blocks Blender but Apply and Preview, which
are quick and synchronous.
"""

from __future__ import annotations

import os
import uuid

import bpy
from bpy.props import BoolProperty, FloatProperty

from ..blender import blend_actions, motion_to_armature
from ..blender import render_presets as rp
from ..blender.armature import is_smpl_armature
from ..blender.read_back import ReadBackError, armature_joints
from ..core import atomic, library
from ..core import client as client_mod
from ..core.bone_map import RetargetError, load_bone_map
from ..core.motion_io import MotionFileError
from ..ui import preferences
from . import session

DESCRIBE_K = 5
#: Datablock kinds a preview render may create (removed again afterwards).
_PREVIEW_KINDS = ("objects", "meshes", "armatures", "actions", "materials", "collections", "cameras", "lights")


def lib_props(scene):
    return scene.remomask_library


def set_status(scene, text: str, error: bool = False) -> None:
    lib = lib_props(scene)
    lib.status = library.one_line(text)
    lib.status_is_error = error
    if error:
        print(f"ReMoMask library: {lib.status}")


def _work_dir(what: str):
    d = preferences.user_dir(create=True) / "library" / what
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------------------------------------- the active action
def active_animation(context):
    """(armature, action name) of the active object; ValueError with one message when there is nothing to read."""
    arm = context.active_object
    if arm is None or arm.type != 'ARMATURE':
        raise ValueError("Select an armature with an animation (the active object is not an armature).")
    ad = arm.animation_data
    action = ad.action if ad is not None else None
    if action is None and not (ad is not None and len(ad.nla_tracks)):
        raise ValueError(f"'{arm.name}' has no animation to read.")
    return arm, (action.name if action is not None else arm.name)


def read_bone_map(scene, arm) -> dict | None:
    """SMPL joint -> bone of ``arm`` for reading it back: None for an SMPL armature, else the Generate panel's
    bone-map choice (automatic: guessed from the bone names)."""
    if is_smpl_armature(arm):
        return None
    choice = session.bone_map_for(scene, arm)
    if choice is None:
        from ..blender.retarget import auto_bone_map

        return dict(auto_bone_map(arm))
    return dict(load_bone_map(choice))


def write_active_joints(context) -> tuple[str, str]:
    """The active armature's animation as a temporary joints ``.npy`` (22 joints, 20 fps): (path, action name)."""
    import numpy as np

    arm, action = active_animation(context)
    try:
        joints = armature_joints(arm, scene=context.scene, bone_map=read_bone_map(context.scene, arm))
    except (ReadBackError, RetargetError) as exc:
        raise ValueError(str(exc)) from None
    try:
        path = _work_dir("requests") / f"{uuid.uuid4().hex}.npy"
        atomic.atomic_write(path, lambda tmp: np.save(tmp, joints, allow_pickle=False), suffix=".npy")
    except OSError as exc:
        raise ValueError(f"Cannot write the motion to the add-on's user folder: {exc.strerror or exc}") from None
    return str(path), action


# ---------------------------------------------------------------------------------------------- requests and replies
def submit(context, method: str, params: dict, kind: str, **extra) -> int:
    """Send a request through the session's client and record it as a library job (its replies go to the hooks
    below, never to the Generate panel)."""
    settings = preferences.settings(context)
    err = settings.problem()
    if err:
        raise ValueError(err)
    try:
        rid = session.get_client(settings).request(method, params)
    except client_mod.BackendError as exc:
        raise ValueError(str(exc)) from None
    session.add_job(rid, {"kind": kind, "scene": context.scene.name, "on_progress": _on_progress,
                          "on_result": _on_result, "on_error": _on_error, "on_end": _on_end, **extra})
    return rid


def _started(scene, rid, status: str) -> None:
    """The status of a library job that was just sent, with what the backend runs before it (a generation) until
    the job's first progress event."""
    waiting = session.waiting_for([rid], session.GENERATION_KINDS)
    job = session.jobs().get(rid)
    if waiting and job is not None:
        job["queued"] = (f"{status} ({waiting})", status)
    set_status(scene, f"{status} ({waiting})" if waiting else status)


def _on_end(job: dict) -> None:
    tmp = job.get("tmp")
    if tmp:
        try:
            os.remove(tmp)
        except OSError:
            pass


def _on_progress(job: dict, scene, ev: dict) -> None:
    if scene is None or job.get("cancelled"):
        return
    lib = lib_props(scene)
    queued, running = job.pop("queued", (None, None))
    if queued is not None and lib.status == library.one_line(queued):
        set_status(scene, running)              # it runs now: no longer queued after a generation
    if job["kind"] == "library_index":
        lib.progress = max(0.0, min(1.0, float(ev.get("fraction") or 0.0)))


def _done(job: dict, lib) -> None:
    if job["kind"] == "library_index":
        lib.indexing = False
    elif job["kind"] == "describe":
        lib.describing = False


def _on_error(job: dict, scene, err: dict) -> None:
    if scene is None:
        return
    lib = lib_props(scene)
    _done(job, lib)
    kind = job["kind"]
    if err.get("code") == "cancelled" or job.get("cancelled"):
        set_status(scene, "Indexing cancelled; the previous index is kept." if kind == "library_index"
                   else "Cancelled.")
    else:
        what = {"library_index": "Indexing", "describe": "Describe", "library_search": "Search"}[kind]
        set_status(scene, f"{what} failed: {err.get('message', 'unknown error')}", error=True)


def _on_result(job: dict, scene, res: dict) -> None:
    if scene is None:
        return
    lib = lib_props(scene)
    _done(job, lib)
    kind = job["kind"]
    if kind == "describe":
        lib.captions.clear()
        for c in res.get("captions") or []:
            item = lib.captions.add()
            item.caption, item.score = str(c.get("caption", "")), float(c.get("score", 0.0))
        lib.described_action = job.get("action", "")
        set_status(scene, f"Described '{lib.described_action}' ({float(res.get('seconds', 0)):.1f} s).")
    elif kind == "library_index":
        lib.progress = 1.0
        lib.messages.clear()
        messages = list(job.get("blend_messages") or []) + list(res.get("messages") or [])
        for m in messages:
            lib.messages.add().caption = library.one_line(m)
        note = " (built again for this model)" if res.get("rebuilt_for_model") else ""
        set_status(scene, f"Indexed {res.get('files', 0)} file(s), {res.get('windows', 0)} window(s): "
                          f"{len(res.get('embedded') or [])} embedded, {res.get('reused', 0)} unchanged, "
                          f"{len(messages)} unreadable, in {float(res.get('seconds', 0)):.1f} s{note}.")
    else:
        lib.hits.clear()
        for h in res.get("hits") or []:
            item = lib.hits.add()
            item.file, item.path = str(h.get("file", "")), str(h.get("path", ""))
            item.start, item.end = int(h.get("start", 0)), int(h.get("end", 0))
            item.start_s, item.end_s = float(h.get("start_s", 0.0)), float(h.get("end_s", 0.0))
            item.score, item.prompt = float(h.get("score", 0.0)), str(h.get("prompt") or "")
        lib.hit_index = 0
        set_status(scene, f"{len(lib.hits)} result(s) for {job.get('query', '')}.")


class _Async:
    """``synchronous=True`` waits for the reply (scripts and tests: timers never fire there)."""

    synchronous: BoolProperty(name="Synchronous", default=False, options={'SKIP_SAVE', 'HIDDEN'})
    timeout: FloatProperty(name="Timeout", default=600.0, min=1.0, options={'SKIP_SAVE', 'HIDDEN'})

    def _go(self, context, rid):
        if not self.synchronous:
            session.ensure_timer()
            return {'FINISHED'}
        if not session.wait_for([rid], self.timeout):
            self.report({'ERROR'}, f"No answer from the backend after {self.timeout:g} s.")
            return {'CANCELLED'}
        lib = lib_props(context.scene)
        if lib.status_is_error:
            self.report({'ERROR'}, lib.status)
            return {'CANCELLED'}
        return {'FINISHED'}


def _library_folder(context) -> str:
    lib = lib_props(context.scene)
    if not lib.folder.strip():
        raise ValueError("Choose the library folder first.")
    folder = os.path.abspath(bpy.path.abspath(lib.folder))
    if not os.path.isdir(folder):
        raise ValueError(f"Library folder not found: {folder}")
    return folder


def _running(kind: str) -> bool:
    return session.busy({kind})


# ---------------------------------------------------------------------------------------------- operators
class REMOMASK_OT_library_describe(_Async, bpy.types.Operator):
    """Describe the active armature's animation: the closest captions of the model's database"""
    bl_idname = "remomask.library_describe"
    bl_label = "Describe"
    bl_options = {'REGISTER'}

    def execute(self, context):
        lib = lib_props(context.scene)
        try:
            if _running("describe"):
                raise ValueError("A description is already running.")
            path, action = write_active_joints(context)
            try:
                rid = submit(context, "describe", {"source": path, "k": DESCRIBE_K}, "describe", tmp=path,
                             action=action)
            except ValueError:
                os.remove(path)
                raise
        except ValueError as exc:
            set_status(context.scene, str(exc), error=True)
            self.report({'ERROR'}, lib.status)
            return {'CANCELLED'}
        lib.describing = True
        _started(context.scene, rid, f"Describing '{action}'...")
        return self._go(context, rid)


class REMOMASK_OT_library_index(_Async, bpy.types.Operator):
    """Index every motion file of the library folder in the background (only new or changed files)"""
    bl_idname = "remomask.library_index"
    bl_label = "Index Folder"
    bl_options = {'REGISTER'}

    def execute(self, context):
        lib = lib_props(context.scene)
        try:
            if _running("library_index"):
                raise ValueError("The library is already being indexed.")
            folder = _library_folder(context)
            _read, blend_errors = blend_actions.export_blend_actions(context.scene, folder)
            rid = submit(context, "library_index", {"folder": folder}, "library_index",
                         blend_messages=[f"{k}: {v}" for k, v in blend_errors.items()])
        except (ValueError, OSError) as exc:   # OSError: the .blend actions could not be written
            set_status(context.scene, str(exc), error=True)
            self.report({'ERROR'}, lib.status)
            return {'CANCELLED'}
        lib.indexing, lib.progress = True, 0.0
        lib.messages.clear()
        _started(context.scene, rid, f"Indexing {folder}...")
        return self._go(context, rid)


class REMOMASK_OT_library_cancel(bpy.types.Operator):
    """Stop indexing: the previous index stays as it was"""
    bl_idname = "remomask.library_cancel"
    bl_label = "Cancel Indexing"
    bl_options = {'REGISTER'}

    def execute(self, context):
        lib = lib_props(context.scene)
        if session.cancel_job(context.scene, kinds={"library_index"}):     # only the indexing: a generation goes on
            set_status(context.scene, "Cancelling...")
        elif lib.indexing:      # a file saved while indexing: nothing runs for it now
            lib.indexing = False
            set_status(context.scene, "Nothing is being indexed.")
        return {'FINISHED'}


class REMOMASK_OT_library_search(_Async, bpy.types.Operator):
    """Search the library's index for the text in the search field"""
    bl_idname = "remomask.library_search"
    bl_label = "Search"
    bl_options = {'REGISTER'}

    like: BoolProperty(name="By example", default=False, options={'SKIP_SAVE'},
                       description="Search with the active armature's animation instead of the text")

    def execute(self, context):
        lib = lib_props(context.scene)
        tmp = None
        try:
            folder = _library_folder(context)
            params = {"index": folder, "k": int(lib.k)}
            if self.like:
                tmp, action = write_active_joints(context)
                params["like"], query = tmp, f"motions like '{action}'"
            else:
                if not lib.query.strip():
                    raise ValueError("Type what to look for in the search field.")
                params["text"], query = lib.query.strip(), repr(lib.query.strip())
            rid = submit(context, "library_search", params, "library_search", tmp=tmp, query=query)
        except ValueError as exc:
            if tmp:
                os.remove(tmp)
            set_status(context.scene, str(exc), error=True)
            self.report({'ERROR'}, lib.status)
            return {'CANCELLED'}
        _started(context.scene, rid, f"Searching {query}...")
        return self._go(context, rid)


def selected_hit(scene) -> dict:
    lib = lib_props(scene)
    if not len(lib.hits) or not 0 <= lib.hit_index < len(lib.hits):
        raise ValueError("Search the library and select a result first.")
    h = lib.hits[lib.hit_index]
    return {"file": h.file, "path": h.path, "start": h.start, "end": h.end, "start_s": h.start_s,
            "end_s": h.end_s, "score": h.score, "prompt": h.prompt}


class REMOMASK_OT_library_apply(bpy.types.Operator):
    """Key the selected result's window onto the Generate panel's target (a new armature or the selected rig)"""
    bl_idname = "remomask.library_apply"
    bl_label = "Apply"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        scene = context.scene
        props = scene.remomask
        try:
            hit = selected_hit(scene)
            motion = library.window_motion(hit)
            arm = session.target_armature(context, props.target)
            keyed = motion_to_armature.key_motions(
                scene, [motion], armature=arm, name="ReMoMask_library",
                with_body=bool(getattr(props, "with_mannequin", True)), bone_map=session.bone_map_for(scene, arm),
                placement=preferences.settings(context).place_takes)
        except (ValueError, MotionFileError, RetargetError) as exc:
            set_status(scene, str(exc), error=True)
            self.report({'ERROR'}, lib_props(scene).status)
            return {'CANCELLED'}
        except Exception as exc:   # noqa: BLE001 - key_motions rolled the scene back; shown, not a traceback
            set_status(scene, f"Could not apply the window: {exc}", error=True)
            self.report({'ERROR'}, lib_props(scene).status)
            return {'CANCELLED'}
        act = keyed.actions[0] if keyed.actions else None
        set_status(scene, f"Applied {hit['file']} {library.window_label(hit)}"
                          f"{f' as action {act.name!r}' if act is not None else ''}.")
        return {'FINISHED'}


def render_preview(scene, hit: dict, out_path: str) -> str:
    """Render the sequence still of ``hit``'s window to ``out_path``: the window keyed onto a temporary SMPL
    armature with a body in ``scene``, rendered with the render presets (the user's other objects hidden from the
    render and restored), then every datablock this made is removed again and the active object, the selection
    and the frame range are as they were."""
    motion = library.window_motion(hit)
    before = {k: set(getattr(bpy.data, k)) for k in _PREVIEW_KINDS}
    view_layer = bpy.context.view_layer
    active = view_layer.objects.active
    selected = [o for o in scene.objects if o.select_get()]
    frames = (scene.frame_start, scene.frame_end, scene.frame_current)
    try:
        keyed = motion_to_armature.key_motions(scene, [motion], name="ReMoMask_preview", with_body=True,
                                               placement=None, select=False, frame_range=False)
        opts = rp.RenderOptions(mode="sequence", quality="preview", resolution="360p", sequence_count=6,
                                overwrite=True, ground="grid")
        return rp.render_motion(scene, keyed.armature, out_path, opts)
    finally:
        for kind in _PREVIEW_KINDS:
            coll = getattr(bpy.data, kind)
            for idb in [x for x in coll if x not in before[kind]]:
                try:
                    coll.remove(idb)
                except (ReferenceError, RuntimeError):
                    pass
        scene.frame_start, scene.frame_end = frames[0], frames[1]
        scene.frame_set(frames[2])
        for o in selected:
            o.select_set(True)
        view_layer.objects.active = active


class REMOMASK_OT_library_preview(bpy.types.Operator):
    """Show a sequence still of the selected result's window (rendered once, then cached)"""
    bl_idname = "remomask.library_preview"
    bl_label = "Preview"
    bl_options = {'REGISTER'}

    def execute(self, context):
        scene = context.scene
        lib = lib_props(scene)
        try:
            hit = selected_hit(scene)
            path = library.preview_path(_work_dir("previews"), hit, index=lib.folder)
            if not path.is_file():
                render_preview(scene, hit, str(path))
        except (ValueError, OSError, MotionFileError, rp.RenderError) as exc:
            set_status(scene, f"Preview failed: {exc}", error=True)
            self.report({'ERROR'}, lib.status)
            return {'CANCELLED'}
        img = bpy.data.images.load(str(path), check_existing=True)
        img.reload()
        lib.preview = str(path)
        set_status(scene, f"Preview of {hit['file']} {library.window_label(hit)}.")
        return {'FINISHED'}


CLASSES = (REMOMASK_OT_library_describe, REMOMASK_OT_library_index, REMOMASK_OT_library_cancel,
           REMOMASK_OT_library_search, REMOMASK_OT_library_apply, REMOMASK_OT_library_preview)
