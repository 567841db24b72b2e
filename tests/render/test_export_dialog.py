"""Issue 13 item 9: the panel's Export opens a file dialog and asks before replacing a file. Headless there is no
window: the dialog and the question are checked through stand-ins for the window manager and the popup."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

import remomask_addon  # noqa: E402
from remomask_addon.blender import motion_to_armature  # noqa: E402
from remomask_addon.ops import render as render_ops  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def registered(tmp_path):
    remomask_addon.register()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=8))
    bpy.context.view_layer.objects.active = arm
    s = scene.remomask_render
    s.output = str(tmp_path) + os.sep
    s.export_format = ".bvh"
    yield scene, arm, s
    bpy.ops.wm.read_homefile(use_empty=True)
    remomask_addon.unregister()


def test_needs_confirm_only_for_an_existing_file_not_agreed_to(tmp_path):
    f = tmp_path / "take.fbx"
    assert not render_ops.export_needs_confirm(str(f), False)
    f.write_bytes(b"x")
    assert render_ops.export_needs_confirm(str(f), False)
    assert not render_ops.export_needs_confirm(str(f), True)
    assert not render_ops.export_needs_confirm("", False)


def test_invoke_opens_the_file_dialog_at_the_output_folder(registered, tmp_path):
    scene, arm, s = registered
    calls = []
    op = SimpleNamespace(filepath="", report=lambda *a: calls.append(("report", a)))
    ctx = SimpleNamespace(scene=scene, active_object=arm,
                          window_manager=SimpleNamespace(fileselect_add=lambda o: calls.append(("dialog", o))))
    assert render_ops.REMOMASK_OT_export.invoke(op, ctx, None) == {"RUNNING_MODAL"}
    assert calls == [("dialog", op)]
    action = arm.animation_data.action.name
    assert op.filepath == os.path.join(str(tmp_path), bpy.path.clean_name(action) + ".bvh")
    assert os.listdir(tmp_path) == []          # opening the dialog writes nothing
    # no armature: one message, no dialog
    calls.clear()
    ctx.active_object = None
    assert render_ops.REMOMASK_OT_export.invoke(op, ctx, None) == {"CANCELLED"}
    assert [c[0] for c in calls] == ["report"] and "Select an armature" in calls[0][1][1]


def test_an_existing_file_is_asked_about_then_replaced(registered, tmp_path, monkeypatch):
    scene, arm, s = registered
    target = tmp_path / "chosen.bvh"
    target.write_text("keep me")
    asked = []
    monkeypatch.setattr(render_ops, "_interactive", lambda context: True)
    monkeypatch.setattr(render_ops, "_ask_replace", asked.append)
    # the dialog's choice is an existing file: Export asks and writes nothing yet
    assert bpy.ops.remomask.export(filepath=str(target)) == {"CANCELLED"}
    assert asked == [str(target)] and target.read_text() == "keep me"
    # the user agrees: the popup's operator exports over it
    assert bpy.ops.remomask.export_replace(filepath=str(target)) == {"FINISHED"}
    text = target.read_text()
    assert text.startswith("HIERARCHY") and "MOTION" in text and "Frames: 8" in text
    # a new name is written at once, without asking
    asked.clear()
    assert bpy.ops.remomask.export(filepath=str(tmp_path / "new.bvh")) == {"FINISHED"}
    assert asked == [] and (tmp_path / "new.bvh").read_text().startswith("HIERARCHY")


def test_without_a_window_an_existing_file_is_refused_with_a_message(registered, tmp_path):
    target = tmp_path / "chosen.bvh"
    target.write_text("keep me")
    with pytest.raises(RuntimeError, match="already exists"):
        bpy.ops.remomask.export(filepath=str(target))
    assert target.read_text() == "keep me"


def test_an_output_folder_that_cannot_be_made_is_a_message(registered, tmp_path):
    """Issue 13 item 9: the output folder's parent is a file: Render and Export say so, nothing is written."""
    scene, arm, s = registered
    (tmp_path / "afile").write_text("x")
    s.output = str(tmp_path / "afile" / "renders") + os.sep
    for op in (bpy.ops.remomask.export, bpy.ops.remomask.render):
        with pytest.raises(RuntimeError) as err:
            op()
        msg = str(err.value)
        assert "Cannot create the output folder" in msg and "renders" in msg, msg
        assert "Traceback" not in msg, msg
    assert sorted(os.listdir(tmp_path)) == ["afile"] and (tmp_path / "afile").read_text() == "x"
