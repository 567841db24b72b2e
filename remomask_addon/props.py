"""Scene properties of the ReMoMask panel (``scene.remomask``) and the history list."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

# The protocol's limits (copies of backend/serving/protocol.py's, kept with the request objects).
from .core.requests import MAX_SAMPLES, MAX_SECONDS, MAX_TIME_STEPS, MIN_SECONDS, MIN_TEMPERATURE


class REMOMASK_PG_caption(bpy.types.PropertyGroup):
    text: StringProperty(name="Caption")


class REMOMASK_PG_history_item(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt")
    seed: IntProperty(name="Seed")
    sample: IntProperty(name="Sample")
    length_s: FloatProperty(name="Length", unit='TIME_ABSOLUTE')
    path: StringProperty(name="Motion file", subtype='FILE_PATH')
    retrieved: StringProperty(name="Retrieved captions")   # joined with " | "
    action: StringProperty(name="Action")


class REMOMASK_PG_scene(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", description="What the person does, in plain English",
                           default="a person walks forward, then waves with the right hand")
    auto_length: BoolProperty(name="Automatic length", default=True,
                              description="Let the model choose the length from the prompt")
    # No hard maximum: the operator checks the range and says why (a clamped value would hide the mistake).
    length_s: FloatProperty(name="Length (s)", default=4.0, min=0.0, soft_min=MIN_SECONDS, soft_max=MAX_SECONDS,
                            description=f"Motion length in seconds ({MIN_SECONDS}-{MAX_SECONDS})")
    seed: IntProperty(name="Seed", default=0, min=0, max=2**31 - 1)
    samples: IntProperty(name="Samples", default=1, min=1, max=MAX_SAMPLES, description="Motions per prompt")
    auto_guidance: BoolProperty(name="Model's guidance", default=True,
                                description="Use the guidance scale the model recommends (4 for the official "
                                            "release, 2 for the starter model)")
    cond_scale: FloatProperty(name="Guidance", default=4.0, min=0.0, soft_max=10.0,
                              description="Classifier-free guidance scale (when Model's guidance is off)")
    time_steps: IntProperty(name="Steps", default=10, min=1, max=MAX_TIME_STEPS, description="Unmasking iterations")
    temperature: FloatProperty(name="Temperature", default=1.0, min=MIN_TEMPERATURE, soft_max=2.0)
    topk: FloatProperty(name="Top-k filter", default=0.9, min=0.0, max=1.0)
    use_retrieval: BoolProperty(name="Retrieval", default=True,
                                description="Condition on retrieved motions from the database")
    ground_feet: BoolProperty(name="Plant feet", default=True,
                              description="Fit the feet onto the floor: nothing below it, feet in contact touch it "
                                          "and stay in place (pelvis height and leg IK in the SMPL fit)")
    target: EnumProperty(name="Target", items=[
        ('NEW', "New SMPL armature", "Create a new SMPL-skeleton armature for the motion"),
        ('SELECTED', "Selected armature", "Key the active armature: an SMPL skeleton directly, any other rig "
                                          "(Mixamo, Rigify, custom) through retargeting"),
    ], default='NEW')
    bone_map: EnumProperty(name="Bone map", items=[
        ('AUTO', "Automatic", "Guess the bone map from the rig's bone names"),
        ('mixamo', "Mixamo", "mixamorig: bone names"),
        ('rigify', "Rigify", "Rigify deform (DEF-) bones"),
        ('FILE', "File", "A JSON bone map"),
    ], default='AUTO', description="How the SMPL bones map onto a non-SMPL target rig")
    bone_map_file: StringProperty(name="Bone map file", subtype='FILE_PATH')
    with_mannequin: BoolProperty(name="Body mesh", default=True,
                                 description="Give a new SMPL armature a skinned mannequin body")
    # Batch
    batch_text: StringProperty(name="Text block", description="Text block with one prompt per line "
                               "(optional '| seconds')")
    batch_file: StringProperty(name="File", subtype='FILE_PATH', description="Text file, one prompt per line")
    batch_layout: EnumProperty(name="Layout", items=[
        ('NLA', "One rig, end to end", "One action per prompt, laid end to end as NLA strips on the target"),
        ('RIGS', "One prompt per selected rig", "Prompt 1 onto the first selected armature (by name), prompt 2 "
                                                 "onto the second, ..."),
    ], default='NLA')
    # Run state (written by the poller)
    running: BoolProperty(name="Running", default=False)
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype='FACTOR')
    stage: StringProperty(name="Stage")
    status: StringProperty(name="Status")
    status_is_error: BoolProperty(default=False)
    retrieved: CollectionProperty(type=REMOMASK_PG_caption)
    history: CollectionProperty(type=REMOMASK_PG_history_item)
    history_index: IntProperty(default=0)


CLASSES = (REMOMASK_PG_caption, REMOMASK_PG_history_item, REMOMASK_PG_scene)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.remomask = PointerProperty(type=REMOMASK_PG_scene)


def unregister():
    if hasattr(bpy.types.Scene, "remomask"):
        del bpy.types.Scene.remomask
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
