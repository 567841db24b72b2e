"""Retarget an action from one armature (normally the SMPL armature made by ``keying``) onto another
rig with different bone names, proportions, rest pose (T-pose / A-pose) and bone rolls.

Method (all rotations 3x3, acting on column vectors):

* A bone map ``{source_bone: target_bone}`` pairs bones (default source names: the 24 SMPL bones).
* Poses are compared in each armature's "character space": its armature space in real-world
  units (the object's scale applied, not its location/rotation), so the motion plays relative to
  the target object wherever it stands, and a centimetre FBX rig with object scale 0.01 works.
* At rest, for every pair, ``Q`` is the smallest rotation turning the target bone's rest
  direction onto the source bone's rest direction (this absorbs T-pose vs A-pose and any small
  difference in limb layout; bone rolls do not matter, whole orientations are used).
* Per frame, the source bone's rotation change from its rest, ``D = W_src(t) @ W_src_rest^T``
  (character space, a "world-space offset"), is applied to the aligned target rest orientation:
  ``W_tgt(t) = D @ Q @ W_tgt_rest``. So the target bone points where the source bone points and
  twists the way it twists.
* World orientations become local pose rotations parent first (unmapped bones stay at rest and
  just carry their children), the way Blender composes a pose:
  ``P_j = P_parent @ M_parent^-1 @ M_j @ L_j`` (M: rest matrices, L: the keyed local transform).
* A target modelled facing another way (its left-right hip axis turned by more than 10 degrees
  from the source's) gets the source turned about Z to match, so it walks the way it faces.
* The root (the target of the topmost mapped source bone) moves by the source root displacement
  scaled by ``target leg length / source leg length`` (leg = hip->knee->ankle, mean of both sides).
* ``keep_feet_on_ground``: per frame the whole body is lifted so that the lowest point of the foot
  bones (heads and tails) is never below the ground (the feet's lowest rest height), and, with
  ``snap_contacts``, pulled down onto it on frames where the source's feet touch its ground.

Keys are written in bulk through ``anim_compat`` (slotted actions on 4.4+), one key per frame,
in each target bone's own rotation mode (quaternion, axis-angle or any Euler order). One new action
per call; the target's previous action is kept (it gets a fake user if it would lose its last one).

Only bpy, mathutils, numpy and the standard library are used. Limits: bone constraints, drivers
and non-uniform bone scale on the target are not modelled (the keys assume plain parenting; bones
with "inherit rotation" off are handled); see the README's Retargeting section.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..core import smpl_rig
from ..core.atomic import atomic_write_json

BONE_MAP_DIR = Path(__file__).resolve().parent.parent / "core" / "bone_maps"

#: SMPL bones used for the leg length (thigh start, knee, ankle) per side.
LEG_CHAINS = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))
#: SMPL bones whose heads/tails are the feet (ground contact).
FOOT_BONES = ("left_ankle", "left_foot", "right_ankle", "right_foot")
#: Half-width (seconds) of the moving average that softens the contact corrections.
CONTACT_SMOOTH_S = 0.05
#: Source foot within this height (metres, source scale) of its ground counts as a contact.
CONTACT_HEIGHT = 0.03


class RetargetError(ValueError):
    """Bad input for retargeting (unknown preset, missing bones, not an armature, ...)."""


class BoneMap(dict):
    """A ``{source_bone: target_bone}`` dict with a little metadata.

    ``optional``: source bones that may be skipped when the target lacks their target bone;
    ``unmapped``: (auto_bone_map) SMPL bones that found no target bone; ``name``: preset name.
    """

    def __init__(self, *args, optional=(), unmapped=(), name: str = "", **kw):
        super().__init__(*args, **kw)
        self.optional = frozenset(optional)
        self.unmapped = tuple(unmapped)
        self.name = name


# --------------------------------------------------------------------------- bone-map files
def available_presets() -> list[str]:
    """Names of the bundled bone-map presets (``bone_maps/*.json``)."""
    return sorted(p.stem for p in BONE_MAP_DIR.glob("*.json"))


def _validate_map_dict(data, where: str) -> BoneMap:
    if isinstance(data, dict) and "bones" in data:
        bones, optional, name = data["bones"], data.get("optional", []), data.get("name", "")
    else:
        bones, optional, name = data, [], ""
    if not isinstance(bones, dict) or not bones:
        raise RetargetError(f"{where}: a bone map must be a non-empty JSON object "
                            '{"bones": {"source_bone": "target_bone", ...}}')
    for k, v in bones.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k or not v:
            raise RetargetError(f"{where}: bone names must be non-empty strings, got {k!r}: {v!r}")
    targets = list(bones.values())
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise RetargetError(f"{where}: target bones used more than once: {', '.join(dup)}")
    if not isinstance(optional, (list, tuple)) or not all(isinstance(o, str) for o in optional):
        raise RetargetError(f"{where}: 'optional' must be a list of source bone names")
    return BoneMap(bones, optional=[o for o in optional if o in bones], name=str(name))


def load_bone_map(name_or_path) -> BoneMap:
    """A bundled preset by name (``"mixamo"``, ``"rigify"``) or a JSON file path.

    File format: ``{"name": ..., "bones": {"pelvis": "Hips", ...}, "optional": ["left_foot", ...]}``
    (a flat ``{"pelvis": "Hips", ...}`` object is accepted too). Raises RetargetError."""
    s = str(name_or_path)
    path = Path(s)
    if not (s.lower().endswith(".json") or os.sep in s or "/" in s):
        path = BONE_MAP_DIR / f"{s.lower()}.json"
        if not path.is_file():
            raise RetargetError(f"unknown bone-map preset {s!r}; presets: "
                                f"{', '.join(available_presets())} (or give a .json path)")
    if not path.is_file():
        raise RetargetError(f"bone-map file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RetargetError(f"cannot read bone map {path}: {exc}") from None
    bm = _validate_map_dict(data, str(path))
    if not bm.name:
        bm.name = path.stem
    return bm


def save_bone_map(path, bone_map, *, name: str | None = None, optional=None) -> Path:
    """Write ``bone_map`` as JSON (atomically, through the add-on's copy of the one atomic writer)."""
    bm = _validate_map_dict(dict(bone_map), "bone map")
    path = Path(path)
    opt = list(optional) if optional is not None else sorted(getattr(bone_map, "optional", ()))
    data = {"name": name or getattr(bone_map, "name", "") or path.stem,
            "bones": dict(bm), "optional": [o for o in opt if o in bm]}
    return atomic_write_json(path, data, indent=2, sort_keys=False)


# --------------------------------------------------------------------------- automatic maps
_SIDE_PATTERNS = (
    # (regex, group holding the side token); applied to the name without namespace / DEF- prefix
    (re.compile(r"^(left|right)(?=[A-Z0-9_.\- ]|$)", re.I), 1),      # LeftArm, left_arm
    (re.compile(r"[._\- ](l|r|left|right)(?=(\.\d+)?$)", re.I), 1),    # upper_arm.L(.001), thigh_l
    (re.compile(r"^(l|r)[._\- ]", re.I), 1),                           # L_Arm, l.arm
    (re.compile(r"(?<=[a-z])(Left|Right)(?=[A-Z_]|$)"), 1),             # ArmLeft
)
#: base name (lower case, letters/digits only, no side, no trailing segment number) -> part
_PARTS = {
    "hips": "pelvis", "pelvis": "pelvis", "hip": "pelvis", "root_hips": "pelvis",
    "neck": "neck", "neck01": "neck", "head": "head",
    "shoulder": "collar", "clavicle": "collar", "collar": "collar", "collarbone": "collar",
    "arm": "upperarm", "upperarm": "upperarm", "uparm": "upperarm",
    "forearm": "forearm", "lowerarm": "forearm", "elbow": "forearm",
    "hand": "hand", "wrist": "hand",
    "upleg": "thigh", "thigh": "thigh", "upperleg": "thigh",
    "leg": "shin", "shin": "shin", "calf": "shin", "lowerleg": "shin", "knee": "shin",
    "foot": "foot", "ankle": "foot",
    "toebase": "toe", "toe": "toe", "toes": "toe", "ball": "toe",
}
_SIDED_TO_SMPL = {"collar": "collar", "upperarm": "shoulder", "forearm": "elbow", "hand": "wrist",
                  "thigh": "hip", "shin": "knee", "foot": "ankle", "toe": "foot"}
_SKIP = re.compile(r"(^|[^a-z])(mch|ik|fk|pole|target|tweak|twist|roll|end|nub|ctrl|ctl|helper|"
                   r"socket|ik_target|prop|weapon)([^a-z]|$)", re.I)


def _strip_prefix(name: str):
    """(name without namespace/deform prefixes, priority) — lower priority value is better."""
    n = name.split(":")[-1] if ":" in name else name
    prio = 1
    m = re.match(r"^(DEF|ORG|MCH)[-_.]", n, re.I)
    if m:
        tag = m.group(1).upper()
        if tag == "MCH":
            return None, 9
        prio = 0 if tag == "DEF" else 2
        n = n[m.end():]
    n = re.sub(r"^bip\d*[ _]", "", n, flags=re.I)
    return n, prio


def _classify(name: str):
    """(part or 'spine', side 'L'/'R'/None, segment number, priority) or None."""
    n, prio = _strip_prefix(name)
    if n is None:
        return None
    side = None
    for rx, g in _SIDE_PATTERNS:
        m = rx.search(n)
        if m:
            tok = m.group(g).lower()
            side = "L" if tok.startswith("l") else "R"
            n = n[:m.start(g)] + n[m.end(g):]
            break
    if _SKIP.search(n.replace("_", " ")):
        return None
    seg = 0
    m = re.search(r"\.(\d+)$", n)
    if m:
        seg = int(m.group(1))
        n = n[:m.start()]
    base = re.sub(r"[^a-z0-9]", "", n.lower())
    if re.fullmatch(r"(spine|chest|upperchest)\d*", base):
        return ("spine", side, seg, prio) if side is None else None
    base_nd = re.sub(r"\d+$", "", base)
    part = _PARTS.get(base) or _PARTS.get(base_nd)
    if part is None:
        return None
    if part in ("pelvis", "neck", "head"):
        if side is not None:
            return None
    elif side is None:
        return None
    if base_nd == "neck" and base != base_nd and base not in _PARTS:
        seg = int(base[len(base_nd):] or 0)
    return part, side, seg, prio


def _depths(bones) -> dict:
    out = {}
    for b in bones:
        d, p = 0, b.parent
        while p is not None:
            d, p = d + 1, p.parent
        out[b.name] = d
    return out


def auto_bone_map(target_armature) -> BoneMap:
    """Guess a SMPL -> target bone map from bone names.

    Recognises Mixamo (``mixamorig:LeftArm``), Rigify deform bones (``DEF-upper_arm.L``,
    ``DEF-spine.001``; ``ORG-`` as a fallback), Unreal (``upperarm_l``, ``calf_r``, ``spine_01``),
    3ds Max Biped (``Bip01 L Thigh``) and generic names with ``.L/.R``, ``_l/_r``, ``Left/Right``
    sides and ``upperarm/forearm/thigh/calf/shin/...`` parts; skips MCH/IK/pole/twist helpers.
    A target that already has the SMPL bone names maps onto itself. Returns a BoneMap whose
    ``unmapped`` lists the SMPL bones that found nothing (those are simply not retargeted).
    """
    _check_armature(target_armature, "target")
    bones = target_armature.data.bones
    names = [b.name for b in bones]
    if all(n in bones for n in smpl_rig.SMPL_JOINT_NAMES):
        return BoneMap({n: n for n in smpl_rig.SMPL_JOINT_NAMES}, name="smpl")
    depth = _depths(bones)
    cands: dict = {}
    for n in names:
        c = _classify(n)
        if c is None:
            continue
        part, side, seg, prio = c
        cands.setdefault((part, side), []).append((prio, seg, depth[n], n))
    for v in cands.values():
        v.sort()

    def best(part, side=None):
        lst = cands.get((part, side))
        if not lst:
            return None
        top = lst[0][0]
        return min((c for c in lst if c[0] == top), key=lambda c: (c[1], c[2]))[3]

    out = {}
    # spine chain: only the best prefix class, ordered by depth then segment number
    spine = cands.get(("spine", None), [])
    if spine:
        top = spine[0][0]
        spine = [c[3] for c in sorted((c for c in spine if c[0] == top), key=lambda c: (c[2], c[1]))]
    pelvis = best("pelvis")
    neck = best("neck")
    head = best("head")
    if pelvis is None and spine:
        pelvis = spine.pop(0)
        # Rigify: DEF-spine = hips, .001-.003 spine/chest, .004/.005 neck, .006 head
        if neck is None and head is None and len(spine) >= 6:
            head = spine[5]
            neck = spine[3]
            spine = spine[:3]
    if pelvis:
        out["pelvis"] = pelvis
    if len(spine) >= 3:
        idx = np.round(np.linspace(0, len(spine) - 1, 3)).astype(int)
        for s, i in zip(("spine1", "spine2", "spine3"), idx):
            out[s] = spine[i]
    elif len(spine) == 2:
        out["spine1"], out["spine3"] = spine
    elif len(spine) == 1:
        out["spine3"] = spine[0]
    if neck:
        out["neck"] = neck
    if head:
        out["head"] = head
    for part, smpl in _SIDED_TO_SMPL.items():
        for side, prefix in (("L", "left_"), ("R", "right_")):
            b = best(part, side)
            if b is not None:
                out[prefix + smpl] = b
    # a target used twice (odd names): keep the first SMPL bone in SMPL order
    seen, final = set(), {}
    for s in smpl_rig.SMPL_JOINT_NAMES:
        t = out.get(s)
        if t is not None and t not in seen:
            final[s] = t
            seen.add(t)
    unmapped = [s for s in smpl_rig.SMPL_JOINT_NAMES if s not in final]
    return BoneMap(final, unmapped=unmapped, name="auto")


# --------------------------------------------------------------------------- math helpers
def _min_rotation(a, b) -> np.ndarray:
    """Smallest rotation (3x3) turning unit vector a onto unit vector b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    c = float(np.dot(a, b))
    if c > 1.0 - 1e-12:
        return np.eye(3)
    if c < -1.0 + 1e-9:
        perp = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a, [0.0, 1.0, 0.0])
        return smpl_rig.axis_angle_to_matrix(perp / np.linalg.norm(perp) * np.pi)
    axis = np.cross(a, b)
    axis /= np.linalg.norm(axis)
    return smpl_rig.axis_angle_to_matrix(axis * np.arccos(np.clip(c, -1.0, 1.0)))


def _orthonormal(m) -> np.ndarray:
    """Nearest rotation (polar decomposition) of (..., 3, 3) matrices (removes object scale)."""
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=np.float64))
    r = u @ vt
    det = np.linalg.det(r)
    if np.any(det < 0):
        u = u.copy()
        u[det < 0, :, -1] *= -1
        r = u @ vt
    return r


def _character_matrix(obj) -> np.ndarray:
    """The object's scale as a 4x4 matrix: the "character space" in which poses are compared is
    armature space in real-world units, so a moved/rotated armature object plays the motion
    relative to itself (as any action does), and an FBX rig in centimetres with object scale 0.01
    works like one in metres."""
    m = np.eye(4)
    m[:3, :3] = np.diag(tuple(obj.matrix_world.to_scale()))
    return m


#: Pairs of SMPL bones (left, right) whose rest heads give a rig's left-right axis.
LATERAL_PAIRS = (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_collar", "right_collar"))
#: Facing differences below this (degrees) are left alone (asymmetric rest poses).
FACING_TOLERANCE_DEG = 10.0


def _scene_fps(scene) -> float:
    return float(scene.render.fps) / float(scene.render.fps_base or 1.0)


def _rot_z4(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def _facing_yaw(bm, src_bones, tgt_bones, src_mw, tgt_mw) -> float:
    """Angle about Z turning the source's left-right axis onto the target's (0 when close)."""
    for left, right in LATERAL_PAIRS:
        if left in bm and right in bm:
            a = (src_mw @ np.append(src_bones[left].head_local - src_bones[right].head_local, 0.0))[:2]
            b = (tgt_mw @ np.append(tgt_bones[bm[left]].head_local - tgt_bones[bm[right]].head_local, 0.0))[:2]
            if np.linalg.norm(a) < 1e-6 or np.linalg.norm(b) < 1e-6:
                continue
            yaw = float(np.arctan2(a[0] * b[1] - a[1] * b[0], a @ b))
            return yaw if abs(np.degrees(yaw)) > FACING_TOLERANCE_DEG else 0.0
    return 0.0


def _check_armature(obj, role: str) -> None:
    try:
        ok = obj is not None and obj.type == "ARMATURE"
    except (AttributeError, ReferenceError):
        ok = False
    if not ok:
        name = getattr(obj, "name", obj)
        kind = getattr(obj, "type", type(obj).__name__)
        raise RetargetError(f"{role} {name!r} is not an armature object (it is {kind})")


def _topo_order(bones) -> list:
    """Bone names, parents before children."""
    order, seen = [], set()

    def visit(b):
        if b.name in seen:
            return
        if b.parent is not None:
            visit(b.parent)
        seen.add(b.name)
        order.append(b.name)

    for b in bones:
        visit(b)
    return order


def _leg_length(rest_heads: dict, chain_names) -> float | None:
    lens = []
    for hip, knee, ankle in chain_names:
        if hip in rest_heads and knee in rest_heads and ankle in rest_heads:
            lens.append(np.linalg.norm(rest_heads[knee] - rest_heads[hip]) +
                        np.linalg.norm(rest_heads[ankle] - rest_heads[knee]))
    return float(np.mean(lens)) if lens else None


# --------------------------------------------------------------------------- the retarget
def _resolve_map(source_armature, target_armature, bone_map) -> BoneMap:
    if bone_map is None:
        bm = auto_bone_map(target_armature)
    elif isinstance(bone_map, (str, os.PathLike)):
        bm = load_bone_map(bone_map)
    elif isinstance(bone_map, dict):
        bm = bone_map if isinstance(bone_map, BoneMap) else _validate_map_dict(dict(bone_map), "bone map")
    else:
        raise RetargetError(f"bone_map must be a dict, a preset name or a .json path, got {type(bone_map).__name__}")
    src_bones, tgt_bones = source_armature.data.bones, target_armature.data.bones
    missing_src = sorted(s for s in bm if s not in src_bones)
    if missing_src:
        raise RetargetError(f"source armature {source_armature.name!r} lacks bones named in the bone map: "
                            f"{', '.join(missing_src)}")
    optional = getattr(bm, "optional", frozenset())
    missing_tgt = sorted(t for s, t in bm.items() if t not in tgt_bones and s not in optional)
    if missing_tgt:
        raise RetargetError(f"target armature {target_armature.name!r} lacks bones the bone map requires: "
                            f"{', '.join(missing_tgt)}")
    used = {s: t for s, t in bm.items() if t in tgt_bones}
    if not used:
        raise RetargetError(f"no bone of {target_armature.name!r} matches the bone map")
    return BoneMap(used, optional=optional, unmapped=getattr(bm, "unmapped", ()), name=getattr(bm, "name", ""))


def _sample_source(source_armature, src_names, frames, scene, mw):
    """Character-space matrices (F, n, 4, 4) of the source pose bones (``mw`` @ pose matrix),
    evaluated frame by frame."""
    import bpy

    out = np.empty((len(frames), len(src_names), 4, 4))
    for k, f in enumerate(frames):
        scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get() if scene == bpy.context.scene \
            else scene.view_layers[0].depsgraph
        ev = source_armature.evaluated_get(dg)
        pbs = ev.pose.bones
        for i, n in enumerate(src_names):
            out[k, i] = mw @ np.array(pbs[n].matrix)
    return out


def retarget_action(source_armature, target_armature, bone_map=None, *, frame_range=None,
                    action_name=None, scale_root="leg_length", keep_feet_on_ground=True,
                    snap_contacts=True, scene=None):
    """Copy the source armature's animation onto ``target_armature`` as a new action.

    bone_map: ``{source_bone: target_bone}`` dict, a preset name (``"mixamo"``, ``"rigify"``), a
    JSON path, or None for ``auto_bone_map(target_armature)``. frame_range: ``(first, last)``
    scene frames (default: the source action's frame range, or the span of its NLA strips when it
    has no active action; the source is evaluated frame by frame, so NLA layouts, constraints and
    drivers on the source are retargeted as they play). scale_root: ``"leg_length"``
    (target/source leg length), a number, or None (1.0). keep_feet_on_ground: lift the body so
    the feet never go below their rest height; snap_contacts: also pull them down onto it where
    the source's feet touch the ground. The new action is made the target's active action (its
    previous action is kept, with a fake user if needed); unmapped target bones are reset to rest.
    If mapped target bones carry constraints (which would override the keys), the action gets a
    ``remomask_retarget_warning`` custom property naming them, for the operator to report.
    Returns the action. Raises RetargetError before changing anything.
    """
    import bpy
    import mathutils

    from . import anim_compat

    _check_armature(source_armature, "source")
    _check_armature(target_armature, "target")
    if source_armature == target_armature:
        raise RetargetError("source and target are the same armature")
    for obj in (source_armature, target_armature):
        if obj.mode == "EDIT":
            raise RetargetError(f"armature {obj.name!r} is in Edit Mode; switch to Object or Pose Mode first")
    scene = scene or bpy.context.scene
    bm = _resolve_map(source_armature, target_armature, bone_map)

    ad = source_armature.animation_data
    src_action = ad.action if ad is not None else None
    if frame_range is None:
        strips = [st for tr in (ad.nla_tracks if ad is not None else ()) if not tr.mute
                  for st in tr.strips if not st.mute]
        if src_action is not None:
            fr = src_action.frame_range
            frame_range = (int(round(fr[0])), int(round(fr[1])))
        elif strips:  # an NLA layout (batch.lay_out_nla): retarget what it plays
            frame_range = (int(round(min(st.frame_start for st in strips))),
                           int(round(max(st.frame_end for st in strips))))
        else:
            raise RetargetError(f"source armature {source_armature.name!r} has no action or NLA strips; "
                                "pass frame_range to retarget its current (driven) pose")
    try:
        f0, f1 = int(frame_range[0]), int(frame_range[1])
    except (TypeError, ValueError, IndexError):
        raise RetargetError(f"frame_range must be (first, last) integers, got {frame_range!r}") from None
    if f1 < f0:
        raise RetargetError(f"frame_range {frame_range!r}: last frame before first")
    if isinstance(scale_root, str):
        if scale_root != "leg_length":
            raise RetargetError(f"scale_root must be 'leg_length', a number or None, got {scale_root!r}")
    elif scale_root is not None and not (isinstance(scale_root, (int, float)) and scale_root > 0):
        raise RetargetError(f"scale_root must be positive, got {scale_root!r}")

    src_names = list(bm.keys())
    src_bones, tgt_bones = source_armature.data.bones, target_armature.data.bones
    src_mw = _character_matrix(source_armature)
    tgt_mw = _character_matrix(target_armature)
    # facing: a rig built facing another way (+Y, +X ...) gets the motion turned to its facing
    yaw = _facing_yaw(bm, src_bones, tgt_bones, src_mw, tgt_mw)
    src_mw = _rot_z4(yaw) @ src_mw
    tgt_rw = _orthonormal(tgt_mw[:3, :3])

    # root: the mapped source bone nearest the top of the hierarchy
    sdepth = _depths(src_bones)
    src_root = min(src_names, key=lambda n: (sdepth[n], src_names.index(n)))
    tgt_root = bm[src_root]

    # ---- rest data
    src_rest = {n: src_mw @ np.array(src_bones[n].matrix_local) for n in src_names}  # world 4x4
    src_rest_rot = {n: _orthonormal(src_rest[n][:3, :3]) for n in src_names}
    tgt_order = _topo_order(tgt_bones)
    tidx = {n: i for i, n in enumerate(tgt_order)}
    M = np.array([np.array(tgt_bones[n].matrix_local) for n in tgt_order])   # armature space
    parent = [tidx[tgt_bones[n].parent.name] if tgt_bones[n].parent else -1 for n in tgt_order]
    tgt_rest_world_rot = {t: tgt_rw @ M[tidx[t], :3, :3] for t in bm.values()}
    Q = {}
    for s, t in bm.items():
        ds = src_rest_rot[s][:, 1]
        dt = tgt_rest_world_rot[t][:, 1]
        Q[s] = _min_rotation(dt, ds)

    # leg lengths (world units)
    src_heads = {n: src_rest[n][:3, 3] for n in src_names}
    tgt_heads = {s: (tgt_mw @ M[tidx[t], :, 3])[:3] for s, t in bm.items()}
    if scale_root == "leg_length":
        ls, lt = _leg_length(src_heads, LEG_CHAINS), _leg_length(tgt_heads, LEG_CHAINS)
        k = lt / ls if ls and lt and ls > 1e-6 else 1.0
    else:
        k = 1.0 if scale_root is None else float(scale_root)

    # ---- sample the source
    frames = np.arange(f0, f1 + 1)
    prev_frame, prev_sub = scene.frame_current, scene.frame_subframe
    try:
        S = _sample_source(source_armature, src_names, frames, scene, src_mw)    # (F, n, 4, 4) world
    finally:
        scene.frame_set(prev_frame, subframe=prev_sub)
    F = len(frames)
    S_rot = _orthonormal(S[:, :, :3, :3])

    # ---- desired world rotations of mapped target bones -> local rotations, parent first
    nb = len(tgt_order)
    P = np.broadcast_to(M, (F, nb, 4, 4)).copy()        # armature-space pose matrices
    Lrot = {}
    tgt_to_src = {t: s for s, t in bm.items()}
    tgt_rw_T = tgt_rw.T
    for j, name in enumerate(tgt_order):
        p = parent[j]
        rel = M[j] if p < 0 else np.linalg.inv(M[p]) @ M[j]
        X = rel[None] if p < 0 else P[:, p] @ rel[None]              # (F or 1, 4, 4), L = I
        X = np.broadcast_to(X, (F, 4, 4))
        if p >= 0 and not tgt_bones[name].use_inherit_rotation:  # Blender keeps its rest rotation
            X = X.copy()
            X[:, :3, :3] = M[j, :3, :3]
        s = tgt_to_src.get(name)
        if s is None:
            P[:, j] = X
            continue
        i = src_names.index(s)
        D = S_rot[:, i] @ src_rest_rot[s].T                          # (F, 3, 3) world delta
        W = D @ (Q[s] @ tgt_rest_world_rot[name])[None]              # desired world rotation
        A = tgt_rw_T[None] @ W                                       # armature space
        Xr = _orthonormal(X[:, :3, :3])
        L = np.swapaxes(Xr, -1, -2) @ A
        Lrot[name] = L
        Pj = X.copy()
        Pj[:, :3, :3] = X[:, :3, :3] @ L
        P[:, j] = Pj

    # ---- root location: scaled source displacement, then feet on the ground
    ri = src_names.index(src_root)
    src_disp = S[:, ri, :3, 3] - src_heads[src_root]                 # world
    root_world = tgt_heads[src_root][None] + k * src_disp            # (F, 3)
    inv_mw = np.linalg.inv(tgt_mw)

    def root_shift_world(root_w):
        h_arm = (inv_mw[:3, :3] @ root_w.T).T + inv_mw[:3, 3]
        return h_arm - P[:, tidx[tgt_root], :3, 3]                   # armature-space shift

    foot_src = [s for s in FOOT_BONES if s in bm]
    if keep_feet_on_ground and foot_src:
        shift = root_shift_world(root_world)
        pts, rest_pts = [], []
        for s in foot_src:
            j = tidx[bm[s]]
            length = tgt_bones[bm[s]].length
            for off in (np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.0, length, 0.0, 1.0])):
                pts.append((P[:, j] @ off)[:, :3] + shift)
                rest_pts.append((M[j] @ off)[:3])
        pts_w = np.stack(pts, 1) @ tgt_mw[:3, :3].T + tgt_mw[:3, 3]  # (F, K, 3)
        rest_w = np.array(rest_pts) @ tgt_mw[:3, :3].T + tgt_mw[:3, 3]
        ground = float(rest_w[:, 2].min())
        low = pts_w[:, :, 2].min(axis=1)
        dz = np.maximum(0.0, ground - low)
        if snap_contacts:
            s_pts, s_rest = [], []
            for s in foot_src:
                i = src_names.index(s)
                length = src_bones[s].length
                for off in (np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.0, length, 0.0, 1.0])):
                    s_pts.append((S[:, i] @ off)[:, :3])
                    s_rest.append((src_rest[s] @ off)[:3])
            s_ground = float(np.array(s_rest)[:, 2].min())
            s_low = np.stack(s_pts, 1)[:, :, 2].min(axis=1)
            contact = (s_low - s_ground) < CONTACT_HEIGHT
            need = dz
            dz = np.where(contact, ground - low, dz)
            # soften the steps where a contact starts or ends, never below what keeps feet up
            half = max(1, int(round(CONTACT_SMOOTH_S * _scene_fps(scene))))
            if F > 2 * half:
                pad = np.pad(dz, half, mode="edge")
                dz = np.maximum(np.convolve(pad, np.ones(2 * half + 1) / (2 * half + 1), "valid"), need)
        root_world = root_world + dz[:, None] * np.array([0.0, 0.0, 1.0])
    shift = root_shift_world(root_world)
    jr = tidx[tgt_root]
    pr = parent[jr]
    rel_r = M[jr] if pr < 0 else np.linalg.inv(M[pr]) @ M[jr]
    Xr = np.broadcast_to(rel_r[None] if pr < 0 else P[:, pr] @ rel_r[None], (F, 4, 4))
    h_target = P[:, jr, :3, 3] + shift
    root_loc = np.einsum("fij,fj->fi", np.linalg.inv(Xr[:, :3, :3]), h_target - Xr[:, :3, 3])

    # ---- write the action
    name = action_name or (f"{src_action.name} -> {target_armature.name}" if src_action
                           else f"Retarget -> {target_armature.name}")
    frames_f = frames.astype(np.float64)
    action, slot = anim_compat.new_action(name, target_armature)
    try:
        pbs = target_armature.pose.bones
        for tname in tgt_order:
            if tname not in Lrot:
                continue
            pb = pbs[tname]
            mode = pb.rotation_mode
            L = Lrot[tname]
            if tname == tgt_root:
                path = pb.path_from_id("location")
                for c in range(3):
                    fc = anim_compat.new_fcurve(action, slot, path, c, group_name=tname)
                    anim_compat.write_keys(fc, frames_f, root_loc[:, c])
            if mode == "QUATERNION":
                vals = smpl_rig.make_quaternions_continuous(smpl_rig.matrix_to_quaternion(L), axis=0)
                path = pb.path_from_id("rotation_quaternion")
            elif mode == "AXIS_ANGLE":
                aa = smpl_rig.matrix_to_axis_angle(L)
                ang = np.linalg.norm(aa, axis=-1)
                ax = np.where(ang[:, None] > 1e-9, aa / np.maximum(ang[:, None], 1e-12), [0.0, 1.0, 0.0])
                vals = np.concatenate([ang[:, None], ax], axis=1)
                path = pb.path_from_id("rotation_axis_angle")
            else:
                eul, prev = np.empty((F, 3)), None
                for fi in range(F):
                    e = mathutils.Matrix(L[fi].tolist()).to_euler(mode, prev) if prev is not None \
                        else mathutils.Matrix(L[fi].tolist()).to_euler(mode)
                    eul[fi] = tuple(e)
                    prev = e
                vals = eul
                path = pb.path_from_id("rotation_euler")
            for c in range(vals.shape[1]):
                fc = anim_compat.new_fcurve(action, slot, path, c, group_name=tname)
                anim_compat.write_keys(fc, frames_f, vals[:, c])
    except Exception:
        bpy.data.actions.remove(action)
        raise

    action.use_fake_user = True
    action["remomask_retarget_source"] = source_armature.name
    constrained = sorted(t for t in bm.values()
                         if any(not c.mute and c.influence > 0 for c in target_armature.pose.bones[t].constraints))
    if constrained:
        action["remomask_retarget_warning"] = (
            "constraints on these target bones override or change the retargeted keys: " + ", ".join(constrained))
    action["remomask_bone_map"] = json.dumps(dict(bm))
    action["remomask_root_scale"] = float(k)
    if src_action is not None and "remomask_prompt" in src_action:
        action["remomask_prompt"] = str(src_action["remomask_prompt"])

    ad = target_armature.animation_data
    prev = ad.action if ad is not None else None
    if prev is not None and prev.users <= 1 and not prev.use_fake_user:
        prev.use_fake_user = True
    for pb in target_armature.pose.bones:
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
        pb.rotation_euler = (0.0, 0.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)
    anim_compat.assign_action(target_armature, action, slot)
    return action
