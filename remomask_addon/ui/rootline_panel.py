"""The "Root Motion & Feet" panel: the root-motion toggles (``ops/root_motion.py``) for the active armature."""

from __future__ import annotations

import bpy

from ..core import root_motion as rm
from ..ops.render import active_armature
from ..ops.root_motion import root_motion_state


class REMOMASK_PT_root_motion(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ReMoMask"
    bl_label = "Root Motion"
    bl_idname = "REMOMASK_PT_root_motion"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        arm = active_armature(context)
        if arm is None or arm.animation_data is None or arm.animation_data.action is None:
            layout.label(text="Select an armature with an action", icon="INFO")
            return
        state = root_motion_state(arm)
        layout.label(text=f"Action: {arm.animation_data.action.name}")
        row = layout.row(align=True)
        op = row.operator("remomask.root_motion", text="In Place", icon="PIVOT_CURSOR", depress=state == rm.IN_PLACE)
        op.mode = rm.IN_PLACE
        op = row.operator("remomask.root_motion", text="Extract Root", icon="CON_LOCLIKE",
                          depress=state == rm.EXTRACT)
        op.mode = rm.EXTRACT
        if state:
            layout.label(text="Press again for the original action", icon="LOOP_BACK")
