"""Retarget Motion: the active (SMPL) armature's action onto another rig (Mixamo, Rigify deform bones, or any rig
through a bone-map JSON file), as a new action in one undo step; the target's own actions are kept (see
``blender.retarget.retarget_action``). Its settings are ``scene.remomask_retarget`` (``ui/props.py``)."""

from __future__ import annotations

import bpy

from ..blender import retarget
from .render import active_armature


class REMOMASK_OT_retarget(bpy.types.Operator):
    """Copy the active (SMPL) armature's motion onto the target rig as a new action"""

    bl_idname = "remomask.retarget"
    bl_label = "Retarget Motion"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        s = context.scene.remomask_retarget
        source = active_armature(context)
        if source is None:
            self.report({"ERROR"}, "Select the generated (SMPL) armature to retarget from.")
            return {"CANCELLED"}
        if s.target is None:
            self.report({"ERROR"}, "Choose the target rig in the Retarget panel.")
            return {"CANCELLED"}
        if s.bone_map == "AUTO":
            bone_map = None
        elif s.bone_map == "FILE":
            if not s.map_file:
                self.report({"ERROR"}, "Choose a bone-map JSON file, or another bone map.")
                return {"CANCELLED"}
            bone_map = bpy.path.abspath(s.map_file)
        else:
            bone_map = s.bone_map
        try:
            action = retarget.retarget_action(source, s.target, bone_map, scene=context.scene,
                                              lock_feet=bool(context.scene.remomask.ground_feet))
        except retarget.RetargetError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        warning = action.get("remomask_retarget_warning")
        if warning:
            self.report({"WARNING"}, str(warning))
        self.report({"INFO"}, f"Retargeted onto '{s.target.name}' as action '{action.name}'")
        return {"FINISHED"}
