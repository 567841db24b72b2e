"""The Root Motion panel (the toggles of ``ops/root_motion.py`` for the active armature) and the Prompt Timeline
panel (the scene's prompt markers as parts, Generate Timeline, and Redo Part for a timeline action:
``ops/timeline.py``)."""

from __future__ import annotations

import bpy

from ..blender import timeline as btl
from ..blender.keying import scene_fps_of
from ..core import root_motion as rm
from ..core import timeline as tl
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


class REMOMASK_PT_timeline(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ReMoMask"
    bl_label = "Prompt Timeline"
    bl_idname = "REMOMASK_PT_timeline"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        try:
            plan = btl.plan_of(scene)
        except tl.TimelineError as err:
            col = layout.column()
            for line in str(err).split("; "):
                col.label(text=line)
            plan = None
        if plan is not None:
            col = layout.column(align=True)
            for p, s, (a, _b) in zip(plan.prompts, plan.seconds, plan.scene_frames):
                col.label(text=f"{a}: {p[:40]}  ({s:.1f} s)")
            layout.label(text=f"{len(plan.prompts)} parts, {plan.total_seconds:.1f} s")
        layout.operator("remomask.timeline_generate", icon="SEQ_STRIP_META")
        arm = active_armature(context)
        action = arm.animation_data.action if arm is not None and arm.animation_data is not None else None
        record = btl.record_of(action)
        if record is not None:
            i = btl.part_at(record, scene.frame_current, scene_fps_of(scene))
            layout.label(text=f"Part {i + 1} at this frame: {record['prompts'][i][:40]}")
            layout.operator("remomask.timeline_redo_part", icon="FILE_REFRESH")
