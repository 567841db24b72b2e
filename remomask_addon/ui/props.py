"""The add-on's properties: the panel's settings and run state (``scene.remomask``, with its history list and
retrieved captions), the Render & Export settings (``scene.remomask_render``) and the Retarget settings
(``scene.remomask_retarget``). The package's ``__init__`` registers these property groups first and adds the
scene pointers (``SCENE_PROPERTIES``)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from ..blender import render_presets as rp
from ..core.bone_map import available_presets
from . import library_props
# The protocol's limits (copies of backend/serving/protocol.py's, kept with the request objects).
from ..core.requests import MAX_SAMPLES, MAX_SECONDS, MAX_TIME_STEPS, MIN_SECONDS, MIN_TEMPERATURE


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
    prompt_as_typed: BoolProperty(name="Prompt as typed", default=False,
                                  description="Use the prompt exactly as typed. Off: a model with a caption bank "
                                              "(the starter) reads each sentence as its closest training captions "
                                              "of the same action and details, and the report says how it read "
                                              "it")
    ground_feet: BoolProperty(name="Plant feet", default=True,
                              description="Fit the feet onto the floor: nothing below it, feet in contact touch it "
                                          "and stay in place (pelvis height and leg IK in the SMPL fit, and again "
                                          "on a retargeted rig)")
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
    #: The result's warnings (a prompt outside what the model knows, retrieval unavailable, ...), shown under it
    notes: CollectionProperty(type=REMOMASK_PG_caption)
    history: CollectionProperty(type=REMOMASK_PG_history_item)
    history_index: IntProperty(default=0)


# ---------------------------------------------------------------------------------------------- render & export
_MODE_ITEMS = [
    ("video", "Video (MP4)", "H.264 MP4 at the motion's length and the scene's fps"),
    ("frames", "Frames (PNG)", "A PNG image per frame"),
    ("sequence", "Sequence still", "One image showing the body at evenly spaced moments, light to dark"),
]
_QUALITY_ITEMS = [(k, k.title(), v.label) for k, v in rp.QUALITY.items()]
_RES_ITEMS = [(k, k, f"{w} x {h}") for k, (w, h) in rp.RESOLUTIONS.items()]
_EXPORT_ITEMS = [(".fbx", "FBX", "FBX with the body mesh"), (".bvh", "BVH", "Skeleton animation only"),
                 (".glb", "glTF (GLB)", "glTF binary with the body mesh")]
#: Blender 4.5 warns unless a path property that accepts "//" says so (the option is new in 4.5).
_REL_PATH = {"PATH_SUPPORTS_BLEND_RELATIVE"} if bpy.app.version >= (4, 5, 0) else set()


class RemomaskRenderSettings(bpy.types.PropertyGroup):
    mode: EnumProperty(name="Mode", items=_MODE_ITEMS, default="video")
    quality: EnumProperty(name="Quality", items=_QUALITY_ITEMS, default="preview")
    resolution: EnumProperty(name="Resolution", items=_RES_ITEMS, default="720p")
    camera: EnumProperty(name="Camera", items=[("fit", "Fit", "One camera that frames the whole motion"),
                                               ("follow", "Follow", "Follow the root smoothly")], default="fit")
    ground: EnumProperty(name="Ground", items=[("checker", "Checker", ""), ("grid", "Grid", ""),
                                               ("none", "None", "")], default="checker")
    caption: BoolProperty(name="Caption", description="Burn the prompt into the image", default=True)
    include_scene: BoolProperty(name="Include scene", default=False,
                                description="Render the scene's other objects too. Off: only the motion's "
                                            "armature and body, on the render stage")
    sequence_count: IntProperty(name="Figures", min=2, max=64, default=8)
    output: StringProperty(name="Output", subtype="FILE_PATH", default="//remomask/", options=_REL_PATH,
                           description="Folder (or full path) for the render; // is the .blend's folder")
    export_format: EnumProperty(name="Format", items=_EXPORT_ITEMS, default=".fbx")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    running: BoolProperty(options={"SKIP_SAVE"})


# ---------------------------------------------------------------------------------------------- retarget
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


#: Scene pointer properties: (name, property group).
SCENE_PROPERTIES = (("remomask", REMOMASK_PG_scene), ("remomask_render", RemomaskRenderSettings),
                    ("remomask_retarget", RemomaskRetargetSettings),
                    ("remomask_library", library_props.REMOMASK_PG_library))

from .edit_props import REMOMASK_PG_edit  # noqa: E402 - the Edit panel's settings (ui/edit_props.py)

SCENE_PROPERTIES += (("remomask_edit", REMOMASK_PG_edit),)
