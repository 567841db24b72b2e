"""Render Motion (a preset render of the selected motion: modal, one frame per timer tick, Esc cancels, nothing
written on cancel; synchronous in background mode, where modal operators never run), Cancel Render and Export
Motion (BVH, FBX, glTF through Blender's exporters). Their settings are ``scene.remomask_render``
(``ui/props.py``); an existing output is never replaced without asking."""

from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty, StringProperty

from ..blender import export as export_mod
from ..blender import render_presets as rp

#: The running render job (one at a time), stepped by the modal operator.
_ACTIVE = {"job": None}


def active_armature(context):
    """The active armature, or the armature of the active body mesh; None otherwise."""
    obj = context.active_object
    if obj is not None and obj.type == "MESH" and obj.parent is not None and obj.parent.type == "ARMATURE":
        obj = obj.parent
    return obj if obj is not None and obj.type == "ARMATURE" else None


def _output_path(settings, armature, suffix_for_mode: str) -> str:
    """Resolve the output setting: a folder gets a file name from the action; a file keeps its name."""
    raw = settings.output.strip() or "//remomask/"
    if raw.startswith("//") and not bpy.data.filepath:
        raise rp.RenderError("Save the .blend file first, or choose an absolute output folder.")
    path = bpy.path.abspath(raw)
    action = armature.animation_data.action if armature.animation_data else None
    stem = bpy.path.clean_name(action.name if action else armature.name)
    if raw.endswith(("/", "\\")) or os.path.isdir(path):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as err:          # e.g. a part of the path is a file
            raise rp.RenderError(f"Cannot create the output folder {path}: {err.strerror or err}") from None
        return os.path.join(path, suffix_for_mode.format(stem=stem))
    return path


def _caption(armature) -> str | None:
    action = armature.animation_data.action if armature.animation_data else None
    prompt = action.get("remomask_prompt") if action is not None else None
    return str(prompt or (action.name if action else armature.name))


class REMOMASK_OT_render(bpy.types.Operator):
    """Render the selected motion with the chosen preset (Esc cancels)"""

    bl_idname = "remomask.render"
    bl_label = "Render Motion"
    bl_options = {"REGISTER"}

    overwrite: BoolProperty(name="Overwrite", default=False, options={"SKIP_SAVE"})
    synchronous: BoolProperty(default=False, options={"HIDDEN", "SKIP_SAVE"})

    _timer = None

    def _options(self, context, armature) -> tuple[str, rp.RenderOptions]:
        s = context.scene.remomask_render
        opts = rp.RenderOptions(mode=s.mode, quality=s.quality, resolution=s.resolution, camera=s.camera,
                                ground=s.ground, caption=_caption(armature) if s.caption else None,
                                sequence_count=s.sequence_count, include_scene=s.include_scene,
                                overwrite=self.overwrite)
        name = {"video": "{stem}.mp4", "frames": "{stem}_frames", "sequence": "{stem}_sequence.png"}[s.mode]
        return _output_path(s, armature, name), opts

    def invoke(self, context, event):
        armature = active_armature(context)
        if armature is None:
            self.report({"ERROR"}, "Select the armature to render (a generated or imported motion).")
            return {"CANCELLED"}
        try:
            path, _ = self._options(context, armature)
        except rp.RenderError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if os.path.exists(path) and not self.overwrite:
            self.overwrite = True  # confirmed below
            return context.window_manager.invoke_confirm(self, event, title="Replace existing render?",
                                                         message=path)
        return self.execute(context)

    def execute(self, context):
        if _ACTIVE["job"] is not None:
            self.report({"ERROR"}, "A render is already running.")
            return {"CANCELLED"}
        armature = active_armature(context)
        if armature is None:
            self.report({"ERROR"}, "Select the armature to render (a generated or imported motion).")
            return {"CANCELLED"}
        settings = context.scene.remomask_render
        try:
            path, opts = self._options(context, armature)
            job = rp.RenderJob(context.scene, armature, path, opts)
        except rp.RenderError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if self.synchronous or bpy.app.background:
            try:
                out = job.run()
            except rp.RenderError as err:
                self.report({"ERROR"}, str(err))
                return {"CANCELLED"}
            self.report({"INFO"}, f"Rendered {out}")
            return {"FINISHED"}
        _ACTIVE["job"] = job
        settings.running, settings.progress = True, 0.0
        wm = context.window_manager
        wm.progress_begin(0, 100)
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = _ACTIVE["job"]
        if event.type == "ESC":
            job.cancel()
        if event.type not in {"TIMER", "ESC"}:
            return {"PASS_THROUGH"}
        try:
            more = job.step()
        except rp.RenderError as err:
            self._end(context)
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        settings = context.scene.remomask_render
        settings.progress = job.progress
        context.window_manager.progress_update(int(100 * job.progress))
        for area in context.screen.areas if context.screen else []:
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if more:
            return {"RUNNING_MODAL"}
        self._end(context)
        if job.cancelled:
            self.report({"WARNING"}, "Render cancelled; nothing was written.")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Rendered {job.out_path}")
        return {"FINISHED"}

    def _end(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        context.scene.remomask_render.running = False
        _ACTIVE["job"] = None


class REMOMASK_OT_render_cancel(bpy.types.Operator):
    """Cancel the running render (nothing is written)"""

    bl_idname = "remomask.render_cancel"
    bl_label = "Cancel Render"

    def execute(self, context):
        job = _ACTIVE["job"]
        if job is None:
            return {"CANCELLED"}
        job.cancel()
        return {"FINISHED"}


def export_needs_confirm(path: str, overwrite: bool) -> bool:
    """Whether Export must ask before writing ``path``: it exists and replacing it was not agreed to."""
    return bool(path) and os.path.exists(path) and not overwrite


def _interactive(context) -> bool:
    """A window to ask in (not background mode, not a script without one)."""
    return not bpy.app.background and getattr(context, "window", None) is not None


def _ask_replace(path: str) -> None:
    """Ask whether to replace ``path`` (a confirmation popup); the export runs when the user agrees."""
    bpy.ops.remomask.export_replace("INVOKE_DEFAULT", filepath=path)


class REMOMASK_OT_export(bpy.types.Operator):
    """Export the selected armature's motion with Blender's own exporter (a file dialog; asks before replacing a
    file)"""

    bl_idname = "remomask.export"
    bl_label = "Export Motion"

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: StringProperty(default="*.fbx;*.bvh;*.glb;*.gltf", options={"HIDDEN"})
    #: The file browser marks an existing name in red; replacing it is still asked for in execute().
    check_existing: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    overwrite: BoolProperty(name="Overwrite", default=False, options={"SKIP_SAVE"})

    def _path(self, context, armature) -> str:
        s = context.scene.remomask_render
        path = bpy.path.abspath(self.filepath) if self.filepath else \
            _output_path(s, armature, "{stem}" + s.export_format)
        if os.path.splitext(path)[1].lower() not in export_mod.FORMATS:
            path += s.export_format
        return path

    def invoke(self, context, event):
        armature = active_armature(context)
        if armature is None:
            self.report({"ERROR"}, "Select an armature to export.")
            return {"CANCELLED"}
        if not self.filepath:
            s = context.scene.remomask_render
            action = armature.animation_data.action if armature.animation_data else None
            name = bpy.path.clean_name(action.name if action else armature.name) + s.export_format
            raw = s.output.strip() or "//remomask/"
            folder = bpy.path.abspath(raw) if (not raw.startswith("//") or bpy.data.filepath) else ""
            if folder and not raw.endswith(("/", "\\")) and not os.path.isdir(folder):
                folder = os.path.dirname(folder)
            self.filepath = os.path.join(folder, name) if folder else name
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        armature = active_armature(context)
        if armature is None:
            self.report({"ERROR"}, "Select an armature to export.")
            return {"CANCELLED"}
        try:
            path = self._path(context, armature)
            if export_needs_confirm(path, self.overwrite) and _interactive(context):
                _ask_replace(path)
                return {"CANCELLED"}
            out = export_mod.export_armature(armature, path, scene=context.scene, overwrite=self.overwrite)
        except (rp.RenderError, export_mod.ExportError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {out}")
        return {"FINISHED"}


class REMOMASK_OT_export_replace(bpy.types.Operator):
    """Replace the existing file with the export (asked when Export's chosen file exists)"""

    bl_idname = "remomask.export_replace"
    bl_label = "Replace Existing File"
    bl_options = {"INTERNAL"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE", "HIDDEN"})

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event, title="Replace existing file?",
                                                     message=self.filepath, confirm_text="Replace")

    def execute(self, context):
        return bpy.ops.remomask.export(filepath=self.filepath, overwrite=True)


def stop_render() -> None:
    """Cancel a running render (nothing is written); used when the add-on is disabled."""
    job = _ACTIVE["job"]
    if job is not None:
        job.cancel()
        job.step()
        _ACTIVE["job"] = None
