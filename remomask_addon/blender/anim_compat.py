"""Action / F-Curve access that works on Blender 4.2 to 5.x.

Blender 4.4 introduced slotted (layered) actions: the F-Curves live in
``action.layers[i].strips[j].channelbag(slot)`` and an object plays an action only through an
assigned slot. Blender 5.0 removed the legacy ``Action.fcurves`` / ``.groups`` / ``.id_root``.
On 4.4/4.5 the legacy ``action.fcurves.new()`` still exists but creates an unassigned
"Legacy Slot" whose keys do not play until the slot is assigned; we never use it there.

This module hides those differences behind a few functions; everything else in the add-on calls
these instead of touching ``action.fcurves`` directly.
"""

from __future__ import annotations

import numpy as np

import bpy

#: Keyframe.interpolation enum values, as integers for foreach_set.
_INTERP = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}


def has_slotted_actions() -> bool:
    """True on Blender 4.4+ (actions have slots and layers)."""
    return hasattr(bpy.types, "ActionSlot") and hasattr(bpy.types.Action, "bl_rna") and \
        "slots" in bpy.types.Action.bl_rna.properties


def new_action(name: str, target_id):
    """Create a new action for ``target_id`` (an Object). Returns ``(action, slot)``.

    On 4.4+ the action gets one slot for the target and one keyframe layer/strip; on 4.2/4.3
    ``slot`` is None. The name is made unique by Blender (an existing action is never reused).
    """
    action = bpy.data.actions.new(name)
    slot = None
    if has_slotted_actions():
        slot = action.slots.new(id_type=target_id.id_type, name=target_id.name)
        layer = action.layers.new("Layer")
        layer.strips.new(type="KEYFRAME")
    else:  # pragma: no cover - Blender < 4.4
        action.id_root = target_id.id_type
    return action, slot


def _channelbag(action, slot, create: bool):
    if not action.layers:
        if not create:
            return None
        action.layers.new("Layer")
    layer = action.layers[0]
    if not layer.strips:
        if not create:
            return None
        layer.strips.new(type="KEYFRAME")
    strip = layer.strips[0]
    if create:
        return strip.channelbag(slot, ensure=True)
    return strip.channelbag(slot)


def default_slot(action):
    """The action's first slot (4.4+) or None."""
    if has_slotted_actions() and len(action.slots):
        return action.slots[0]
    return None


def new_fcurve(action, slot, data_path: str, index: int, group_name: str | None = None):
    """Create an F-Curve (in the slot's channelbag on 4.4+, in ``action.fcurves`` before)."""
    if slot is not None:
        bag = _channelbag(action, slot, create=True)
        try:  # Blender 5.0+: group_name keyword
            fc = bag.fcurves.new(data_path, index=index, group_name=group_name) if group_name \
                else bag.fcurves.new(data_path, index=index)
        except TypeError:  # 4.4 / 4.5: no group_name; create/assign the group ourselves
            fc = bag.fcurves.new(data_path, index=index)
            if group_name:
                grp = bag.groups.get(group_name) if hasattr(bag.groups, "get") else None
                if grp is None:
                    grp = next((g for g in bag.groups if g.name == group_name), None)
                if grp is None:
                    grp = bag.groups.new(group_name)
                fc.group = grp
        return fc
    if group_name:  # pragma: no cover - Blender < 4.4
        return action.fcurves.new(data_path, index=index, action_group=group_name)
    return action.fcurves.new(data_path, index=index)  # pragma: no cover


def fcurves(action, slot=None):
    """All F-Curves of ``action`` for ``slot`` (default: its first slot)."""
    if has_slotted_actions():
        slot = slot if slot is not None else default_slot(action)
        if slot is None:
            return []
        bag = _channelbag(action, slot, create=False)
        return list(bag.fcurves) if bag is not None else []
    return list(action.fcurves)  # pragma: no cover


def remove_fcurve(action, fc, slot=None) -> None:
    """Remove one F-Curve of ``action`` (from the slot's channelbag on 4.4+, from ``action.fcurves`` before)."""
    if has_slotted_actions():
        slot = slot if slot is not None else default_slot(action)
        bag = _channelbag(action, slot, create=False) if slot is not None else None
        if bag is not None:
            bag.fcurves.remove(fc)
            return
    action.fcurves.remove(fc)  # pragma: no cover - Blender < 4.4


def find_fcurve(action, data_path: str, index: int, slot=None):
    """The F-Curve for (data_path, index) or None."""
    for fc in fcurves(action, slot):
        if fc.data_path == data_path and fc.array_index == index:
            return fc
    return None


def write_keys(fc, frames, values, interpolation: str = "LINEAR") -> None:
    """Replace nothing, append keys in bulk: ``keyframe_points.add`` + ``foreach_set``."""
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    n = frames.shape[0]
    kp = fc.keyframe_points
    start = len(kp)
    kp.add(n)
    if start == 0:
        co = np.empty(2 * n, dtype=np.float32)
        co[0::2] = frames
        co[1::2] = values
        kp.foreach_set("co", co)
        kp.foreach_set("interpolation", np.full(n, _INTERP[interpolation], dtype=np.int32))
    else:  # pragma: no cover - only used on empty curves by this add-on
        for i in range(n):
            kp[start + i].co = (float(frames[i]), float(values[i]))
            kp[start + i].interpolation = interpolation
    fc.update()


def read_keys(fc):
    """(frames, values) arrays of an F-Curve's keys (float64)."""
    n = len(fc.keyframe_points)
    co = np.empty(2 * n, dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2].astype(np.float64), co[1::2].astype(np.float64)


def set_key_values(fc, values) -> None:
    """Overwrite the values of an F-Curve's existing keys in bulk (frames unchanged)."""
    n = len(fc.keyframe_points)
    co = np.empty(2 * n, dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    co[1::2] = np.asarray(values, dtype=np.float32)
    fc.keyframe_points.foreach_set("co", co)
    fc.update()  # also recomputes automatic handles


def assign_action(obj, action, slot=None) -> None:
    """Make ``action`` the active action of ``obj`` (and assign its slot on 4.4+)."""
    ad = obj.animation_data or obj.animation_data_create()
    ad.action = action
    if slot is not None and hasattr(ad, "action_slot"):
        if ad.action_slot != slot:
            ad.action_slot = slot


def set_strip_slot(strip, slot) -> None:
    """Point an NLA strip at the action's slot (4.4+; no-op before)."""
    if slot is not None and hasattr(strip, "action_slot"):
        if strip.action_slot != slot:
            strip.action_slot = slot
