"""The Edit panel (sidebar tab ReMoMask): edits of the active armature's action with the generator, the range
they act on (and where it comes from), the action's versions and an edit's samples. Draws only; the operators
are in ``ops/edit.py``."""

from __future__ import annotations

import bpy

from ..blender import edit_apply
from ..core.edit_range import EditRangeError
from .panels import _Base

PENDING = "remomask_edit_pending"   # ops/edit.PENDING (ui never imports ops)


def range_text(context) -> str:
    """Which range an edit would use, or why there is none."""
    try:
        action, slot = edit_apply.edit_target(context.active_object)
        ep = context.scene.remomask_edit
        rng = edit_apply.timeline_range(context.scene, action, slot, typed=(ep.range_start, ep.range_end))
    except EditRangeError as exc:
        return str(exc)
    return f"Range: {rng.label}"


class REMOMASK_PT_edit(_Base, bpy.types.Panel):
    bl_idname = "REMOMASK_PT_edit"
    bl_label = "Edit Motion"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        ep = context.scene.remomask_edit
        obj = context.active_object
        col = layout.column()
        act = obj.animation_data.action if obj is not None and obj.type == 'ARMATURE' and obj.animation_data \
            else None
        col.label(text=f"{obj.name}: {act.name}" if act is not None else "Select an armature with an action",
                  icon='ARMATURE_DATA')
        col.label(text=range_text(context))
        row = col.row(align=True)
        row.prop(ep, "range_start")
        row.prop(ep, "range_end")
        col.prop(ep, "prompt", text="")
        row = col.row(align=True)
        row.prop(ep, "seed")
        row.prop(ep, "samples")
        col.operator("remomask.edit", text="Regenerate Range").op = 'REGENERATE'
        col.operator("remomask.edit", text="In-between").op = 'INBETWEEN'
        row = col.row(align=True)
        row.operator("remomask.edit", text="Lead In").op = 'LEAD_IN'
        row.operator("remomask.edit", text="Extend").op = 'EXTEND'
        row.prop(ep, "seconds", text="")
        row = col.row(align=True)
        row.operator("remomask.edit", text="Loop").op = 'LOOP'
        row.prop(ep, "loop_mode", text="")
        row = col.row(align=True)
        row.operator("remomask.edit", text="Change Body Part").op = 'BODYPART'
        row.prop(ep, "part", text="")
        props = context.scene.remomask
        if props.running:
            row = col.row(align=True)
            row.label(text=f"{props.stage or 'working'} {int(round(props.progress * 100))}%")
            row.operator("remomask.cancel", text="Cancel", icon='CANCEL')
        if props.status:
            col.label(text=props.status, icon='ERROR' if props.status_is_error else 'INFO')
        if act is None:
            return
        if PENDING in act:
            box = layout.box()
            box.label(text="Samples (flip, then Accept):")
            for a in [a for a in bpy.data.actions if a.get(PENDING) == act[PENDING]]:
                r = box.row()
                r.operator("remomask.edit_use_version", text=a.name,
                           icon='PLAY' if a == act else 'BLANK1').action = a.name
            r = box.row(align=True)
            r.operator("remomask.edit_accept", text="Accept")
            r.operator("remomask.edit_discard", text="Discard")
        box = layout.box()
        box.label(text="Versions:")
        for k, name, what in edit_apply.versions_of(act):
            r = box.row()
            r.operator("remomask.edit_use_version", text=f"v{k} {name}: {what}",
                       icon='PLAY' if name == act.name else 'BLANK1').action = name
