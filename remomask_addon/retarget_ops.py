"""Operator and panel: retarget the active SMPL armature's action onto another rig (Mixamo, Rigify
deform bones, or any rig through a bone-map JSON file). One undo step; the target's own actions are
kept (see ``retarget.retarget_action``)."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, PointerProperty, StringProperty

from .blender import retarget
from .core.bone_map import available_presets
from .panels import _Base
from .render_ops import active_armature


def _map_items(self, context):
    items = [("AUTO", "Automatic", "Recognise the target's bone names (Mixamo, Rigify, Unreal, ...)")]
    items += [(p, p.title(), f"Preset bone map '{p}'") for p in available_presets()]
    items.append(("FILE", "File...", "A bone-map JSON file"))
    return items


def _is_armature(self, obj):
    return obj.type == "ARMATURE"


class RemomaskRetargetSettings(bpy.types.PropertyGroup):
    target: PointerProperty(name="Target rig", type=bpy.types.Object, poll=_is_armature,
                            description="The armature that receives the motion")
    bone_map: EnumProperty(name="Bone map", items=_map_items)
    map_file: StringProperty(name="Map file", subtype="FILE_PATH")


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
            action = retarget.retarget_action(source, s.target, bone_map, scene=context.scene)
        except retarget.RetargetError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        warning = action.get("remomask_retarget_warning")
        if warning:
            self.report({"WARNING"}, str(warning))
        self.report({"INFO"}, f"Retargeted onto '{s.target.name}' as action '{action.name}'")
        return {"FINISHED"}


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
        layout.operator(REMOMASK_OT_retarget.bl_idname, icon="ARMATURE_DATA")


CLASSES = (RemomaskRetargetSettings, REMOMASK_OT_retarget, REMOMASK_PT_retarget)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.remomask_retarget = PointerProperty(type=RemomaskRetargetSettings)


def unregister():
    del bpy.types.Scene.remomask_retarget
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
