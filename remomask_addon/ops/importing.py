"""Import Motion (a motion or joints file, no backend) and Generate Batch (one prompt per line of a text block or
file: one motion each, laid end to end on the NLA or one per selected rig)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from ..blender import motion_to_armature
from ..core import client as client_mod
from ..core.requests import check_length, parse_batch
from ..ui import preferences
from . import session
from .generate import generate_request, validate_generate


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
            arm = session.target_armature(context, target)
            arm = motion_to_armature.key_motions(
                scene, [path], armature=arm, name="ReMoMask_import", with_body=bool(scene.remomask.with_mannequin),
                bone_map=session.bone_map_for(scene, arm),
                placement=preferences.settings(context).place_takes).armature
        except Exception as exc:   # noqa: BLE001 - bad files: one clear message, nothing half-made
            self.report({'ERROR'}, f"Could not import {os.path.basename(path)}: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported {os.path.basename(path)} onto {arm.name}.")
        return {'FINISHED'}


class REMOMASK_OT_batch(session.SyncMixin, bpy.types.Operator):
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
        session._BATCH_SEQ[0] += 1
        key = f"batch{session._BATCH_SEQ[0]}"
        armature = context.active_object.name if props.target == 'SELECTED' and rigs is None else None
        ids = []
        try:
            c = session.get_client(settings)
            for prompt, length in lines:
                req = replace(generate_request(props, prompt, length if length is not None else default_len),
                              samples=1)
                rid = c.request(req.method, req.to_params())
                ids.append(rid)
                session.add_job(rid, {"kind": "generate", "scene": context.scene.name, "batch": key, "prompt": prompt})
        except client_mod.BackendError as exc:
            for rid in ids:
                session._JOBS.pop(rid, None)
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        session._BATCHES[key] = {"ids": ids, "results": {}, "errors": [], "scene": context.scene.name,
                         "target": props.target, "armature": armature, "rigs": rigs}
        return self._started(context, ids, "Batch", f"Batch of {len(ids)} prompt(s)...")
