"""A procedural skinned body for the SMPL armature, so renders show a figure.

``build_mannequin(armature)`` makes one mesh of tapered capsules, one per bone, rigidly weighted
to that bone (the ring at the bone's head is shared half-and-half with the parent so joints bend
without opening), parented to the armature with an Armature modifier. It needs no files.

Hook for the real SMPL body: when the user has SMPL model files, the add-on (or the SMPL loader)
can pass the zero-pose template vertices (y-up, with the fitted ``betas`` applied), the faces and
the (V, 24) skinning weights to ``build_skinned_mesh``; it creates the same kind of object.
TODO(smpl-mesh): the loader that reads the user's SMPL files into those three arrays lives with
the SMPL-fitting code (``smpl_fitting/body_model.py``); it is not part of this module.
"""

from __future__ import annotations

import numpy as np

import bpy

from ..core import coords, smpl_rig
from .armature import is_smpl_armature

#: (radius at head, radius at tail) in metres, per SMPL bone.
BONE_RADII = {
    "pelvis": (0.115, 0.11), "left_hip": (0.075, 0.055), "right_hip": (0.075, 0.055),
    "spine1": (0.11, 0.11), "left_knee": (0.052, 0.04), "right_knee": (0.052, 0.04),
    "spine2": (0.115, 0.12), "left_ankle": (0.04, 0.035), "right_ankle": (0.04, 0.035),
    "spine3": (0.125, 0.06), "left_foot": (0.035, 0.03), "right_foot": (0.035, 0.03),
    "neck": (0.05, 0.05), "left_collar": (0.05, 0.05), "right_collar": (0.05, 0.05),
    "head": (0.095, 0.085), "left_shoulder": (0.05, 0.042), "right_shoulder": (0.05, 0.042),
    "left_elbow": (0.04, 0.032), "right_elbow": (0.04, 0.032), "left_wrist": (0.032, 0.03),
    "right_wrist": (0.032, 0.03), "left_hand": (0.03, 0.022), "right_hand": (0.03, 0.022),
}
SIDES = 12
RINGS = 6  # rings along the bone body (caps add one pole each side)


def _capsule(head, tail, r0, r1):
    """Vertices (n, 3), quad/tri faces (local indices) and the ring parameter per vertex (0 at
    head, 1 at tail) of a tapered capsule from head to tail."""
    axis = tail - head
    length = float(np.linalg.norm(axis))
    d = axis / max(length, 1e-9)
    ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, ref)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    ang = np.linspace(0, 2 * np.pi, SIDES, endpoint=False)
    circle = np.outer(np.cos(ang), u) + np.outer(np.sin(ang), v)
    verts, params = [], []
    # rings: rounded near both ends (a capsule profile)
    ts = np.linspace(0.0, 1.0, RINGS)
    for t in ts:
        r = r0 + (r1 - r0) * t
        bulge = np.sqrt(max(0.0, 1.0 - (2 * t - 1) ** 8))  # flattens the ends slightly
        verts.append(head + d * (t * length) + circle * (r * (0.75 + 0.25 * bulge)))
        params.append(np.full(SIDES, t))
    verts.append((head - d * r0 * 0.6)[None])
    params.append(np.zeros(1))
    verts.append((tail + d * r1 * 0.6)[None])
    params.append(np.ones(1))
    verts = np.concatenate(verts)
    params = np.concatenate(params)
    faces = []
    for i in range(RINGS - 1):
        a, b = i * SIDES, (i + 1) * SIDES
        for k in range(SIDES):
            k1 = (k + 1) % SIDES
            faces.append((a + k, a + k1, b + k1, b + k))
    pole0, pole1 = RINGS * SIDES, RINGS * SIDES + 1
    last = (RINGS - 1) * SIDES
    for k in range(SIDES):
        k1 = (k + 1) % SIDES
        faces.append((pole0, k1, k))
        faces.append((pole1, last + k, last + k1))
    return verts, faces, params


def build_skinned_mesh(armature, vertices, faces, weights, *, name: str | None = None,
                       vertices_are_yup: bool = False):
    """Create a mesh object skinned to the SMPL ``armature``.

    vertices (V, 3) in armature space (z-up; set ``vertices_are_yup`` for SMPL-frame arrays),
    faces: a sequence of index tuples, weights (V, 24) per SMPL bone (rows need not sum to 1).
    The object is parented to the armature (identity parent inverse), linked to the armature's
    collections and gets an Armature modifier. Returns the mesh object.
    """
    verts = np.asarray(vertices, dtype=np.float64)
    if vertices_are_yup:
        verts = coords.points_to_zup(verts)
    w = np.asarray(weights, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[1] != 3 or w.shape != (verts.shape[0], smpl_rig.NUM_JOINTS):
        raise ValueError(f"vertices must be (V, 3) and weights (V, 24); got {verts.shape}, {w.shape}")
    name = name or f"{armature.name}_body"
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], [tuple(int(i) for i in f) for f in faces])
    mesh.update()
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    obj = bpy.data.objects.new(name, mesh)
    for coll in (armature.users_collection or (bpy.context.scene.collection,)):
        coll.objects.link(obj)
    for j, bone in enumerate(smpl_rig.SMPL_JOINT_NAMES):
        col = w[:, j]
        nz = np.nonzero(col > 1e-6)[0]
        vg = obj.vertex_groups.new(name=bone)
        if nz.size == 0:
            continue
        for value in np.unique(np.round(col[nz], 6)):
            idx = nz[np.round(col[nz], 6) == value]
            vg.add(idx.tolist(), float(value), "REPLACE")
    obj.parent = armature
    obj.matrix_parent_inverse.identity()
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = armature
    mod.use_vertex_groups = True
    return obj


def build_mannequin(armature, *, name: str | None = None):
    """A capsule-per-bone body for an SMPL armature (see module doc). Returns the mesh object."""
    if not is_smpl_armature(armature):
        raise ValueError(f"'{armature.name}' is not an SMPL armature")
    bones = armature.data.bones
    all_v, all_f, all_w = [], [], []
    offset = 0
    for j, bname in enumerate(smpl_rig.SMPL_JOINT_NAMES):
        b = bones[bname]
        head = np.array(b.head_local, dtype=np.float64)
        tail = np.array(b.tail_local, dtype=np.float64)
        r0, r1 = BONE_RADII[bname]
        v, f, t = _capsule(head, tail, r0, r1)
        wts = np.zeros((v.shape[0], smpl_rig.NUM_JOINTS))
        parent = smpl_rig.SMPL_PARENTS[j]
        at_head = t <= 1e-9
        wts[:, j] = 1.0
        if parent >= 0:
            wts[at_head, j] = 0.5
            wts[at_head, parent] = 0.5
        all_v.append(v)
        all_f.extend(tuple(i + offset for i in face) for face in f)
        all_w.append(wts)
        offset += v.shape[0]
    return build_skinned_mesh(armature, np.concatenate(all_v), all_f, np.concatenate(all_w),
                              name=name or f"{armature.name}_mannequin")


def build_body(armature, motion: dict | None = None):
    """The body for a new SMPL armature: the user's SMPL mesh when the motion carries one (the backend adds
    it when it fitted with SMPL model files), otherwise the procedural mannequin. Returns the mesh object."""
    mesh = (motion or {}).get("body_mesh")
    if mesh is not None:
        verts, faces, weights = mesh
        return build_skinned_mesh(armature, verts, faces, weights, name=f"{armature.name}_smpl_body",
                                  vertices_are_yup=True)
    return build_mannequin(armature)
