"""The Describe and Library panels of the ReMoMask sidebar tab (issue 17). They only draw
``scene.remomask_library`` (``ui/library_props.py``) and name the operators of ``ops/library.py``."""

from __future__ import annotations

import bpy

from ..core.library import window_label
from .panels import _Base, _wrap


def _status(layout, lib) -> None:
    if lib.status:
        box = layout.box()
        for i, line in enumerate(_wrap(lib.status, 48)):
            box.label(text=line, icon=('ERROR' if lib.status_is_error else 'INFO') if i == 0 else 'NONE')


class REMOMASK_UL_library_hits(bpy.types.UIList):
    """One search result: the take's name, its time window and the score."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.file, icon='ACTION')
        row.label(text=window_label({"start_s": item.start_s, "end_s": item.end_s}))
        row.label(text=f"{item.score:.3f}")


class REMOMASK_PT_describe(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_describe"
    bl_label = "Describe Motion"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        lib = context.scene.remomask_library
        obj = context.active_object
        ad = obj.animation_data if obj is not None and obj.type == 'ARMATURE' else None
        # the name ops/library.py describes: the active action, else the armature's (an NLA-only animation)
        action = (ad.action.name if ad.action is not None else obj.name if len(ad.nla_tracks) else "") \
            if ad is not None else ""
        col = layout.column()
        col.label(text=f"Action: {action}" if action else "Select an animated armature", icon='ARMATURE_DATA')
        row = col.row()
        row.enabled = bool(action) and not lib.describing
        row.operator("remomask.library_describe", icon='VIEWZOOM',
                     text="Describing..." if lib.describing else "Describe")
        if action and lib.described_action == action and len(lib.captions):
            box = col.box()
            for c in lib.captions:
                r = box.row()
                r.label(text=c.caption)
                r.label(text=f"{c.score:.3f}")
            box.label(text="Captions of the model's database (retrieval, not free text).", icon='INFO')
        _status(col, lib)


class REMOMASK_PT_library(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_library"
    bl_label = "Motion Library"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        lib = context.scene.remomask_library
        col = layout.column()
        col.prop(lib, "folder", text="")
        if lib.indexing:
            col.progress(factor=lib.progress, type='BAR', text=f"Indexing {int(round(lib.progress * 100))}%")
            col.operator("remomask.library_cancel", icon='CANCEL')
        else:
            col.operator("remomask.library_index", icon='FILE_REFRESH')
        for m in list(lib.messages)[:5]:
            col.label(text=m.caption, icon='ERROR')
        if len(lib.messages) > 5:
            col.label(text=f"... and {len(lib.messages) - 5} more unreadable file(s)")
        row = col.row(align=True)
        row.prop(lib, "query", text="", icon='VIEWZOOM')
        row.operator("remomask.library_search", text="", icon='VIEWZOOM').like = False
        row = col.row(align=True)
        row.operator("remomask.library_search", text="Search by Example", icon='ARMATURE_DATA').like = True
        row.prop(lib, "k", text="")
        col.template_list("REMOMASK_UL_library_hits", "", lib, "hits", lib, "hit_index", rows=4)
        row = col.row(align=True)
        row.enabled = len(lib.hits) > 0
        row.operator("remomask.library_apply", icon='IMPORT')
        row.operator("remomask.library_preview", icon='RENDER_STILL')
        col.prop(context.scene.remomask, "target")
        img = bpy.data.images.get(bpy.path.basename(lib.preview)) if lib.preview else None
        if img is not None:
            col.template_icon(icon_value=img.preview_ensure().icon_id, scale=10.0)
        _status(col, lib)


LISTS = (REMOMASK_UL_library_hits,)
PANELS = (REMOMASK_PT_describe, REMOMASK_PT_library)
