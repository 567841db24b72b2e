"""The ReMoMask sidebar tab in the 3D viewport: every panel (Generate and its Sampling options, History, Import
and Batch, Backend, Render & Export, Retarget). Panels only draw properties (``ui/props.py``) and name operators
by their idname; the operators are in ``ops/``."""

from __future__ import annotations

import bpy

from ..core import backend_setup
from . import examples as example_prompts


class _Base:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "ReMoMask"


class REMOMASK_PT_generate(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_generate"
    bl_label = "Generate Motion"

    def draw(self, context):
        layout = self.layout
        props = context.scene.remomask
        col = layout.column()
        col.prop(props, "prompt", text="")
        example_prompts.draw(col)
        row = col.row(align=True)
        row.prop(props, "auto_length", text="Auto length")
        sub = row.row(align=True)
        sub.enabled = not props.auto_length
        sub.prop(props, "length_s", text="Seconds")
        row = col.row(align=True)
        row.prop(props, "seed")
        row.operator("remomask.new_seed", text="", icon='FILE_REFRESH')
        col.prop(props, "samples")
        row = col.row(align=True)
        row.prop(props, "auto_guidance", text="Auto guidance")
        sub = row.row(align=True)
        sub.enabled = not props.auto_guidance
        sub.prop(props, "cond_scale")
        col.prop(props, "use_retrieval")
        col.prop(props, "prompt_as_typed")
        col.prop(props, "ground_feet")
        col.prop(props, "target")
        if props.target == 'NEW':
            col.prop(props, "with_mannequin")
        else:
            col.prop(props, "bone_map")
            if props.bone_map == 'FILE':
                col.prop(props, "bone_map_file")
        if props.running:
            col.progress(factor=props.progress, type='BAR',
                         text=f"{props.stage or 'working'} {int(round(props.progress * 100))}%")
            col.operator("remomask.cancel", icon='CANCEL')
        else:
            col.operator("remomask.generate", icon='PLAY')
        if props.status:
            box = col.box()
            for i, line in enumerate(_wrap(props.status, 48)):
                box.label(text=line, icon=('ERROR' if props.status_is_error else 'INFO') if i == 0 else 'NONE')
        if len(props.notes) and not props.running:
            box = col.box()
            for note in props.notes:
                for i, line in enumerate(_wrap(note.text, 48)):
                    box.label(text=line, icon='ERROR' if i == 0 else 'NONE')
        if len(props.retrieved):
            box = col.box()
            box.label(text="Retrieved motions:", icon='VIEWZOOM')
            for cap in props.retrieved:
                box.label(text=cap.text)


class REMOMASK_PT_options(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_options"
    bl_label = "Sampling"
    bl_parent_id = "REMOMASK_PT_generate"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        props = context.scene.remomask
        col = self.layout.column()
        col.prop(props, "time_steps")
        col.prop(props, "temperature")
        col.prop(props, "topk")


class REMOMASK_PT_history(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_history"
    bl_label = "History"

    def draw(self, context):
        layout = self.layout
        props = context.scene.remomask
        layout.template_list("REMOMASK_UL_history", "", props, "history", props, "history_index", rows=3)
        if 0 <= props.history_index < len(props.history):
            item = props.history[props.history_index]
            col = layout.column(align=True)
            col.label(text=f"{item.prompt}")
            col.label(text=f"seed {item.seed}, sample {item.sample}, {item.length_s:.2f} s")
            col.label(text=item.path, icon='FILE')
            if item.retrieved:
                col.label(text=f"retrieved: {item.retrieved}")
            op = layout.operator("remomask.history_apply", icon='ANIM')
            op.index = props.history_index


class REMOMASK_PT_import_batch(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_import_batch"
    bl_label = "Import and Batch"

    def draw(self, context):
        layout = self.layout
        props = context.scene.remomask
        layout.operator("remomask.import_motion", icon='IMPORT')
        box = layout.box()
        box.label(text="Batch: one prompt per line, optional '| seconds'")
        box.prop_search(props, "batch_text", bpy.data, "texts")
        box.prop(props, "batch_file")
        box.prop(props, "batch_layout")
        box.operator("remomask.batch", icon='NLA')


class REMOMASK_PT_backend(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_backend"
    bl_label = "Backend"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        row = layout.row(align=True)
        row.operator("remomask.check_backend", icon='CHECKMARK')
        row.operator("remomask.release_backend", icon='X')
        layout.operator("remomask.setup_backend", icon='CONSOLE')
        st = backend_setup.STATE
        if st.running:
            layout.progress(factor=st.fraction, type='BAR', text=st.message)
        elif st.message:
            layout.label(text=st.message, icon='ERROR' if st.failed else 'INFO')


class REMOMASK_PT_render(_Base, bpy.types.Panel):
    bl_label = "Render & Export"
    bl_idname = "REMOMASK_PT_render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.remomask_render
        col = layout.column(align=True)
        col.prop(s, "mode")
        col.prop(s, "quality")
        col.prop(s, "resolution")
        col.prop(s, "camera")
        col.prop(s, "ground")
        if s.mode == "sequence":
            col.prop(s, "sequence_count")
        col.prop(s, "caption")
        col.prop(s, "include_scene")
        layout.prop(s, "output")
        if s.running:
            row = layout.row(align=True)
            row.prop(s, "progress", text="Rendering")
            row.operator("remomask.render_cancel", text="", icon="CANCEL")
        else:
            layout.operator("remomask.render", icon="RENDER_ANIMATION")
        row = layout.row(align=True)
        row.prop(s, "export_format", text="")
        row.operator("remomask.export", icon="EXPORT")


class REMOMASK_PT_retarget(_Base, bpy.types.Panel):
    bl_label = "Retarget"
    bl_idname = "REMOMASK_PT_retarget"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.remomask_retarget
        layout.prop(s, "target")
        layout.prop(s, "bone_map")
        if s.bone_map == "FILE":
            layout.prop(s, "map_file")
        layout.operator("remomask.retarget", icon="ARMATURE_DATA")


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return lines or [""]
