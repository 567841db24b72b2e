"""The Describe and Library panels drawn against the add-on tests' recording layout (tests/addon/test_panels.py):
every property, operator and list they name exists, and they show what the properties hold."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from test_panels import Recorder

pytestmark = pytest.mark.blender


class _Layout(Recorder):
    def template_icon(self, icon_value=0, scale=1.0):
        self.log.append(("template_icon", icon_value))

    def _child(self, kind):
        self.log.append((kind,))
        return _Layout(self._bpy, self.log)


def _draw(bpy, panel_cls):
    log = []
    panel_cls.draw(SimpleNamespace(layout=_Layout(bpy, log)), bpy.context)
    return log


@pytest.mark.slow  # out of make test-fast (its 90 s budget); CI runs it
def test_describe_and_library_panels(fresh, bpy_mod, tmp_path):
    bpy, mod = bpy_mod, fresh
    scene = bpy.context.scene
    lib = scene.remomask_library
    log = _draw(bpy, bpy.types.REMOMASK_PT_describe)
    assert ("label", "Select an animated armature") in log and ("operator", "remomask.library_describe") in log

    motion = {k: v for k, v in mod.core.motion_io.motion_from_joints(
        np.tile(mod.core.smpl_rig.TEMPLATE_REST_JOINTS[:22], (10, 1, 1)), prompt="stand").items()}
    arm = mod.blender.motion_to_armature.key_motions(scene, [motion], name="stand").armature
    bpy.context.view_layer.objects.active = arm
    action = arm.animation_data.action.name
    lib.described_action = action
    for text, score in (("a person waves", 0.61), ("someone waves hello", 0.58)):
        c = lib.captions.add()
        c.caption, c.score = text, score
    log = _draw(bpy, bpy.types.REMOMASK_PT_describe)
    assert ("label", f"Action: {action}") in log
    assert ("label", "a person waves") in log and ("label", "0.610") in log
    lib.described_action = "another action"                     # captions of another action are not shown
    assert ("label", "a person waves") not in _draw(bpy, bpy.types.REMOMASK_PT_describe)

    log = _draw(bpy, bpy.types.REMOMASK_PT_library)
    assert ("operator", "remomask.library_index") in log and ("operator", "remomask.library_cancel") not in log
    assert ("template_list", "REMOMASK_UL_library_hits", "hits") in log
    assert {("operator", "remomask.library_apply"), ("operator", "remomask.library_preview"),
            ("operator", "remomask.library_search")} <= set(log)
    lib.indexing, lib.progress = True, 0.42
    lib.messages.add().caption = "broken.npz: not a readable motion"
    log = _draw(bpy, bpy.types.REMOMASK_PT_library)
    assert ("progress", pytest.approx(0.42), "Indexing 42%") in log and ("operator", "remomask.library_cancel") in log
    assert ("label", "broken.npz: not a readable motion") in log
    # a file saved while indexing says 'indexing' but nothing runs for it: Cancel clears it
    assert bpy.ops.remomask.library_cancel() == {'FINISHED'}
    assert not lib.indexing and lib.status == "Nothing is being indexed."

    png = tmp_path / "still.png"
    img = bpy.data.images.new("still", 8, 8)
    img.filepath_raw, img.file_format = str(png), 'PNG'
    img.save()
    bpy.data.images.remove(img)
    shown = bpy.data.images.load(str(png))
    lib.preview = str(png)
    log = _draw(bpy, bpy.types.REMOMASK_PT_library)
    assert ("template_icon", shown.preview.icon_id) in log   # the still's own preview (id 0 headless: no icons)
