"""Prompt timeline operators without a backend: a stub client records the requests, results are fed to the
session as the backend would send them. Generate Timeline sends the markers' parts and keys one action from the
first marker; Redo Part sends an in-paint of that part and its transitions, and the new version differs from the
previous one only on the frames the generator changed (bit-identical keys elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from remomask_addon.blender import anim_compat  # noqa: E402
from remomask_addon.blender import timeline as btl  # noqa: E402
from remomask_addon.ops import session  # noqa: E402
from remomask_addon.ui import preferences  # noqa: E402
from tests.addon_keying.conftest import make_motion, write_npz  # noqa: E402

pytestmark = pytest.mark.blender

T = 400   # 4 parts x 5 s at 20 fps


class StubClient:
    def __init__(self):
        self.sent = []

    def request(self, method, params):
        self.sent.append((method, params))
        return len(self.sent)


@pytest.fixture
def env(monkeypatch, tmp_path):
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 30
    scene.frame_start, scene.frame_end = 1, 250
    for name, f in (("a person walks forward", 1), ("a person jumps", 151), ("a person waves", 301),
                    ("a person sits down", 451), ("end", 601)):
        scene.timeline_markers.new(name, frame=f)
    stub = StubClient()
    monkeypatch.setattr(session, "get_client", lambda settings: stub)

    class _Settings:
        place_takes = "BESIDE"

        def problem(self):
            return None
    monkeypatch.setattr(preferences, "settings", lambda context=None: _Settings())
    yield scene, stub, tmp_path
    session._JOBS.clear()
    session.remove_timer()
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()


def keys(action):
    return {(fc.data_path, fc.array_index): np.array([tuple(k.co) for k in fc.keyframe_points])
            for fc in anim_compat.fcurves(action)}


def test_generate_then_redo_part_two(env):
    scene, stub, tmp = env
    assert bpy.ops.remomask.timeline_generate() == {"FINISHED"}
    method, params = stub.sent[-1]
    assert method == "generate"
    assert params["timeline"] == [{"prompt": p, "seconds": 5.0} for p in
                                  ("a person walks forward", "a person jumps", "a person waves", "a person sits down")]
    base = make_motion(T=T, seed=1)
    path = str(write_npz(tmp / "timeline.npz", base))
    session._finish_result(1, {"motions": [{"path": path, "prompt": "timeline"}]})
    assert scene.remomask.status_is_error is False, scene.remomask.status
    arm = bpy.context.view_layer.objects.active
    action = arm.animation_data.action
    rec = btl.record_of(action)
    assert rec["start_frame"] == 1 and rec["seconds"] == [5.0] * 4 and rec["path"] == path
    # one action of 20 s at the scene's 30 fps, from the first marker
    assert tuple(action.frame_range) == (1.0, 1.0 + (T - 1) * 1.5 // 1)
    before = keys(action)

    # the user renames part 2's marker and redoes it, with the current frame inside part 2
    next(m for m in scene.timeline_markers if m.frame == 151).name = "a person kicks"
    scene.frame_set(200)
    assert bpy.ops.remomask.timeline_redo_part() == {"FINISHED"}
    method, params = stub.sent[-1]
    assert method == "edit" and params["task"] == "inpaint" and params["source"] == path
    assert params["frames"] == [92, 208] and params["prompt"] == "a person kicks" and params["place"] == "world"
    # the backend's edit: the same motion, changed on frames [84, 216)
    edited = dict(base)
    poses = base["poses"].copy()
    poses[84:216] += 0.2
    edited["poses"] = poses
    epath = str(write_npz(tmp / "edited.npz", edited))
    n_actions = len(bpy.data.actions)
    session._finish_result(2, {"motions": [{"path": epath, "prompt": "a person kicks", "changed": [[84, 216]]}]})
    assert scene.remomask.status_is_error is False, scene.remomask.status
    version = arm.animation_data.action
    assert version != action and action.name in bpy.data.actions and action.use_fake_user
    assert len(bpy.data.actions) == n_actions + 1                          # the temporary keyed edit is gone
    assert keys(action).keys() == before.keys()
    for k, v in keys(action).items():
        assert np.array_equal(v, before[k])                                 # the previous version untouched
    first, last = 1 + 126, 1 + 323                                         # 84 * 1.5, ceil(215 * 1.5)
    changed_any = False
    for k, v in keys(version).items():
        f = v[:, 0]
        out = (f < first) | (f > last)
        assert np.array_equal(v[out], before[k][out]), k                   # bit-identical outside the change
        changed_any |= not np.array_equal(v[~out, 1], before[k][~out, 1])
    assert changed_any
    rec2 = btl.record_of(version)
    assert rec2["prompts"][1] == "a person kicks" and rec2["path"] == epath
    assert rec2["prompts"][0] == "a person walks forward"


def test_errors(env):
    scene, stub, _ = env
    scene.timeline_markers.clear()
    with pytest.raises(RuntimeError, match="Add timeline markers"):
        bpy.ops.remomask.timeline_generate()
    with pytest.raises(RuntimeError, match="prompt timeline"):
        bpy.ops.remomask.timeline_redo_part()
    scene.timeline_markers.new("walks", frame=1)
    scene.timeline_markers.new("runs", frame=10)
    with pytest.raises(RuntimeError, match="at least 1 s"):
        bpy.ops.remomask.timeline_generate()
    assert stub.sent == []


class _Layout:
    def __init__(self, log):
        self.log = log

    def column(self, **kw):
        return self

    def label(self, text="", **kw):
        self.log.append(("label", text))

    def operator(self, idname, **kw):
        mod, _, op = idname.partition(".")
        assert op in dir(getattr(bpy.ops, mod)), idname
        self.log.append(("operator", idname))
        return type("Op", (), {})()


def test_panel_lists_the_parts(env):
    from remomask_addon.ui import rootline_panel

    scene, _, _ = env
    log = []
    panel = type("P", (), {"layout": _Layout(log)})()
    rootline_panel.REMOMASK_PT_timeline.draw(panel, bpy.context)
    labels = [t for k, t in log if k == "label"]
    assert labels[:2] == ["1: a person walks forward  (5.0 s)", "151: a person jumps  (5.0 s)"]
    assert "4 parts, 20.0 s" in labels
    assert ("operator", "remomask.timeline_generate") in log
    assert ("operator", "remomask.timeline_redo_part") not in log          # no timeline action selected
    scene.timeline_markers.clear()
    log.clear()
    rootline_panel.REMOMASK_PT_timeline.draw(panel, bpy.context)
    assert any("Add timeline markers" in t for k, t in log if k == "label")
