"""Prompt timelines in Blender: the scene's markers as parts (``core/timeline.py``), the record a timeline action
keeps (which motion file it came from, its parts), the part under a frame, and the new action version a re-done
part becomes: a copy of the timeline action whose keys change only on the frames the generator changed.

A timeline action carries ``remomask_timeline`` (JSON: ``path`` of its motion file, ``prompts``, ``seconds``,
``start_frame``). Re-doing a part keys the edited motion as usual (``motion_to_armature.key_motions``: SMPL
armature or retargeted rig), then ``action_splice.splice_action`` (the Edit panel's splice) copies the previous version
and takes the new keys only over the changed frames; the keys outside them stay bit-identical, the temporary action is removed, the previous
version is kept (fake user) and the new one becomes active.
"""

from __future__ import annotations

import json

import bpy

from ..core import timeline as tl
from . import action_splice, anim_compat, keying

RECORD = "remomask_timeline"


def markers_of(scene) -> list[tuple[str, int]]:
    """The scene's timeline markers as ``(name, frame)``."""
    return [(m.name, int(m.frame)) for m in scene.timeline_markers]


def plan_of(scene) -> tl.Plan:
    """The scene's markers as a timeline plan (raises TimelineError with one message)."""
    return tl.plan_from_markers(markers_of(scene), keying.scene_fps_of(scene), scene.frame_end)


def record_of(action) -> dict | None:
    """The timeline record of ``action`` (None when it is no timeline action or the record is unreadable)."""
    raw = action.get(RECORD) if action is not None else None
    if not raw:
        return None
    try:
        rec = json.loads(raw)
    except (TypeError, ValueError):
        return None
    if not isinstance(rec, dict) or not {"path", "prompts", "seconds", "start_frame"} <= set(rec):
        return None
    return rec


def tag(action, *, path: str, prompts, seconds, start_frame: int) -> None:
    action[RECORD] = json.dumps({"path": str(path), "prompts": [str(p) for p in prompts],
                                 "seconds": [float(s) for s in seconds], "start_frame": int(start_frame)})


def part_spans(record, scene_fps: float) -> list[tuple[int, int]]:
    """Each part's scene frames ``[first, last]`` (transition into it included)."""
    return [tl.scene_span(f, record["start_frame"], scene_fps) for f in tl.part_frames(record["seconds"])]


def part_at(record, frame: int, scene_fps: float) -> int:
    """The index of the part that plays at scene ``frame`` (the first / last part before / after the motion)."""
    spans = part_spans(record, scene_fps)
    for i, (_a, b) in enumerate(spans):
        if frame <= b:
            return i
    return len(spans) - 1


def finish_redo(armature, previous, edited, changed20, record, *, index: int, prompt: str, path: str,
                scene_fps: float):
    """The new version of a timeline action after part ``index`` was re-done: splice ``edited`` (the freshly
    keyed edit, removed afterwards) into a copy of ``previous`` over the scene frames of ``changed20`` (the
    generator's changed frames, 20 fps), record the new motion file and prompt, make it active. Returns it."""
    first, last = tl.scene_span(changed20, record["start_frame"], scene_fps)
    prompts = list(record["prompts"])
    prompts[index] = prompt
    version = action_splice.splice_action(previous, edited, (first, last),
                                          name=f"{previous.name.split(' [')[0]} [part {index + 1}: {prompt[:24]}]",
                                          slot=getattr(armature.animation_data, "action_slot", None))
    tag(version, path=path, prompts=prompts, seconds=record["seconds"], start_frame=record["start_frame"])
    version["remomask_timeline_previous"] = previous.name
    previous.use_fake_user = True
    bpy.data.actions.remove(edited)
    keying.activate_action(armature, version, anim_compat.default_slot(version))
    return version
