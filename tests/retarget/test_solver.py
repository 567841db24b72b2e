"""The retargeting solver on its own (core/retarget.py: numpy only, no bpy): rigs built from the SMPL template."""

import numpy as np
import pytest

from remomask_addon.core import bone_map, coords, smpl_rig
from remomask_addon.core.retarget import Retargeter, Rig, ground_rest, min_rotation, topo_order

NAMES = smpl_rig.SMPL_JOINT_NAMES


def smpl_rig_data(scale=1.0, lift=0.0):
    """The template SMPL skeleton as a Rig (z-up, bones with rest orientation = identity)."""
    heads = coords.points_to_zup(smpl_rig.TEMPLATE_REST_JOINTS) * scale + [0.0, 0.0, lift]
    tails = coords.points_to_zup(smpl_rig.bone_tails(smpl_rig.TEMPLATE_REST_JOINTS)) * scale + [0.0, 0.0, lift]
    bones = []
    for j, n in enumerate(NAMES):
        rest = np.eye(4)
        rest[:3, 3] = heads[j]
        p = smpl_rig.SMPL_PARENTS[j]
        bones.append((n, NAMES[p] if p >= 0 else None, rest, heads[j], float(np.linalg.norm(tails[j] - heads[j])),
                      True))
    return Rig.from_bones(reversed(bones))   # any order in, parents first out


def posed(rig, poses, trans):
    """Armature-space pose matrices (F, 24, 4, 4) of the rig for SMPL local rotations (y-up) and root offsets."""
    C = coords.YUP_TO_ZUP
    local = C[None, None] @ smpl_rig.axis_angle_to_matrix(poses) @ C.T[None, None]
    F = poses.shape[0]
    out = np.empty((F, 24, 4, 4))
    world = np.empty((F, 24, 3, 3))
    for j, n in enumerate(NAMES):
        i = rig.index[n]
        p = smpl_rig.SMPL_PARENTS[j]
        out[:, j] = np.eye(4)
        if p < 0:
            world[:, j] = local[:, j]
            out[:, j, :3, 3] = rig.heads[i] + coords.points_to_zup(trans)
        else:
            world[:, j] = world[:, p] @ local[:, j]
            out[:, j, :3, 3] = out[:, p, :3, 3] + np.einsum("fab,b->fa", world[:, p],
                                                            rig.heads[i] - rig.heads[rig.index[NAMES[p]]])
        out[:, j, :3, :3] = world[:, j]
    return out, local


def test_topo_order_puts_parents_first():
    assert topo_order([("c", "b"), ("a", None), ("b", "a"), ("d", None)]) == ["a", "b", "c", "d"]
    rig = smpl_rig_data()
    assert rig.names[0] == "pelvis" and all(p < i for i, p in enumerate(rig.parents))


def test_same_rig_gives_back_the_local_rotations_and_root_offsets():
    rng = np.random.default_rng(0)
    F = 6
    poses = rng.normal(scale=0.3, size=(F, 24, 3))
    trans = rng.normal(scale=0.2, size=(F, 3))
    src, tgt = smpl_rig_data(), smpl_rig_data()
    identity = bone_map.BoneMap({n: n for n in NAMES})
    solver = Retargeter(src, tgt, identity)
    assert solver.yaw == 0.0 and solver.k == pytest.approx(1.0) and solver.tgt_root == "pelvis"
    pose, local = posed(src, poses, trans)
    order = [NAMES.index(n) for n in solver.source_bones]
    sol = solver.solve(pose[:, order], fps=20.0, keep_feet_on_ground=False)
    assert list(sol.rotations) == [n for n in tgt.names]    # parents first
    for j, n in enumerate(NAMES):
        np.testing.assert_allclose(sol.rotations[n], local[:, j], atol=1e-9)
    np.testing.assert_allclose(sol.root_location, coords.points_to_zup(trans), atol=1e-9)


def test_a_longer_legged_target_travels_further_and_keeps_its_feet_up():
    F = 5
    poses = np.zeros((F, 24, 3))
    trans = np.zeros((F, 3))
    trans[:, 2] = np.linspace(0.0, 1.0, F)        # walks 1 m forward (y-up +Z)
    trans[2, 1] = -0.1                              # and sinks 10 cm into the floor on one frame
    src, tgt = smpl_rig_data(), smpl_rig_data(scale=2.0)
    solver = Retargeter(src, tgt, bone_map.BoneMap({n: n for n in NAMES}))
    assert solver.k == pytest.approx(2.0)
    pose, _ = posed(src, poses, trans)
    order = [NAMES.index(n) for n in solver.source_bones]
    free = solver.solve(pose[:, order], fps=20.0, keep_feet_on_ground=False)
    np.testing.assert_allclose(free.root_location[:, 1], -2.0 * np.linspace(0.0, 1.0, F), atol=1e-9)  # -Y forward
    assert free.root_location[2, 2] == pytest.approx(-0.2)
    grounded = solver.solve(pose[:, order], fps=20.0, keep_feet_on_ground=True, snap_contacts=False)
    assert grounded.root_location[2, 2] == pytest.approx(0.0, abs=1e-9)   # lifted back onto the floor
    np.testing.assert_allclose(grounded.root_location[:, :2], free.root_location[:, :2], atol=1e-12)


def test_a_target_facing_another_way_gets_the_motion_turned():
    src = smpl_rig_data()
    tgt = smpl_rig_data()
    turn = np.eye(4)
    turn[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]       # the target modelled facing +X (turned 90 degrees)
    tgt.rest = turn[None] @ tgt.rest
    tgt.heads = tgt.heads @ turn[:3, :3].T
    solver = Retargeter(src, tgt, bone_map.BoneMap({n: n for n in NAMES}))
    assert solver.yaw == pytest.approx(np.pi / 2)


def test_ground_rest_keeps_posed_joints():
    m = {"rest_joints": smpl_rig.TEMPLATE_REST_JOINTS_CENTRED, "trans": np.array([[0.0, 0.9, 0.0]])}
    g = ground_rest(m)
    assert g["rest_joints"][:, 1].min() == pytest.approx(0.0)
    np.testing.assert_allclose(g["rest_joints"][0] + g["trans"][0], m["rest_joints"][0] + m["trans"][0])
    assert ground_rest(g) is g


def oriented_rig(tails_of=None, lift=0.0):
    """The SMPL template as a Rig whose bones point head -> tail (Y along the bone, as in Blender); ``tails_of``
    overrides tails {joint index: z-up tail offset from the head}."""
    heads = coords.points_to_zup(smpl_rig.TEMPLATE_REST_JOINTS) + [0.0, 0.0, lift]
    tails = coords.points_to_zup(smpl_rig.bone_tails(smpl_rig.TEMPLATE_REST_JOINTS)) + [0.0, 0.0, lift]
    for j, off in (tails_of or {}).items():
        tails[j] = heads[j] + off
    bones = []
    for j, n in enumerate(NAMES):
        rest = np.eye(4)
        rest[:3, :3] = min_rotation(np.array([0.0, 1.0, 0.0]), tails[j] - heads[j])
        rest[:3, 3] = heads[j]
        p = smpl_rig.SMPL_PARENTS[j]
        bones.append((n, NAMES[p] if p >= 0 else None, rest, heads[j], float(np.linalg.norm(tails[j] - heads[j])),
                      True))
    return Rig.from_bones(bones)


def oriented_pose(rig, poses, trans):
    """Pose matrices (F, 24, 4, 4) of an ``oriented_rig``: world rotation deltas applied to the rest orientations."""
    out, _ = posed(rig, poses, trans)
    rest_rot = np.array([rig.rest[rig.index[n], :3, :3] for n in NAMES])
    out[:, :, :3, :3] = out[:, :, :3, :3] @ rest_rot[None]
    return out


def test_toes_keep_their_rest_angle_and_stay_out_of_the_floor():
    """SMPL's toe bone is a leaf pointing 24 degrees down (its tail only continues ankle -> toe); a target whose toes
    are modelled flat keeps them flat at the source's rest pose (not turned 24 degrees into the floor), its foot
    joints stand at their rest heights above its floor (here 3 cm higher than SMPL's, as a rig modelled with soles), and where
    the heels rise the toe tips are turned up to the floor about the toe joints."""
    src = oriented_rig()
    flat = {10: np.array([0.0, -0.09, 0.0]), 11: np.array([0.0, -0.09, 0.0])}   # toes forward (-Y), level
    tgt = oriented_rig(tails_of=flat, lift=0.03)
    solver = Retargeter(src, tgt, bone_map.BoneMap({n: n for n in NAMES}))
    order = [NAMES.index(n) for n in solver.source_bones]
    F = 4
    poses = np.zeros((F, 24, 3))
    poses[2:, [7, 8], 0] = 0.5      # both ankles pitched 29 degrees on the last frames: on tiptoe
    trans = np.zeros((F, 3))
    drop = src.heads[src.index["left_foot"], 2] - oriented_pose(src, poses, trans)[:, 10, 2, 3]
    trans[:, 1] = drop              # lifted so that the source's toe joints stay at their rest height (y-up)
    pose = oriented_pose(src, poses, trans)
    np.testing.assert_allclose(pose[:, [10, 11], 2, 3], src.heads[src.index["left_foot"], 2], atol=1e-9)
    sol = solver.solve(pose[:, order], fps=20.0)
    for n in ("left_foot", "right_foot"):       # standing at rest: the toes as modelled (level)
        np.testing.assert_allclose(sol.rotations[n][:2], np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-9)
    P = solver.forward(sol.rotations)                           # the root at its rest place
    root = tgt.index["pelvis"]
    shift = sol.root_location @ tgt.rest[root, :3, :3].T        # the root bone has no parent: its location moves it
    feet = [tgt.index[n] for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
    z = P[:, feet, 2, 3] + shift[:, None, 2]
    rest_z = tgt.heads[feet, 2]
    # the lowest foot joint at its rest height, as the source's are at theirs
    np.testing.assert_allclose((z - rest_z[None]).min(axis=1), 0.0, atol=1e-9)
    # toe tips: level at rest, and at their rest height (the toe joint's: 1 + 3 cm) where the foot rolls over the toe
    for n in ("left_foot", "right_foot"):
        j = tgt.index[n]
        tip = (P[:, j, :3, :3] @ np.array([0.0, tgt.lengths[j], 0.0]))[:, 2] + P[:, j, 2, 3] + shift[:, 2]
        np.testing.assert_allclose(tip, tgt.heads[j, 2], atol=1e-6)
    assert np.all(z[2:, [0, 2]] - rest_z[[0, 2]] > 0.03)    # the heels are really up on those frames
