"""Write an edit into a copy of the user's action without touching anything outside the edited frames.

``splice_action(original, edited, window)`` copies ``original`` (``Action.copy()``: every layer, slot, group,
F-Curve, modifier and key as it is) and, on each F-Curve the edit has keys for, replaces the keys inside the
scene-frame ``window`` with the edited ones. Every keyframe point outside the window is written back with every
property it had (co, both handles, handle types, interpolation, easing, key type, back / amplitude / period,
selection), in bulk with ``foreach_set`` and without ``FCurve.update()``, which would recompute automatic handles:
outside the window the copy is bit-identical with the original. A channel the original does not animate gets a
new F-Curve holding the edited keys plus one key on each side of the window at the value the property has now
(what plays there today), so the pose outside the window does not change either.
"""

from __future__ import annotations

import numpy as np

from . import anim_compat

#: Keyframe point properties and (components, dtype) for foreach_get/foreach_set.
KEY_PROPS = (("co", 2, np.float32), ("handle_left", 2, np.float32), ("handle_right", 2, np.float32),
             ("interpolation", 1, np.int32), ("handle_left_type", 1, np.int32),
             ("handle_right_type", 1, np.int32), ("easing", 1, np.int32), ("type", 1, np.int32),
             ("back", 1, np.float32), ("amplitude", 1, np.float32), ("period", 1, np.float32),
             ("select_control_point", 1, bool), ("select_left_handle", 1, bool), ("select_right_handle", 1, bool))


def read_points(fc) -> dict:
    """Every keyframe point property of ``fc`` as arrays (N, k)."""
    kp = fc.keyframe_points
    n = len(kp)
    out = {}
    for name, k, dt in KEY_PROPS:
        a = np.empty(n * k, dtype=dt)
        kp.foreach_get(name, a)
        out[name] = a.reshape(n, k)
    return out


def write_points(fc, points: dict) -> None:
    """Replace ``fc``'s keyframe points by ``points`` (as ``read_points`` gives them), bit for bit."""
    kp = fc.keyframe_points
    n = len(points["co"])
    kp.clear()
    if n:
        kp.add(n)
        for name, _k, dt in KEY_PROPS:
            kp.foreach_set(name, np.ascontiguousarray(points[name], dtype=dt).ravel())


def _take(points: dict, mask) -> dict:
    return {k: v[mask] for k, v in points.items()}


def _join(*parts) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def splice_points(dst: dict, src: dict, window) -> dict:
    """``dst``'s points outside the window (inclusive scene frames) and ``src``'s inside, in frame order."""
    lo, hi = float(window[0]) - 1e-3, float(window[1]) + 1e-3
    fd, fs = dst["co"][:, 0], src["co"][:, 0]
    inside_s = (fs >= lo) & (fs <= hi)
    return _join(_take(dst, fd < lo), _unselected(_take(src, inside_s)), _take(dst, fd > hi))


def _unselected(points: dict) -> dict:
    """New keys come unselected (a selection of keys is a range the next edit would take)."""
    out = dict(points)
    for k in ("select_control_point", "select_left_handle", "select_right_handle"):
        out[k] = np.zeros_like(points[k])
    return out


def _hold_points(src: dict, frames, value) -> dict:
    """Keys at ``frames`` holding ``value``, shaped like ``src``'s (first key's properties)."""
    n = len(frames)
    out = {k: np.repeat(v[:1], n, axis=0) for k, v in src.items()}
    co = np.stack([np.asarray(frames, np.float32), np.full(n, value, np.float32)], 1)
    out["co"] = co
    out["handle_left"] = co - np.array([1.0, 0.0], np.float32)
    out["handle_right"] = co + np.array([1.0, 0.0], np.float32)
    return out


def splice_action(original, edited, window, *, name: str, slot=None, channel_filter=None, current_value=None):
    """A copy of ``original`` named ``name`` whose keys inside ``window`` come from ``edited``.

    slot: the original's slot the armature plays (default: its first); edited's F-Curves are read from its own
    first slot. channel_filter(data_path) -> bool: which of edited's channels to write (default: all).
    current_value(data_path, index) -> float: the property's value now, for channels the original does not
    animate (None: such channels are skipped). Returns the new action (not assigned)."""
    copy = original.copy()
    copy.name = name
    try:
        cslot = matching_slot(copy, slot)
        for efc in anim_compat.fcurves(edited):
            if channel_filter is not None and not channel_filter(efc.data_path):
                continue
            src = read_points(efc)
            dst_fc = anim_compat.find_fcurve(copy, efc.data_path, efc.array_index, cslot)
            if dst_fc is not None:
                write_points(dst_fc, splice_points(read_points(dst_fc), src, window))
                continue
            if current_value is None:
                continue
            inside = _take(src, (src["co"][:, 0] >= window[0] - 1e-3) & (src["co"][:, 0] <= window[1] + 1e-3))
            if not len(inside["co"]):
                continue
            v = float(current_value(efc.data_path, efc.array_index))
            group = efc.group.name if efc.group is not None else None
            new = anim_compat.new_fcurve(copy, cslot, efc.data_path, efc.array_index, group_name=group)
            inside = _unselected(inside)
            write_points(new, _join(_hold_points(inside, [window[0] - 1], v), inside,
                                    _hold_points(inside, [window[1] + 1], v)))
    except Exception:
        import bpy
        bpy.data.actions.remove(copy)
        raise
    return copy


def matching_slot(copy, slot):
    """The copy's slot that corresponds to the original's ``slot`` (same identifier), else its first one."""
    if not anim_compat.has_slotted_actions():   # pragma: no cover - Blender < 4.4
        return None
    if slot is not None:
        for s in copy.slots:
            if s.identifier == slot.identifier:
                return s
    return anim_compat.default_slot(copy)


def add_cycles(action, slot=None, offset_paths=()) -> int:
    """Show ``action`` looping: a Cycles modifier on each of its F-Curves (``REPEAT_OFFSET`` for the data paths in
    ``offset_paths``, the root's travel, else ``REPEAT``); the keys stay bit for bit as they were (Blender
    recomputes automatic handles when a curve becomes cyclic; they are written back). Returns how many F-Curves
    got one."""
    n = 0
    for fc in anim_compat.fcurves(action, slot):
        if any(m.type == 'CYCLES' for m in fc.modifiers):
            continue
        points = read_points(fc)
        m = fc.modifiers.new('CYCLES')
        mode = 'REPEAT_OFFSET' if fc.data_path in offset_paths else 'REPEAT'
        m.mode_before = m.mode_after = mode
        write_points(fc, points)   # a cyclic curve gets its automatic handles recomputed: keep the keys' own
        n += 1
    return n
