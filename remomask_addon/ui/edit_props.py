"""The Edit panel's settings (``scene.remomask_edit``): the prompt and options of an edit, the typed frame range
(used when the timeline gives none) and the generator's seed and samples."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty


class REMOMASK_PG_edit(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", default="a person jumps in place",
                           description="What the person does in the edited range")
    range_start: IntProperty(name="Start", default=1,
                             description="First frame of the range when the timeline gives none (no preview "
                                         "range, selected keys or two selected markers)")
    range_end: IntProperty(name="End", default=60, description="Last frame of the typed range")
    seconds: FloatProperty(name="Seconds", default=2.0, min=0.2, max=9.4, unit='TIME_ABSOLUTE',
                           description="Length of the new motion (Extend, Lead In)")
    loop_mode: EnumProperty(name="Root", default="RETURN", items=[
        ("RETURN", "Return to Start", "The root comes back to where it started: the loop stays in place"),
        ("TRAVEL", "Keep Travelling", "The loop ends facing the start direction and moves on every cycle")])
    part: EnumProperty(name="Body Part", default="ARMS", items=[
        ("ARMS", "Arms", ""), ("LEGS", "Legs", ""), ("UPPER", "Upper Body", ""), ("LOWER", "Lower Body", "")])
    seed: IntProperty(name="Seed", default=0, min=0)
    samples: IntProperty(name="Samples", default=1, min=1, max=8,
                         description="Variations to flip between before accepting one")
