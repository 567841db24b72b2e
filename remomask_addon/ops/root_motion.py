"""Root Motion: the *In Place* and *Extract Root Motion* toggles on the active armature's action
(``blender.root_motion``). Each press is one undo step; it makes a copy of the action (the original is kept) or,
pressed again on the copy it made, makes the original active again."""

from __future__ import annotations

import bpy

from ..blender import root_motion
from ..core import root_motion as rm
from .render import active_armature


def root_motion_state(armature) -> str:
    """'IN_PLACE' / 'EXTRACT' when the armature's active action is such a copy, '' otherwise."""
    ad = armature.animation_data if armature is not None else None
    action = ad.action if ad is not None else None
    return str(action.get("remomask_root_motion", "")) if action is not None else ""


class REMOMASK_OT_root_motion(bpy.types.Operator):
    """Toggle root motion on the active armature's action (a copy is made; the original is kept)"""

    bl_idname = "remomask.root_motion"
    bl_label = "Root Motion"
    bl_options = {"REGISTER", "UNDO"}

    mode: bpy.props.EnumProperty(
        name="Mode", default=rm.IN_PLACE,
        items=((rm.IN_PLACE, "In Place", "Remove the horizontal travel of the hips; keep height and turning"),
               (rm.EXTRACT, "Extract Root Motion",
                "A root bone on the floor carries the travel and facing; the hips stay relative to it")))
    smooth_s: bpy.props.FloatProperty(
        name="Smoothing", default=rm.DEFAULT_SMOOTH_S, min=0.0, max=2.0, unit="TIME_ABSOLUTE",
        description="Gaussian smoothing (seconds) of the extracted root's path and facing")

    @classmethod
    def description(cls, context, properties):
        if properties.mode == rm.EXTRACT:
            return "A root bone on the floor carries the travel and facing (for game engines); press again for " \
                   "the original action"
        return "Remove the horizontal travel (keep height and turning); press again for the original action"

    def execute(self, context):
        arm = active_armature(context)
        if arm is None:
            self.report({"ERROR"}, "Select the armature whose action gets root motion.")
            return {"CANCELLED"}
        state = root_motion_state(arm)
        try:
            if state == self.mode:
                src = root_motion.restore_source(arm)
                self.report({"INFO"}, f"Back to the original action '{src.name}'")
                return {"FINISHED"}
            base = None
            if state:
                base = root_motion.source_action(arm.animation_data.action)
                if base is None:
                    raise rm.RootMotionError("The original of this action is gone; apply root motion to another "
                                             "action.")
            action = root_motion.apply_root_motion(arm, self.mode, action=base, scene=context.scene,
                                                   smooth_s=self.smooth_s)
        except rm.RootMotionError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self.report({"INFO"}, f"'{action.name}' is now the active action (the original is kept)")
        return {"FINISHED"}
