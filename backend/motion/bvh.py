"""Minimal BVH (Biovision hierarchy) writer and reader (numpy + scipy).

Conventions of ``write_bvh``:

- Units: whatever the arrays are in, times ``scale``. The project passes metres with ``scale=1.0``
  (Blender's BVH importer then gives a correctly sized armature at its default scale 1.0); pass
  ``scale=100`` for the centimetres many other tools expect.
- Axes: written as given; the project's data is y-up (Blender's importer defaults to "Y up, -Z forward",
  which turns it into Blender's z-up).
- The root has 6 channels (``Xposition Yposition Zposition`` then the rotations), every other joint the 3
  rotation channels in ``channel_order`` (default ``ZXY``: the matrix is Rz @ Rx @ Ry, angles in degrees).
- Root position channels are the root's absolute position (as Blender reads them); the root's OFFSET is
  written as ``offsets[0]`` (use zeros for readers that add OFFSET to the channels).
- Forward kinematics: ``world_rot[j] = world_rot[parent] @ local_rot[j]``,
  ``pos[j] = pos[parent] + world_rot[parent] @ offsets[j]``; ``pos[root] = root_trans``.
- Joints are written depth-first from the root (children in index order), so a file's joint order can
  differ from the input order; ``read_bvh`` returns the file's order with names for matching.
- Leaf joints get an ``End Site`` (default: half the leaf's own offset, or 5 cm up for a zero offset).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from scipy.spatial.transform import Rotation

from backend.atomic import atomic_write_bytes

_NAME_RE = re.compile(r"^[^\s{}]+$")


class BVHError(ValueError):
    """Invalid data for a BVH file, or an unreadable BVH file."""


def _children(parents):
    kids = {i: [] for i in range(len(parents))}
    for i, p in enumerate(parents):
        if p >= 0:
            kids[p].append(i)
    return kids


def _dfs_order(parents) -> list:
    roots = [i for i, p in enumerate(parents) if p < 0]
    if len(roots) != 1:
        raise BVHError(f"the skeleton must have exactly one root (parent -1); found {len(roots)}")
    kids = _children(parents)
    order, stack = [], [roots[0]]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(kids[j]))
    if len(order) != len(parents):
        raise BVHError("parents do not form a tree (a joint is unreachable from the root, or there is a cycle)")
    return order


def _finite(name, a, shape) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != shape:
        raise BVHError(f"{name}: expected shape {shape}; got {a.shape}")
    if not np.isfinite(a).all():
        raise BVHError(f"{name}: contains NaN or infinite values")
    return a


def _check_order(channel_order: str) -> str:
    order = str(channel_order).upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise BVHError(f"channel_order must be a permutation of XYZ; got {channel_order!r}")
    return order


def write_bvh(path, names, parents, offsets, rotations, root_trans, fps: float = 20, channel_order: str = "ZXY",
              *, scale: float = 1.0, end_sites=None) -> Path:
    """Write a BVH file atomically.

    names (J,) str; parents (J,) int with -1 for the single root; offsets (J, 3) rest offset of each
    joint from its parent (root: its rest position); rotations (T, J, 3) local axis-angle (radians);
    root_trans (T, 3) root positions; fps; channel_order of the rotation channels; ``scale`` multiplies
    every length written; ``end_sites`` optional {joint index: (3,) offset} for leaf joints.
    Raises ``BVHError`` (nothing written) on bad input. Returns the path.
    """
    path = Path(path)
    names = [str(n) for n in names]
    parents = [int(p) for p in parents]
    J = len(names)
    if J == 0 or len(parents) != J:
        raise BVHError(f"names and parents must have the same non-zero length; got {J} and {len(parents)}")
    if len(set(names)) != J or not all(_NAME_RE.match(n) for n in names):
        raise BVHError("joint names must be unique, non-empty, without whitespace or braces")
    if any(p >= J or p < -1 for p in parents):
        raise BVHError("parents must be joint indices or -1")
    order = _dfs_order(parents)
    ch = _check_order(channel_order)
    offsets = _finite("offsets", offsets, (J, 3)) * scale
    rotations = np.asarray(rotations, dtype=np.float64)
    if rotations.ndim != 3 or rotations.shape[1:] != (J, 3) or rotations.shape[0] < 1:
        raise BVHError(f"rotations: expected shape (T, {J}, 3) with T >= 1; got {rotations.shape}")
    T = rotations.shape[0]
    rotations = _finite("rotations", rotations, (T, J, 3))
    root_trans = _finite("root_trans", root_trans, (T, 3)) * scale
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise BVHError(f"fps must be a positive number; got {fps}")
    if not np.isfinite(scale) or scale <= 0:
        raise BVHError(f"scale must be a positive number; got {scale}")
    kids = _children(parents)
    ends = {}
    for j in range(J):
        if kids[j]:
            continue
        if end_sites is not None and j in end_sites:
            ends[j] = _finite(f"end_sites[{j}]", end_sites[j], (3,)) * scale
        else:
            o = offsets[j]
            ends[j] = 0.5 * o if np.linalg.norm(o) > 1e-9 else np.array([0.0, 0.05 * scale, 0.0])

    rot_channels = " ".join(f"{a}rotation" for a in ch)
    lines = ["HIERARCHY"]

    def emit(j, depth):
        ind = "\t" * depth
        head = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{ind}{head} {names[j]}")
        lines.append(f"{ind}{{")
        o = offsets[j]
        lines.append(f"{ind}\tOFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if parents[j] < 0:
            lines.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            lines.append(f"{ind}\tCHANNELS 3 {rot_channels}")
        for k in kids[j]:
            emit(k, depth + 1)
        if not kids[j]:
            e = ends[j]
            lines.append(f"{ind}\tEnd Site")
            lines.append(f"{ind}\t{{")
            lines.append(f"{ind}\t\tOFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}")
            lines.append(f"{ind}\t}}")
        lines.append(f"{ind}}}")

    emit(order[0], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal-lock warnings: the angles still reproduce the rotation
        euler = Rotation.from_rotvec(rotations[:, order].reshape(-1, 3)).as_euler(ch, degrees=True)
    euler = euler.reshape(T, J * 3)
    motion = np.concatenate([root_trans, euler], axis=1)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in motion]
    text = "\n".join(lines) + "\n"

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BVHError(f"folder does not exist: {folder}")
    return atomic_write_bytes(path, text.encode("ascii"), make_parents=False)


def read_bvh(path, scale: float = 1.0) -> dict:
    """Parse a BVH file. Returns a dict:

    names (list, file order), parents (list of int, -1 for the root), offsets (J, 3),
    rotations (T, J, 3) local axis-angle (radians), root_positions (T, 3), fps (float),
    frame_time (float), channel_orders (list of rotation-axis strings per joint, e.g. "ZXY"),
    end_sites ({joint index: (3,) offset}), frame_offsets ((T, J, 3) or None). Lengths are multiplied by
    ``scale``. Position channels on the root give ``root_positions``; on any other joint they hold the joint's
    full local position, replacing its OFFSET in that frame (the convention of Blender's BVH exporter, which
    writes them for every bone not connected to its parent): ``frame_offsets`` then holds every joint's offset
    per frame (its OFFSET where it has no position channels); it is None when only the root has them.
    """
    path = Path(path)
    if not path.is_file():
        raise BVHError(f"BVH file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except Exception as e:
        raise BVHError(f"cannot read {path}: {e}") from e
    tokens = text.split()
    pos = 0

    def take():
        nonlocal pos
        if pos >= len(tokens):
            raise BVHError(f"{path}: unexpected end of file")
        pos += 1
        return tokens[pos - 1]

    def expect(word):
        t = take()
        if t != word:
            raise BVHError(f"{path}: expected {word!r}, found {t!r}")

    def floats(n):
        try:
            return [float(take()) for _ in range(n)]
        except ValueError as e:
            raise BVHError(f"{path}: bad number ({e})") from e

    names, parents, offsets, channels, end_sites = [], [], [], [], {}
    expect("HIERARCHY")
    expect("ROOT")
    stack = []  # open joints
    name = take()
    names.append(name)
    parents.append(-1)
    stack.append(0)
    expect("{")
    while stack:
        t = take()
        cur = stack[-1]
        if t == "OFFSET":
            if len(offsets) != cur:
                raise BVHError(f"{path}: OFFSET out of place in joint {names[cur]!r}")
            offsets.append(floats(3))
        elif t == "CHANNELS":
            try:
                n = int(take())
            except ValueError as e:
                raise BVHError(f"{path}: bad channel count") from e
            channels.append((cur, [take() for _ in range(n)]))
        elif t == "JOINT":
            names.append(take())
            parents.append(cur)
            stack.append(len(names) - 1)
            expect("{")
        elif t == "End":
            expect("Site")
            expect("{")
            expect("OFFSET")
            end_sites[cur] = np.array(floats(3)) * scale
            expect("}")
        elif t == "}":
            stack.pop()
        else:
            raise BVHError(f"{path}: unexpected token {t!r} in the hierarchy")
    J = len(names)
    if len(offsets) != J:
        raise BVHError(f"{path}: every joint needs an OFFSET")
    expect("MOTION")
    expect("Frames:")
    try:
        T = int(take())
    except ValueError as e:
        raise BVHError(f"{path}: bad frame count") from e
    expect("Frame")
    expect("Time:")
    frame_time = floats(1)[0]
    if not frame_time > 0:
        raise BVHError(f"{path}: Frame Time must be > 0")
    n_ch = sum(len(c) for _, c in channels)
    values = tokens[pos:]
    if len(values) != T * n_ch:
        raise BVHError(f"{path}: expected {T} frames x {n_ch} channels = {T * n_ch} values; found {len(values)}")
    try:
        data = np.array(values, dtype=np.float64).reshape(T, n_ch)
    except ValueError as e:
        raise BVHError(f"{path}: bad number in the motion data ({e})") from e

    rotations = np.zeros((T, J, 3))
    root_positions = np.zeros((T, 3))
    frame_offsets = None
    orders = [""] * J
    col = 0
    for j, chs in channels:
        rot_axes, rot_cols = "", []
        for c in chs:
            kind = c[1:].lower()
            axis = c[0].upper()
            if kind == "position":
                if parents[j] == -1:
                    root_positions[:, "XYZ".index(axis)] = data[:, col] * scale
                else:
                    if frame_offsets is None:
                        frame_offsets = np.broadcast_to(np.array(offsets, dtype=np.float64) * scale, (T, J, 3)).copy()
                    frame_offsets[:, j, "XYZ".index(axis)] = data[:, col] * scale
            elif kind == "rotation":
                rot_axes += axis
                rot_cols.append(col)
            else:
                raise BVHError(f"{path}: unknown channel {c!r}")
            col += 1
        if rot_axes:
            if sorted(rot_axes) != ["X", "Y", "Z"]:
                raise BVHError(f"{path}: joint {names[j]!r} needs three rotation channels; got {rot_axes}")
            rotations[:, j] = Rotation.from_euler(rot_axes, data[:, rot_cols], degrees=True).as_rotvec()
        orders[j] = rot_axes
    return dict(names=names, parents=parents, offsets=np.array(offsets) * scale, rotations=rotations,
                root_positions=root_positions, fps=1.0 / frame_time, frame_time=frame_time,
                channel_orders=orders, end_sites=end_sites, frame_offsets=frame_offsets)


def _forward_kinematics(parents, offsets, rotations, root_positions) -> tuple[np.ndarray, np.ndarray]:
    """(world joint positions (T, J, 3), world rotation matrices (T, J, 3, 3))."""
    parents = [int(p) for p in parents]
    offsets = np.asarray(offsets, dtype=np.float64)
    rotations = np.asarray(rotations, dtype=np.float64)
    T, J = rotations.shape[:2]
    local = Rotation.from_rotvec(rotations.reshape(-1, 3)).as_matrix().reshape(T, J, 3, 3)
    world = np.zeros_like(local)
    out = np.zeros((T, J, 3))
    for j, p in enumerate(parents):
        if p < 0:
            world[:, j] = local[:, j]
            out[:, j] = root_positions
        else:
            if p >= j:
                raise BVHError("parents must precede their children")
            world[:, j] = world[:, p] @ local[:, j]
            off = offsets[j] if offsets.ndim == 2 else offsets[:, j, :, None]
            out[:, j] = out[:, p] + (world[:, p] @ off).reshape(T, 3)
    return out, world


def bvh_forward_kinematics(parents, offsets, rotations, root_positions) -> np.ndarray:
    """World joint positions (T, J, 3) for the BVH convention above (parents must precede children,
    as in any ``read_bvh`` result). ``offsets`` is (J, 3), or (T, J, 3) for offsets that change per frame
    (``read_bvh``'s ``frame_offsets``)."""
    return _forward_kinematics(parents, offsets, rotations, root_positions)[0]


def bvh_positions(bvh: dict) -> tuple[np.ndarray, dict]:
    """A ``read_bvh`` result -> (world joint positions (T, J, 3), {joint index: its end site's world positions
    (T, 3)}), with the file's per-frame offsets where it has them."""
    offsets = bvh["offsets"] if bvh.get("frame_offsets") is None else bvh["frame_offsets"]
    pos, world = _forward_kinematics(bvh["parents"], offsets, bvh["rotations"], bvh["root_positions"])
    ends = {j: pos[:, j] + world[:, j] @ np.asarray(off, np.float64) for j, off in bvh["end_sites"].items()}
    return pos, ends
