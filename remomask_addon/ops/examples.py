"""Example Prompt: put one of the model's example prompts (``core/examples.py``, from the backend's last hello)
into the Generate panel's prompt field. Offered as a drop-down in the panel (``ui/examples.py``) and, with
``search``, as a search popup; one undo step."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty

from ..core import examples

_NONE = [("NONE", "No examples", "The backend has listed no example prompts (Check Backend first)")]
_ITEMS: list = []   # Blender needs the strings of dynamic enum items kept alive by Python


def _items(self, context):
    global _ITEMS
    _ITEMS = examples.enum_items(examples.current()) or list(_NONE)
    return _ITEMS


class REMOMASK_OT_example_prompt(bpy.types.Operator):
    """Put an example prompt the model knows into the prompt field"""
    bl_idname = "remomask.example_prompt"
    bl_label = "Example Prompt"
    bl_options = {'REGISTER', 'UNDO'}
    bl_property = "example"

    example: EnumProperty(name="Example", items=_items, description="An example prompt the model was trained on")
    search: BoolProperty(default=False, options={'SKIP_SAVE', 'HIDDEN'},
                         description="Open a search field of the examples")

    def invoke(self, context, event):
        if self.search and not self.properties.is_property_set("example"):
            context.window_manager.invoke_search_popup(self)
            return {'RUNNING_MODAL'}
        return self.execute(context)

    def execute(self, context):
        ex = examples.find(self.example)
        if ex is None:
            self.report({'ERROR'}, "No such example prompt (the backend's list changed?); pick one again.")
            return {'CANCELLED'}
        context.scene.remomask.prompt = ex.prompt
        self.report({'INFO'}, f"Prompt: {ex.prompt}")
        return {'FINISHED'}


CLASSES = (REMOMASK_OT_example_prompt,)
