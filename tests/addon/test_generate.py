"""Generate / cancel / batch / import operators against the fake backend subprocess, and the fault cases:
bad inputs and a backend that dies mid-generation -> one clear message, scene unchanged."""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from addon_helpers import poll_until, scene_snapshot

from backend.serving.protocol import GENERATION_STAGES, PROGRESS_STAGES

pytestmark = pytest.mark.blender


def _stub_keying(bpy, calls):
    """Minimal keying stand-in (used until the real keying module is on this branch): makes an armature and
    an action so that the operators' glue (one undo step, history, captions, rollback) is exercised."""

    def load_motion_npz(path):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}

    def build_smpl_armature(collection, rest_joints, name):
        arm = bpy.data.armatures.new(name)
        obj = bpy.data.objects.new(name, arm)
        collection.objects.link(obj)
        calls.append(("build", None if rest_joints is None else np.asarray(rest_joints).shape))
        return obj

    def key_motion(armature, motion, action_name=None, scene_fps=None, start_frame=1):
        act = bpy.data.actions.new(action_name or "motion")
        calls.append(("key", armature.name, motion["poses"].shape, scene_fps))
        return act

    def lay_out_nla(armature, actions, blend_frames=5):
        calls.append(("nla", armature.name, [a.name for a in actions], blend_frames))

    def build_body(armature, motion=None):
        mesh = bpy.data.meshes.new("body")
        obj = bpy.data.objects.new("body", mesh)
        armature.users_collection[0].objects.link(obj)
        calls.append(("body", armature.name))
        return obj

    return SimpleNamespace(build_smpl_armature=build_smpl_armature, key_motion=key_motion,
                           load_motion_npz=load_motion_npz, load_joints_npy=None, lay_out_nla=lay_out_nla,
                           build_body=build_body)


@pytest.fixture
def stub_keying(fresh, bpy_mod, monkeypatch):
    calls = []
    ns = _stub_keying(bpy_mod, calls)
    monkeypatch.setattr(fresh.blender.motion_to_armature, "_keying", lambda: ns)
    return calls


def test_generate_polls_progress_then_keys_result(fresh, bpy_mod, stub_keying, monkeypatch):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    sp.prompt, sp.auto_length, sp.length_s, sp.seed, sp.samples = "a person walks forward", False, 2.0, 11, 1
    undo = []
    monkeypatch.setattr(fresh.ops.session, "_undo_push", lambda msg: undo.append((msg, scene_snapshot(bpy))))
    before = scene_snapshot(bpy)
    t0 = time.monotonic()
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    # returned at once: nothing keyed yet, the job is running
    assert sp.running and scene_snapshot(bpy) == before
    stages = set()

    def done():
        if sp.running:
            stages.add((sp.stage, round(sp.progress, 2)))
        return not sp.running

    assert poll_until(fresh, done, 20), sp.status
    assert not sp.status_is_error, sp.status
    seen = {s for s, _ in stages}  # the stand-in reports the protocol's real stage names, one per step
    assert seen & set(GENERATION_STAGES) and seen <= set(PROGRESS_STAGES) | {"starting"}, seen  # + the add-on's own
    assert [c[0] for c in stub_keying] == ["build", "body", "key"]
    assert stub_keying[0][1] == (24, 3)                   # rest joints from the motion file
    assert stub_keying[2][2] == (40, 24, 3)               # 2 s at 20 fps
    after = scene_snapshot(bpy)
    assert after[0] == before[0] + 2 and after[1] == before[1] + 1
    assert sp.progress == pytest.approx(1.0)
    assert [c.text for c in sp.retrieved] == ["a person walks", "a person walks slowly", "a person swings the arms"]
    h = sp.history[-1]
    assert h.prompt == "a person walks forward" and h.seed == 11 and h.length_s == pytest.approx(2.0)
    assert os.path.isfile(h.path) and h.action.startswith("a person walks forward")  # named after the prompt
    assert "Generated 1 motion" in sp.status
    # one undo step, pushed after the change
    assert undo == [("ReMoMask: generate motion", after)]
    assert time.monotonic() - t0 < 15


def test_backend_killed_mid_generation_then_restarts(fresh, bpy_mod, stub_keying, monkeypatch):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    sp.prompt, sp.auto_length = "a person jumps", True
    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.3")
    before = scene_snapshot(bpy)
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    assert poll_until(fresh, lambda: sp.stage in GENERATION_STAGES, 10)
    client = fresh.ops.session._CLIENT
    first_pid = client.pid
    client._proc.kill()
    assert poll_until(fresh, lambda: not sp.running, 10)
    assert sp.status_is_error
    assert "Generation failed (backend_died)" in sp.status and "generator process exited" in sp.status
    assert scene_snapshot(bpy) == before and stub_keying == [] and len(sp.history) == 0
    # the next generate starts a new backend and works
    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.01")
    assert bpy.ops.remomask.generate(synchronous=True, timeout=20) == {'FINISHED'}
    assert fresh.ops.session._CLIENT.pid != first_pid and fresh.ops.session._CLIENT.starts == 2
    assert not sp.status_is_error and len(sp.history) == 1


def test_backend_crash_reported_synchronously(fresh, bpy_mod, stub_keying, monkeypatch):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    monkeypatch.setenv("FAKE_BACKEND_EXIT_ON_GENERATE", "1")
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="simulated CUDA out of memory"):
        bpy.ops.remomask.generate(synchronous=True, timeout=20)
    assert scene_snapshot(bpy) == before and not sp.running


@pytest.mark.parametrize("field,value,message", [
    ("prompt", "   ", "Type a prompt first"),
    ("length_s", 0.0, "Length must be between 0.2 and 9.8 s"),
    ("length_s", 10000.0, "not 10000 s"),
    ("models_dir", "/nonexistent/models", "Model folder not found: /nonexistent/models"),
    ("backend_python", "/nonexistent/bin/python", "Backend Python not found: /nonexistent/bin/python"),
    ("remote", "localhost", "Remote address must be host:port"),
])
def test_bad_inputs_clear_message_scene_unchanged(fresh, bpy_mod, field, value, message):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    sp.auto_length = False
    sp.length_s = 3.0
    target = sp if field in ("prompt", "length_s") else bpy.context.preferences.addons[fresh.__name__].preferences
    setattr(target, field, value)
    if field == "length_s":
        assert sp.length_s == value          # not silently clamped
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError) as info:
        bpy.ops.remomask.generate(synchronous=True, timeout=10)
    text = str(info.value)
    assert message in text
    assert "Traceback" not in text and text.count("Error:") <= 1
    assert scene_snapshot(bpy) == before and not sp.running
    assert fresh.ops.session._CLIENT is None or not fresh.ops.session._CLIENT.alive


def test_selected_target_needs_an_armature(fresh, bpy_mod):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    sp.target = 'SELECTED'
    with pytest.raises(RuntimeError, match="active object is not an armature"):
        bpy.ops.remomask.generate()


def test_cancel_leaves_scene_unchanged(fresh, bpy_mod, stub_keying, monkeypatch):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.2")
    before = scene_snapshot(bpy)
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    assert poll_until(fresh, lambda: sp.stage in GENERATION_STAGES, 10)
    assert bpy.ops.remomask.cancel() == {'FINISHED'}
    assert not sp.running
    assert poll_until(fresh, lambda: not fresh.ops.session.busy(), 10)
    assert sp.status == "Cancelled."
    assert scene_snapshot(bpy) == before and stub_keying == []


def test_check_and_release_backend(fresh, bpy_mod):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=20) == {'FINISHED'}
    assert "Backend fake-0.1 (protocol 1) on cpu" in sp.status
    c = fresh.ops.session._CLIENT
    proc = c._proc
    assert c.command()[-2:] == ["--device", "cpu"]
    assert bpy.ops.remomask.release_backend() == {'FINISHED'}
    assert proc.poll() is not None and fresh.ops.session._CLIENT is None


def test_batch_lays_out_nla(fresh, bpy_mod, stub_keying):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    txt = bpy.data.texts.new("prompts")
    txt.write("a person walks | 1.5\n\n# comment\na person waves\na person jumps | 2\n")
    sp.batch_text = "prompts"
    sp.auto_length = True
    assert bpy.ops.remomask.batch(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    builds = [c for c in stub_keying if c[0] == "build"]
    keys = [c for c in stub_keying if c[0] == "key"]
    nla = [c for c in stub_keying if c[0] == "nla"]
    assert len(builds) == 1 and len(keys) == 3 and len(nla) == 1
    assert [k[2][0] for k in keys] == [30, 60, 40]        # 1.5 s, automatic (fake: 3 s), 2 s
    assert len(nla[0][2]) == 3 and nla[0][3] == 5
    assert [h.prompt for h in sp.history] == ["a person walks", "a person waves", "a person jumps"]


def test_batch_bad_line_is_refused(fresh, bpy_mod):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    txt = bpy.data.texts.new("bad")
    txt.write("a person walks | 1.5\na person runs | 10000\n")
    sp.batch_text = "bad"
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="line 2: Length must be between"):
        bpy.ops.remomask.batch(synchronous=True)
    assert scene_snapshot(bpy) == before and fresh.ops.session._CLIENT is None


def test_guidance_is_left_to_the_model_unless_set(fresh, bpy_mod):
    """Auto guidance (the default) sends cond_scale null, so the backend uses the model's own scale (2 for
    the starter, 4 for the official release); turned off, the panel's value is sent."""
    sp = bpy_mod.context.scene.remomask
    assert sp.auto_guidance
    sp.cond_scale = 6.5
    try:
        assert fresh.ops.generate.generate_request(sp, "a person walks", None).to_params()["cond_scale"] is None
        sp.auto_guidance = False
        assert fresh.ops.generate.generate_request(sp, "a person walks", None).to_params()["cond_scale"] == pytest.approx(6.5)
    finally:
        sp.auto_guidance, sp.cond_scale = True, 4.0


def test_plant_feet_is_sent(fresh, bpy_mod, stub_keying, monkeypatch, tmp_path):
    """The panel's "Plant feet" (on by default) goes to the backend as generate's ground_feet."""
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_BACKEND_LOG", str(log))
    sp = bpy_mod.context.scene.remomask
    assert sp.ground_feet is True
    assert sp.bl_rna.properties["ground_feet"].name == "Plant feet"
    sp.prompt, sp.auto_length, sp.length_s = "a person walks forward", False, 1.0
    try:
        for value in (True, False):
            sp.ground_feet = value
            assert fresh.ops.generate.generate_request(sp, "a person walks", None).to_params()["ground_feet"] is value
            assert bpy_mod.ops.remomask.generate() == {'FINISHED'}
            assert poll_until(fresh, lambda: not sp.running, 20), sp.status
            assert not sp.status_is_error, sp.status
    finally:
        sp.ground_feet = True
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["params"]["ground_feet"] for r in sent if r.get("method") == "generate"] == [True, False]


def test_prompt_as_typed_is_sent_only_when_on(fresh, bpy_mod, stub_keying, monkeypatch, tmp_path):
    """The panel's "Prompt as typed" (off by default) goes to the backend as generate's literal, and only when on
    (a backend from before the field refuses unknown keys)."""
    log = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_BACKEND_LOG", str(log))
    sp = bpy_mod.context.scene.remomask
    assert sp.prompt_as_typed is False
    sp.prompt, sp.auto_length, sp.length_s = "a person walks forward", False, 1.0
    try:
        for value in (False, True):
            sp.prompt_as_typed = value
            assert bpy_mod.ops.remomask.generate() == {'FINISHED'}
            assert poll_until(fresh, lambda: not sp.running, 20), sp.status
            assert not sp.status_is_error, sp.status
    finally:
        sp.prompt_as_typed = False
    sent = [r["params"] for r in map(json.loads, log.read_text().splitlines()) if r.get("method") == "generate"]
    assert ["literal" in p for p in sent] == [False, True] and sent[1]["literal"] is True


def test_parse_batch(fresh):
    parse = fresh.core.requests.parse_batch
    assert parse("walk\n  run | 2.5 \n# x\n\n") == [("walk", None), ("run", 2.5)]
    with pytest.raises(ValueError, match="line 1: 'abc' is not a number"):
        parse("walk | abc")
    with pytest.raises(ValueError, match="line 2: empty prompt"):
        parse("walk\n | 3")


def test_setup_backend_refused_offline(fresh, bpy_mod):
    bpy = bpy_mod
    if bpy.app.online_access:                 # False by default in the bpy module (and until a user allows it)
        pytest.skip("online access is on in this Blender")
    with pytest.raises(RuntimeError, match="online access is off"):
        bpy.ops.remomask.setup_backend(synchronous=True)
    user = fresh.ui.preferences.user_dir(create=True)
    assert not (user / "venv").exists()


def test_setup_runs_steps_and_logs(fresh, tmp_path):
    bs = fresh.core.backend_setup
    ok = [("step one", [sys.executable, "-c", "print('hello from step one')"]),
          ("step two", [sys.executable, "-c", "import sys; sys.exit(0)"])]
    st = bs.start(tmp_path, "/unused", steps=ok, synchronous=True)
    assert st.done and not st.failed and st.fraction == 1.0
    log = (tmp_path / "setup.log").read_text()
    assert "hello from step one" in log and "=== " in log
    bad = [("failing step", [sys.executable, "-c", "import sys; print('boom'); sys.exit(4)"])]
    st = bs.start(tmp_path, "/unused", steps=bad, synchronous=True)
    assert st.failed and "failing step failed (exit 4)" in st.message
    steps = bs.setup_steps(tmp_path / "venv", "/src/remomask")
    assert steps[0][1][1:3] == ["-m", "venv"]
    assert steps[-2][1][-2:] == ["-e", "/src/remomask[smpl,reader]"]


def test_import_motion_bad_file(fresh, bpy_mod, tmp_path, stub_keying):
    bpy = bpy_mod
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="No such motion file"):
        bpy.ops.remomask.import_motion(filepath=str(tmp_path / "missing.npz"))
    bad = tmp_path / "motion.txt"
    bad.write_text("x")
    with pytest.raises(RuntimeError, match="Unsupported file type '.txt'"):
        bpy.ops.remomask.import_motion(filepath=str(bad))
    assert scene_snapshot(bpy) == before


def test_keying_failure_rolls_back(fresh, bpy_mod, monkeypatch):
    """A motion that cannot be keyed: the armature and body made for it are removed again."""
    bpy = bpy_mod
    calls = []
    ns = _stub_keying(bpy, calls)

    def bad_key(armature, motion, **kw):
        bpy.data.actions.new("half-made")
        raise ValueError("poses has the wrong shape")

    ns.key_motion = bad_key
    monkeypatch.setattr(fresh.blender.motion_to_armature, "_keying", lambda: ns)
    sp = bpy.context.scene.remomask
    before = scene_snapshot(bpy)
    with pytest.raises(RuntimeError, match="Could not apply the motion: poses has the wrong shape"):
        bpy.ops.remomask.generate(synchronous=True, timeout=20)
    assert [c[0] for c in calls] == ["build", "body"]
    assert scene_snapshot(bpy) == before and len(sp.history) == 0


def test_opening_a_file_drops_running_jobs(fresh, bpy_mod, stub_keying, monkeypatch):
    bpy = bpy_mod
    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.2")
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    assert fresh.ops.session.busy()
    h = fresh.ops.session._on_load_pre
    assert h in bpy.app.handlers.load_pre
    bpy.ops.wm.read_homefile(use_empty=True)
    assert not fresh.ops.session.busy()
    time.sleep(0.5)
    fresh.ops.session.poll_once()
    assert stub_keying == [] and len(bpy.data.objects) == 0


def test_modal_esc_cancels_and_timer_polls(fresh, bpy_mod, stub_keying, monkeypatch):
    """The modal part of Generate (never run by Blender headless), called with stand-in events."""
    bpy = bpy_mod
    op_cls = bpy.types.REMOMASK_OT_generate
    sp = bpy.context.scene.remomask
    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.2")

    def fake_op(rid):
        ns = SimpleNamespace(_rid=rid, _timer_handle=None)
        ns._end = lambda ctx: op_cls._end(ns, ctx)
        return ns

    before = scene_snapshot(bpy)
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    rid = next(iter(fresh.ops.session._JOBS))
    op = fake_op(rid)
    assert op_cls.modal(op, bpy.context, SimpleNamespace(type='MOUSEMOVE', value='NOTHING')) == {'PASS_THROUGH'}
    assert op_cls.modal(op, bpy.context, SimpleNamespace(type='ESC', value='PRESS')) == {'CANCELLED'}
    assert not sp.running
    assert poll_until(fresh, lambda: not fresh.ops.session.busy(), 10)
    assert sp.status == "Cancelled." and scene_snapshot(bpy) == before and stub_keying == []

    monkeypatch.setenv("FAKE_BACKEND_STEP_S", "0.01")
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    op = fake_op(next(iter(fresh.ops.session._JOBS)))
    deadline = time.monotonic() + 20
    res = None
    while time.monotonic() < deadline:
        res = op_cls.modal(op, bpy.context, SimpleNamespace(type='TIMER', value='NOTHING'))
        if res == {'FINISHED'}:
            break
        time.sleep(0.02)
    assert res == {'FINISHED'} and len(sp.history) == 1 and not sp.status_is_error


def test_batch_partly_failed_keeps_what_worked(fresh, bpy_mod, stub_keying, monkeypatch):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    monkeypatch.setenv("FAKE_BACKEND_FAIL_WORD", "cartwheel")
    txt = bpy.data.texts.new("mixed")
    txt.write("a person walks | 1.0\na person does a cartwheel | 2.0\na person waves | 1.0\n")
    sp.batch_text = "mixed"
    assert bpy.ops.remomask.batch(synchronous=True, timeout=30) == {'FINISHED'}
    assert len([c for c in stub_keying if c[0] == "key"]) == 2
    assert "Batch: 2 motion(s)" in sp.status and "cannot make 'cartwheel'" in sp.status
    assert [h.prompt for h in sp.history] == ["a person walks", "a person waves"]


def test_backend_check_status_is_one_readable_line(fresh):
    """hello's models can carry a whole provenance/config (12,000 characters once): the panel shows a summary."""
    big = {"kind": "starter", "path": "/x/backend/starter", "provenance": "p" * 12000,
           "vq": {"width": 512, "depth": 3}, "sampling": {"cond_scale": 2.0}}
    assert fresh.ops.session.models_summary(big) == "starter (starter)"
    assert fresh.ops.session.models_summary({"kind": "official", "path": "/m/release/", "length_estimator": None,
                                           "retrieval": "retrieval unavailable: no Part-TMR"}) == \
        "official (release), no retrieval, no length estimator"
    assert fresh.ops.session.models_summary(None) == "none"


def test_result_warnings_are_shown_under_the_result(fresh, bpy_mod):
    """A prompt the model does not know comes back with a warning (the server's coverage notes): the panel shows
    it under the result, and the next result replaces it."""
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    sp.prompt, sp.auto_length = "a person moonwalks", True
    assert bpy.ops.remomask.generate(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    assert [n.text for n in sp.notes] == ["'a person moonwalks': the model never saw 'moonwalks' in training, so it "
                                          "may show another action or stand still"]
    from test_panels import draw

    labels = [e[1] for e in draw(bpy, bpy.types.REMOMASK_PT_generate) if e[0] == "label"]
    assert any("'moonwalks'" in text for text in labels), labels
    sp.prompt = "a person walks"
    assert bpy.ops.remomask.generate(synchronous=True, timeout=30) == {'FINISHED'}, sp.status
    assert len(sp.notes) == 0
