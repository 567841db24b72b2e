"""What a new take does in the scene once it is keyed (called by ``motion_to_armature.key_motions``, so Generate,
Import, Apply Again, batches and the command line all share it, inside the same undo step as the keying):

- ``place``: a new armature goes beside the previous takes and clear of the other objects' bounding boxes
  (``'BESIDE'``, the default), or at the 3D cursor (``'CURSOR'``); the maths is ``core.placement``. Each take
  keeps the box its body sweeps over the whole motion as the object property ``remomask_footprint`` (armature
  space), so later takes go beside its whole path, not only its current pose;
- ``select_only``: the new take becomes the only selected object and the active one (so Render and Export act
  on it), as Blender does for objects it adds; other objects are not changed otherwise;
- ``fit_frame_range``: the scene's frame range becomes the takes' frames.
"""

from __future__ import annotations

import math

import numpy as np
from mathutils import Vector

import bpy

from ..core import placement

#: ``'BESIDE'``: beside previous takes, clear of other objects; ``'CURSOR'``: at the 3D cursor.
MODES = ("BESIDE", "CURSOR")
#: Object property holding a take's footprint (min xyz, max xyz), in the armature's own space.
FOOTPRINT_PROP = "remomask_footprint"
#: Object types whose bounding box is something a take must not stand in.
_SOLID_TYPES = {"MESH", "CURVE", "SURFACE", "META", "FONT", "ARMATURE", "LATTICE", "VOLUME", "POINTCLOUD",
                "CURVES", "GPENCIL", "GREASEPENCIL"}
#: At most this many frames are evaluated to measure a take's footprint.
_MAX_SAMPLES = 60


def frame_range_of(armature) -> tuple[int, int] | None:
    """The frames of the armature's animation (its action and its NLA strips), or None without animation."""
    ad = armature.animation_data
    if ad is None:
        return None
    lo, hi = None, None
    if ad.action is not None:
        lo, hi = ad.action.frame_range
    for track in ad.nla_tracks:
        for strip in track.strips:
            lo = strip.frame_start if lo is None else min(lo, strip.frame_start)
            hi = strip.frame_end if hi is None else max(hi, strip.frame_end)
    if lo is None:
        return None
    return int(math.floor(lo)), int(math.ceil(hi))


def measure_footprint(scene, armature) -> np.ndarray:
    """The box the armature's bones sweep over its animation, widened by the body's thickness, in armature
    space; stored on the object as ``remomask_footprint``."""
    rng = frame_range_of(armature)
    pts = []
    if armature.pose is not None and len(armature.pose.bones):
        frames = [scene.frame_current] if rng is None else \
            sorted({int(round(f)) for f in np.linspace(rng[0], rng[1], min(_MAX_SAMPLES, rng[1] - rng[0] + 1))})
        current = scene.frame_current
        try:
            for f in frames:
                scene.frame_set(f)
                for pb in armature.pose.bones:     # armature space: independent of where the object is
                    pts.append(tuple(pb.head))
                    pts.append(tuple(pb.tail))
        finally:
            scene.frame_set(current)
    box = placement.footprint(pts)
    armature[FOOTPRINT_PROP] = [float(v) for v in box.reshape(-1)]
    return box


def _world_box(obj) -> np.ndarray:
    mw = obj.matrix_world
    local = obj.get(FOOTPRINT_PROP)
    if local is not None and len(local) == 6:
        lo, hi = placement.as_box(list(local))
        corners = [(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    else:
        corners = [tuple(c) for c in obj.bound_box]
    return placement.box_of_corners([tuple(mw @ Vector(c)) for c in corners])


def _visible(obj, view_layer) -> bool:
    try:
        return bool(obj.visible_get(view_layer=view_layer))
    except (RuntimeError, TypeError):
        return not obj.hide_viewport


def obstacle_boxes(scene, exclude=(), view_layer=None) -> list:
    """World boxes of what a new take must not stand in: every visible object of the scene with a body
    (meshes, curves, armatures, ...), a take by its whole footprint (and not its body mesh again), except the
    objects in ``exclude`` and their children."""
    skip = set()
    for obj in exclude:
        skip.add(obj.name)
        skip.update(c.name for c in obj.children_recursive)
    view_layer = view_layer or _view_layer(scene)
    boxes = []
    for obj in scene.objects:
        if obj.name in skip or obj.type not in _SOLID_TYPES or not _visible(obj, view_layer):
            continue
        parent = obj.parent
        if parent is not None and parent.get(FOOTPRINT_PROP) is not None:
            continue        # a take's body: inside its footprint
        boxes.append(_world_box(obj))
    return boxes


def place(scene, armatures, mode: str = "BESIDE") -> None:
    """Move new takes (armatures made at the origin, unparented and unrotated, in the order made) to where the user can see them; see the
    module doc. Measures and stores each take's footprint."""
    if mode not in MODES:
        raise ValueError(f"Unknown placement {mode!r}: choose one of {', '.join(MODES)}.")
    placed = []
    for arm in armatures:
        box = measure_footprint(scene, arm)
        start = Vector(scene.cursor.location) if mode == "CURSOR" else Vector((0.0, 0.0, 0.0))
        if mode == "CURSOR":
            # at the cursor; further takes of the same call beside the first, not inside it
            others = [_world_box(a) for a in placed]
        else:
            others = obstacle_boxes(scene, exclude=[arm])
        dx = placement.beside_offset(box + np.asarray(start), others)   # a new take: no parent, no rotation
        arm.location = start + Vector((dx, 0.0, 0.0))
        placed.append(arm)
    if placed:
        bpy.context.view_layer.update()


def _view_layer(scene):
    vl = getattr(bpy.context, "view_layer", None)
    if vl is not None and any(vl == v for v in scene.view_layers):
        return vl
    return scene.view_layers[0]


def select_only(scene, armatures) -> None:
    """Make ``armatures`` the only selected objects and the first of them the active object. Left as it is while
    the active object is in another mode than Object Mode (e.g. the user is editing a mesh)."""
    if not armatures:
        return
    vl = _view_layer(scene)
    active = vl.objects.active
    if active is not None and active.mode != "OBJECT":
        return
    for obj in vl.objects:
        if obj.select_get(view_layer=vl):
            obj.select_set(False, view_layer=vl)
    for arm in armatures:
        try:
            arm.select_set(True, view_layer=vl)
        except RuntimeError:    # not in this view layer (e.g. an excluded collection)
            pass
    if armatures[0].name in vl.objects:
        vl.objects.active = armatures[0]


def fit_frame_range(scene, armatures) -> tuple[int, int] | None:
    """Set the scene's frame range to the frames of the armatures' animation (all of them); the current frame
    moves to the start when it lies outside. Returns the range, or None when nothing is animated."""
    ranges = [r for r in (frame_range_of(a) for a in armatures) if r is not None]
    if not ranges:
        return None
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if lo > scene.frame_end:        # Blender keeps start <= end on every assignment: set them in a safe order
        scene.frame_end, scene.frame_start = hi, lo
    else:
        scene.frame_start, scene.frame_end = lo, hi
    if not lo <= scene.frame_current <= hi:
        scene.frame_set(lo)
    return lo, hi
