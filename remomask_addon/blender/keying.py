"""Write keys onto armatures: the one bulk key writer (used for SMPL motions here and by ``retarget``) and
``key_motion``, which keys a motion (SMPL local rotations + root translation) onto an SMPL armature.

The channel values come from ``core/channels.py`` (the keying maths, numpy only). Keys are written in bulk
(``keyframe_points.add`` + ``foreach_set``) through ``anim_compat`` (slotted actions on 4.4+), one key per scene
frame, one new action per call, never overwriting. No bpy.ops are used.
"""

from __future__ import annotations

import numpy as np

import bpy

from ..core import motion_io, smpl_rig
from ..core.channels import action_name_for_prompt, bone_channels
from . import anim_compat
from .armature import armature_rest_matrices

def bone_path(bone: str, prop: str) -> str:
    """The F-Curve data path of a pose bone's property (``pose.bones["name"].location``)."""
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def scene_fps_of(scene) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base or 1.0)


def write_bone_action(armature, name: str, frames, channels):
    """Create a new action for ``armature`` holding one key per frame of ``frames`` for each channel.

    channels: ``(bone, property, values)`` triples, values (N, k) for the property's k components
    (``location`` 3, ``rotation_quaternion`` 4, ``rotation_axis_angle`` 4, ``rotation_euler`` 3); each component
    becomes an F-Curve in the bone's group, in the order given. Returns ``(action, slot)``; the action is not
    assigned. On an error the half-written action is removed again."""
    frames = np.asarray(frames, dtype=np.float64)
    action, slot = anim_compat.new_action(name, armature)
    try:
        for bone, prop, values in channels:
            values = np.asarray(values)
            path = bone_path(bone, prop)
            for c in range(values.shape[1]):
                fc = anim_compat.new_fcurve(action, slot, path, c, group_name=bone)
                anim_compat.write_keys(fc, frames, values[:, c])
    except Exception:
        bpy.data.actions.remove(action)
        raise
    return action, slot


def activate_action(armature, action, slot, *, quaternion_mode: bool = False) -> None:
    """Make a freshly written action the armature's active one: it gets a fake user (every take survives
    saving), so does a previously active action that would lose its last user; the pose is reset to rest (so
    unkeyed channels do not keep an old pose); ``quaternion_mode`` also puts every pose bone in quaternion
    rotation mode."""
    action.use_fake_user = True
    ad = armature.animation_data
    prev = ad.action if ad is not None else None
    if prev is not None and prev.users <= 1 and not prev.use_fake_user:
        prev.use_fake_user = True
    for pb in armature.pose.bones:
        if quaternion_mode:
            pb.rotation_mode = "QUATERNION"
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
        pb.rotation_euler = (0.0, 0.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)
    anim_compat.assign_action(armature, action, slot)


def write_action(armature, quats, root_loc, *, name: str, start_frame: int = 1):
    """Create a new action holding ``quats`` (N, 24, 4) and ``root_loc`` (N, 3) of the SMPL bones as one key per
    frame from ``start_frame``. Returns ``(action, slot)``; does not assign it."""
    frames = np.arange(quats.shape[0], dtype=np.float64) + float(start_frame)
    channels = []
    for j, bone in enumerate(smpl_rig.SMPL_JOINT_NAMES):
        if j == 0:
            channels.append((bone, "location", root_loc))
        channels.append((bone, "rotation_quaternion", quats[:, j]))
    return write_bone_action(armature, name, frames, channels)


def key_motion(armature, motion: dict, *, action_name: str | None = None,
               scene_fps: float | None = None, start_frame: int = 1, scene=None):
    """Key ``motion`` onto the SMPL ``armature`` as a new action and make it the active action.

    motion: a dict as returned by ``motion_io.load_motion`` (or any mapping with poses, trans,
    rest_joints, fps, prompt; it is validated first). scene_fps: target frame rate (default:
    the scene's ``render.fps / fps_base``); the motion is resampled to it. start_frame: the scene
    frame of the motion's first sample. The action is named after the prompt (or
    ``action_name``); an existing action of that name is never touched (Blender picks
    "name.001"). A previously active action that would lose its last user gets a fake user, so
    it survives saving. Custom properties ``remomask_prompt``, ``remomask_seed``,
    ``remomask_source_fps`` are set on the action. Returns the action.
    Raises MotionFileError / ValueError before changing anything.
    """
    m = motion if "num_frames" in motion else motion_io.validate_motion(motion)
    rest_m = armature_rest_matrices(armature)
    if scene_fps is None:
        scene = scene or bpy.context.scene
        scene_fps = scene_fps_of(scene)
    if not (scene_fps > 0):
        raise ValueError(f"scene_fps must be positive, got {scene_fps}")

    quats, loc = bone_channels(rest_m, m, scene_fps)
    name = action_name or action_name_for_prompt(m.get("prompt", ""))
    action, slot = write_action(armature, quats, loc, name=name, start_frame=int(start_frame))
    action["remomask_prompt"] = str(m.get("prompt", ""))
    if m.get("seed") is not None:
        action["remomask_seed"] = int(m["seed"])
    action["remomask_source_fps"] = float(m["fps"])
    activate_action(armature, action, slot, quaternion_mode=True)
    return action
