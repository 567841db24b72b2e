"""Bone-map presets and files (no bpy needed)."""

import json

import pytest

from remomask_addon.core import bone_map
from remomask_addon.core import smpl_rig


def test_presets_are_complete():
    assert {"mixamo", "rigify"} <= set(bone_map.available_presets())
    for name in ("mixamo", "rigify"):
        bm = bone_map.load_bone_map(name)
        assert set(bm) == set(smpl_rig.SMPL_JOINT_NAMES) - {"left_hand", "right_hand"}
        assert len(set(bm.values())) == len(bm)
        assert bm.optional <= set(bm)
    assert bone_map.load_bone_map("Mixamo")["left_elbow"] == "mixamorig:LeftForeArm"
    assert bone_map.load_bone_map("rigify")["right_knee"] == "DEF-shin.R"


def test_save_load_roundtrip(tmp_path):
    bm = bone_map.load_bone_map("mixamo")
    bm["left_hip"] = "MyThigh.L"
    p = bone_map.save_bone_map(tmp_path / "sub" / "my.json", bm, name="Mine")
    data = json.loads(p.read_text())
    assert data["name"] == "Mine" and data["bones"]["left_hip"] == "MyThigh.L"
    back = bone_map.load_bone_map(str(p))
    assert dict(back) == dict(bm) and back.optional == bm.optional
    assert list(tmp_path.joinpath("sub").iterdir()) == [p]  # no temp files left
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"pelvis": "Hips"}))
    assert dict(bone_map.load_bone_map(flat)) == {"pelvis": "Hips"}


@pytest.mark.parametrize("text, msg", [
    ("[1, 2]", "non-empty JSON object"), ("{not json", "cannot read"),
    ('{"bones": {"pelvis": 3}}', "non-empty strings"), ('{"bones": {}}', "non-empty"),
])
def test_bad_files(tmp_path, text, msg):
    p = tmp_path / "b.json"
    p.write_text(text)
    with pytest.raises(bone_map.RetargetError, match=msg):
        bone_map.load_bone_map(p)
    with pytest.raises(bone_map.RetargetError, match="not found"):
        bone_map.load_bone_map(tmp_path / "missing.json")
    with pytest.raises(bone_map.RetargetError, match="unknown bone-map preset"):
        bone_map.load_bone_map("unreal_nope")


def test_save_rejects_bad_map(tmp_path):
    with pytest.raises(bone_map.RetargetError):
        bone_map.save_bone_map(tmp_path / "x.json", {"pelvis": "a", "head": "a"})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name, expect", [
    ("mixamorig:LeftArm", ("upperarm", "L")), ("mixamorig1:RightUpLeg", ("thigh", "R")),
    ("DEF-upper_arm.L", ("upperarm", "L")), ("DEF-thigh.R.001", ("thigh", "R")),
    ("upperarm_l", ("upperarm", "L")), ("calf_r", ("shin", "R")), ("Bip01 L Thigh", ("thigh", "L")),
    ("Left_Forearm", ("forearm", "L")), ("shin.R", ("shin", "R")), ("clavicle_l", ("collar", "L")),
    ("Hips", ("pelvis", None)), ("neck_01", ("neck", None)), ("DEF-spine.003", ("spine", None)),
    ("MCH-thigh_ik.L", None), ("upper_arm_ik.L", None), ("thigh_twist_01_l", None),
    ("mixamorig:LeftHandIndex1", None), ("mixamorig:HeadTop_End", None), ("DEF-pelvis.L", None),
])
def test_classify_names(name, expect):
    c = bone_map._classify(name)
    assert (c[:2] if c else None) == expect
