"""BVH write -> read -> forward kinematics."""

import os

import numpy as np
import pytest

from backend.motion import skeleton as S
from backend.motion.bvh import BVHError, bvh_forward_kinematics, read_bvh, write_bvh
from backend.motion.procedural import fk, walking_params


def _offsets(rest):
    par = np.array(S.PARENTS)
    off = rest - rest[np.maximum(par, 0)]
    off[0] = rest[0]
    return off


@pytest.mark.parametrize("order, scale", [("ZXY", 1.0), ("XYZ", 100.0), ("yzx", 1.0)])
def test_write_read_fk_matches(tmp_path, order, scale):
    rest, rot, root = walking_params(40, turn_degrees=200, seed=3)
    rot = rot.copy()
    rot[5, S.JOINT_INDEX["left_elbow"]] = [0.0, 0.0, np.pi / 2]  # includes a gimbal-lock-prone angle
    rot[6, S.JOINT_INDEX["left_elbow"]] = [np.pi / 2, 0.0, 0.0]
    expected = fk(rest, rot, root)
    p = write_bvh(tmp_path / "walk.bvh", S.JOINT_NAMES, S.PARENTS, _offsets(rest), rot, root, fps=20,
                  channel_order=order, scale=scale)
    assert os.listdir(tmp_path) == ["walk.bvh"]
    b = read_bvh(p, scale=1.0 / scale)
    assert sorted(b["names"]) == sorted(S.JOINT_NAMES) and len(b["names"]) == 22
    assert b["fps"] == pytest.approx(20.0) and b["rotations"].shape == (40, 22, 3)
    assert set(b["channel_orders"]) == {order.upper()}
    pos = bvh_forward_kinematics(b["parents"], b["offsets"], b["rotations"], b["root_positions"])
    idx = [b["names"].index(n) for n in S.JOINT_NAMES]
    err = np.abs(pos[:, idx] - expected).max()
    assert err < 1e-4, err
    # parents map back to the same tree
    assert [S.JOINT_NAMES.index(b["names"][b["parents"][i]]) if b["parents"][i] >= 0 else -1 for i in idx] == list(S.PARENTS)
    # leaves have end sites
    leaves = {"left_foot", "right_foot", "head", "left_wrist", "right_wrist"}
    assert {b["names"][j] for j in b["end_sites"]} == leaves


def test_header_text(tmp_path):
    rest, rot, root = walking_params(3)
    p = write_bvh(tmp_path / "a.bvh", S.JOINT_NAMES, S.PARENTS, _offsets(rest), rot, root, fps=30)
    text = p.read_text()
    assert text.startswith("HIERARCHY\nROOT pelvis\n{\n")
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert "MOTION\nFrames: 3\nFrame Time: 0.03333333\n" in text
    assert text.count("CHANNELS 3 ") == 21


def test_bad_input_writes_nothing(tmp_path):
    rest, rot, root = walking_params(4)
    off = _offsets(rest)
    bad_rot = rot.copy()
    bad_rot[1, 2, 0] = np.nan
    cases = [
        (dict(rotations=bad_rot), "NaN"),
        (dict(rotations=rot[:, :21]), "rotations"),
        (dict(root_trans=root[:3]), "root_trans"),
        (dict(parents=[-1] + list(S.PARENTS[1:-1]) + [-1]), "one root"),
        (dict(names=list(S.JOINT_NAMES[:-1]) + ["pelvis"]), "unique"),
        (dict(names=list(S.JOINT_NAMES[:-1]) + ["right wrist"]), "whitespace"),
        (dict(channel_order="ZZY"), "permutation"),
        (dict(fps=0), "fps"),
    ]
    for change, msg in cases:
        kw = dict(names=S.JOINT_NAMES, parents=S.PARENTS, offsets=off, rotations=rot, root_trans=root)
        kw.update(change)
        with pytest.raises(BVHError, match=msg):
            write_bvh(tmp_path / "x.bvh", **kw)
    with pytest.raises(BVHError, match="folder"):
        write_bvh(tmp_path / "no" / "x.bvh", S.JOINT_NAMES, S.PARENTS, off, rot, root)
    assert os.listdir(tmp_path) == []


def test_read_errors(tmp_path):
    with pytest.raises(BVHError, match="not found"):
        read_bvh(tmp_path / "none.bvh")
    rest, rot, root = walking_params(4)
    p = write_bvh(tmp_path / "a.bvh", S.JOINT_NAMES, S.PARENTS, _offsets(rest), rot, root)
    text = p.read_text()
    (tmp_path / "short.bvh").write_text(text.rsplit("\n", 2)[0] + "\n")
    with pytest.raises(BVHError, match="values"):
        read_bvh(tmp_path / "short.bvh")
    (tmp_path / "trunc.bvh").write_text(text[:200])
    with pytest.raises(BVHError):
        read_bvh(tmp_path / "trunc.bvh")


@pytest.mark.blender
def test_blender_importer_reads_it(tmp_path):
    """Blender's own BVH importer (default axes: Y up, -Z forward) reproduces the joint positions, z-up."""
    bpy = pytest.importorskip("bpy")
    rest, rot, root = walking_params(10, turn_degrees=90)
    expected = fk(rest, rot, root)
    p = write_bvh(tmp_path / "w.bvh", S.JOINT_NAMES, S.PARENTS, _offsets(rest), rot, root, fps=20)
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=str(p), update_scene_fps=True)
    scene = bpy.context.scene
    assert scene.render.fps == 20
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    try:
        for frame in (1, 10):
            scene.frame_set(frame)
            got = np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in S.JOINT_NAMES])
            e = expected[frame - 1]
            np.testing.assert_allclose(got, np.stack([e[:, 0], -e[:, 2], e[:, 1]], -1), atol=1e-4)
    finally:
        bpy.ops.wm.read_homefile(use_empty=True)


def test_position_channels_on_a_child_joint_replace_its_offset(tmp_path):
    """Blender's BVH exporter writes position channels on every bone not connected to its parent; their values
    are the joint's local position (OFFSET included). Frame 0 keeps the OFFSET, frame 1 moves the child."""
    text = """HIERARCHY
ROOT root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT hip
  {
    OFFSET 0 1 0
    CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
    JOINT knee
    {
      OFFSET 0 -0.5 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 -0.5 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
1 0 0 0 0 0  0 1 0 0 0 0  0 0 0
1 0 0 90 0 0  0 2 0.5 0 0 0  0 0 0
"""
    p = tmp_path / "child_pos.bvh"
    p.write_text(text)
    b = read_bvh(p)
    assert b["frame_offsets"].shape == (2, 3, 3)
    np.testing.assert_allclose(b["frame_offsets"][:, 1], [[0, 1, 0], [0, 2, 0.5]])
    np.testing.assert_allclose(b["frame_offsets"][:, 2], [[0, -0.5, 0], [0, -0.5, 0]])
    pos = bvh_forward_kinematics(b["parents"], b["frame_offsets"], b["rotations"], b["root_positions"])
    np.testing.assert_allclose(pos[0], [[1, 0, 0], [1, 1, 0], [1, 0.5, 0]], atol=1e-9)
    # frame 1: the root turns 90 degrees about Z, so the hip's local (0, 2, 0.5) becomes (-2, 0, 0.5)
    np.testing.assert_allclose(pos[1], [[1, 0, 0], [-1, 0, 0.5], [-0.5, 0, 0.5]], atol=1e-9)


def test_root_only_position_channels_have_no_frame_offsets(tmp_path):
    rest, rot, root = walking_params(10, seed=1)
    p = write_bvh(tmp_path / "m.bvh", S.JOINT_NAMES, S.PARENTS, _offsets(rest), rot, root, fps=20)
    assert read_bvh(p)["frame_offsets"] is None
