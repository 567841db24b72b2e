"""Facts the add-on keeps a copy of, because it cannot import the backend (it runs in Blender's Python, the
backend in its own environment): each copy must equal its source."""

import ast
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def test_smpl_skeleton_copies():
    from backend.motion import skeleton as hml
    from remomask_addon.core import smpl_rig
    from smpl_fitting import skeleton as sk

    assert tuple(smpl_rig.SMPL_JOINT_NAMES) == tuple(sk.SMPL_JOINT_NAMES)
    assert tuple(smpl_rig.SMPL_PARENTS) == tuple(sk.SMPL_PARENTS)
    assert tuple(hml.JOINT_NAMES) == tuple(sk.SMPL_JOINT_NAMES[:22])
    assert tuple(hml.PARENTS) == tuple(sk.SMPL_PARENTS[:22])
    # the add-on's template is the fitting's, lifted onto the floor (they were up to 3.5 cm apart)
    np.testing.assert_array_equal(smpl_rig.TEMPLATE_REST_JOINTS_CENTRED, sk.TEMPLATE_REST_JOINTS)
    lifted = smpl_rig.TEMPLATE_REST_JOINTS - sk.TEMPLATE_REST_JOINTS
    np.testing.assert_allclose(lifted, np.tile([0.0, smpl_rig.TEMPLATE_FLOOR_OFFSET, 0.0], (24, 1)), atol=1e-12)
    feet = smpl_rig.TEMPLATE_REST_JOINTS[[10, 11], 1]
    assert np.allclose(feet, 0.01) and smpl_rig.TEMPLATE_REST_JOINTS[:, 1].min() == pytest.approx(0.01)


def test_motion_file_format_version_copy_and_refusal(tmp_path):
    from backend.motion import motion_file
    from remomask_addon.core import motion_io

    assert motion_io.FORMAT_VERSION == motion_file.FORMAT_VERSION
    p = motion_file.save_motion(tmp_path / "m.npz", joints=np.zeros((4, 22, 3), np.float32) + [0, 1, 0])
    assert motion_io.load_motion(p)["num_frames"] == 4
    newer = dict(np.load(p))
    newer["format_version"] = np.array(motion_file.FORMAT_VERSION + 1)
    np.savez(tmp_path / "newer.npz", **newer)
    with pytest.raises(motion_io.MotionFileError, match="newer than this add-on reads"):
        motion_io.load_motion(tmp_path / "newer.npz")
    with pytest.raises(motion_file.MotionFileError, match="newer than this reader"):
        motion_file.load_motion(tmp_path / "newer.npz")


def _props_constants() -> dict:
    """The add-on's copies of the protocol's limits (core/requests.py's module-level numeric constants, which
    the panel's properties use), read without importing."""
    tree = ast.parse((REPO / "remomask_addon" / "core" / "requests.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.value
    return out


def test_protocol_limits_copies():
    from backend.serving import protocol as P

    c = _props_constants()
    assert (c["MIN_SECONDS"], c["MAX_SECONDS"]) == (P.MIN_SECONDS, P.MAX_SECONDS)
    assert (c["MAX_SAMPLES"], c["MAX_TIME_STEPS"]) == (P.MAX_SAMPLES, P.MAX_TIME_STEPS)
    assert c["MIN_TEMPERATURE"] > 0  # the protocol refuses temperature <= 0
    P.validate_generate({"prompt": "x", "temperature": c["MIN_TEMPERATURE"]})
    with pytest.raises(P.ProtocolError):
        P.validate_generate({"prompt": "x", "temperature": 0.0})


def test_panel_properties_stay_inside_the_protocol_limits():
    """Every value the panel lets a user set is one the server accepts (the panel allowed temperature 0)."""
    bpy = pytest.importorskip("bpy")  # noqa: F841 - props.py defines Blender properties
    from remomask_addon.ui import props

    from backend.serving import protocol as P

    ann = props.REMOMASK_PG_scene.__annotations__
    # annotations are strings (from __future__ import annotations): evaluate them as Blender would
    kw = {name: eval(ann[name], vars(props)).keywords  # noqa: S307 - the project's own source
          for name in ("temperature", "samples", "time_steps", "topk", "cond_scale")}
    assert kw["temperature"]["min"] > 0
    assert kw["samples"]["max"] == P.MAX_SAMPLES and kw["time_steps"]["max"] == P.MAX_TIME_STEPS
    assert 0 <= kw["topk"]["min"] and kw["topk"]["max"] <= 1 and kw["cond_scale"]["min"] >= 0


def test_error_codes_the_addon_handles_exist():
    """The add-on's client invents one code (the backend died); every other code it compares against is the
    protocol's."""
    from backend.errors import ERROR_CODES
    from remomask_addon.core import client

    assert client.DEAD not in ERROR_CODES
    src = (REPO / "remomask_addon" / "ops" / "session.py").read_text()
    compared = {n.comparators[0].value for n in ast.walk(ast.parse(src))
                if isinstance(n, ast.Compare) and isinstance(getattr(n.left, "id", None), str)
                and n.left.id == "code" and isinstance(n.comparators[0], ast.Constant)}
    assert compared and compared <= set(ERROR_CODES) | {client.DEAD}


def test_request_objects_send_what_the_protocol_accepts():
    """The add-on's request objects (core/requests.py) against the backend's own validator: every key known, the
    panel's defaults and extremes valid, "null" meaning the model's own setting."""
    from backend.serving import protocol as P
    from remomask_addon.core.requests import MAX_SECONDS, GenerateRequest, HelloRequest

    full = GenerateRequest(prompt="a person walks", length_s=MAX_SECONDS, seed=2**31 - 1, samples=P.MAX_SAMPLES,
                           cond_scale=4.0, time_steps=P.MAX_TIME_STEPS, temperature=1.0, topk=0.9,
                           use_retrieval=False, fit=True, ground_feet=False, out_dir="/tmp/motions")
    params = full.to_params()
    assert full.method == "generate" and set(params) <= P.GENERATE_KEYS
    got = P.validate_generate(params)
    assert got.prompts == ["a person walks"] and got.length_s == MAX_SECONDS and got.ground_feet is False
    assert got.out_dir == "/tmp/motions" and got.samples == P.MAX_SAMPLES
    auto = GenerateRequest(prompt="a person waves").to_params()
    assert "out_dir" not in auto and auto["length_s"] is None and auto["cond_scale"] is None
    got = P.validate_generate(auto)
    assert got.length_s is None and got.cond_scale is None and got.time_steps is None
    assert HelloRequest().method == "hello" and HelloRequest().to_params() == {}
    assert HelloRequest(token="t").to_params() == {"token": "t"}
