"""Bone maps (numpy and the standard library only): which source bone drives which target bone.

A bone map is a ``{source_bone: target_bone}`` dict (default source names: the 24 SMPL bones) with a little
metadata (``BoneMap``). Bundled presets live in ``bone_maps/*.json`` next to this file (Mixamo, Rigify deform
bones); users can save their own (``save_bone_map``). ``auto_bone_map`` guesses a map from a rig's bone names and
hierarchy, given as ``(name, parent_name)`` pairs, so it works without Blender; ``resolve_map`` checks a map
against the two rigs' bone names. The Blender side (``blender/retarget.py``) passes an armature's bones in.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from . import smpl_rig
from .atomic import atomic_write_json

BONE_MAP_DIR = Path(__file__).resolve().parent / "bone_maps"


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


def depths(parent_of: dict) -> dict:
    """{bone: number of ancestors} from ``{bone: parent or None}``."""
    out = {}
    for b in parent_of:
        d, p = 0, parent_of[b]
        while p is not None:
            d, p = d + 1, parent_of.get(p)
        out[b] = d
    return out


def auto_bone_map(bones) -> BoneMap:
    """Guess a SMPL -> target bone map from bone names.

    bones: the target rig's bones as ``(name, parent_name or None)`` pairs, in the rig's order.

    Recognises Mixamo (``mixamorig:LeftArm``), Rigify deform bones (``DEF-upper_arm.L``,
    ``DEF-spine.001``; ``ORG-`` as a fallback), Unreal (``upperarm_l``, ``calf_r``, ``spine_01``),
    3ds Max Biped (``Bip01 L Thigh``) and generic names with ``.L/.R``, ``_l/_r``, ``Left/Right``
    sides and ``upperarm/forearm/thigh/calf/shin/...`` parts; skips MCH/IK/pole/twist helpers.
    A target that already has the SMPL bone names maps onto itself. Returns a BoneMap whose
    ``unmapped`` lists the SMPL bones that found nothing (those are simply not retargeted).
    """
    parent_of = {str(n): (str(p) if p is not None else None) for n, p in bones}
    names = list(parent_of)
    if all(n in parent_of for n in smpl_rig.SMPL_JOINT_NAMES):
        return BoneMap({n: n for n in smpl_rig.SMPL_JOINT_NAMES}, name="smpl")
    depth = depths(parent_of)
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


def resolve_map(bone_map, source_bones, target_bones, *, source_name: str, target_name: str, auto=None) -> BoneMap:
    """The pairs of ``bone_map`` that the two rigs can use, as a BoneMap.

    bone_map: a dict, a preset name, a JSON path, or None for ``auto()`` (the caller's automatic map of the
    target). source_bones / target_bones: the rigs' bone names (anything supporting ``in``). Every source bone the
    map names must exist; a target bone may be missing only when its source bone is ``optional``. Raises
    RetargetError."""
    if bone_map is None:
        if auto is None:
            raise RetargetError("no bone map given")
        bm = auto()
    elif isinstance(bone_map, (str, os.PathLike)):
        bm = load_bone_map(bone_map)
    elif isinstance(bone_map, dict):
        bm = bone_map if isinstance(bone_map, BoneMap) else _validate_map_dict(dict(bone_map), "bone map")
    else:
        raise RetargetError(f"bone_map must be a dict, a preset name or a .json path, got {type(bone_map).__name__}")
    missing_src = sorted(s for s in bm if s not in source_bones)
    if missing_src:
        raise RetargetError(f"source armature {source_name!r} lacks bones named in the bone map: "
                            f"{', '.join(missing_src)}")
    optional = getattr(bm, "optional", frozenset())
    missing_tgt = sorted(t for s, t in bm.items() if t not in target_bones and s not in optional)
    if missing_tgt:
        raise RetargetError(f"target armature {target_name!r} lacks bones the bone map requires: "
                            f"{', '.join(missing_tgt)}")
    used = {s: t for s, t in bm.items() if t in target_bones}
    if not used:
        raise RetargetError(f"no bone of {target_name!r} matches the bone map")
    return BoneMap(used, optional=optional, unmapped=getattr(bm, "unmapped", ()), name=getattr(bm, "name", ""))
