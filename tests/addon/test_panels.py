"""Panels are never drawn headless: draw() runs against a stand-in layout that records every call and checks
that each property and operator it names exists."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from addon_helpers import PKG

pytestmark = pytest.mark.blender


class Recorder:
    """Stand-in for bpy.types.UILayout: records calls, validates property/operator names."""

    def __init__(self, bpy, log):
        self._bpy = bpy
        self.log = log
        self.enabled = True
        self.active = True
        self.alert = False

    def _child(self, kind):
        self.log.append((kind,))
        return Recorder(self._bpy, self.log)

    def row(self, **kw):
        return self._child("row")

    def column(self, **kw):
        return self._child("column")

    def box(self, **kw):
        return self._child("box")

    def split(self, **kw):
        return self._child("split")

    def label(self, text="", **kw):
        self.log.append(("label", text))

    def separator(self, **kw):
        self.log.append(("separator",))

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def prop_search(self, data, name, search_data, search_name, **kw):
        assert name in data.bl_rna.properties
        assert hasattr(search_data, search_name)
        self.log.append(("prop_search", name))

    def operator(self, idname, **kw):
        mod, _, op = idname.partition(".")
        assert op in dir(getattr(self._bpy.ops, mod)), f"no operator {idname}"
        self.log.append(("operator", idname))
        return SimpleNamespace()

    def progress(self, factor=0.0, type='BAR', text=""):
        assert 0.0 <= factor <= 1.0
        self.log.append(("progress", factor, text))

    def template_list(self, list_type, list_id, data, propname, active_data, active_propname, **kw):
        assert hasattr(self._bpy.types, list_type), f"UIList {list_type} not registered"
        assert propname in data.bl_rna.properties and active_propname in active_data.bl_rna.properties
        self.log.append(("template_list", list_type, propname))


def draw(bpy, panel_cls):
    log = []
    panel_cls.draw(SimpleNamespace(layout=Recorder(bpy, log)), bpy.context)
    return log


def test_generate_panel_idle_and_running(addon, bpy_mod, fresh):
    bpy = bpy_mod
    pt = bpy.types.REMOMASK_PT_generate
    assert pt.bl_space_type == 'VIEW_3D' and pt.bl_region_type == 'UI' and pt.bl_category == "ReMoMask"
    log = draw(bpy, pt)
    props = {e[1] for e in log if e[0] == "prop"}
    assert {"prompt", "auto_length", "length_s", "seed", "samples", "auto_guidance", "cond_scale",
            "use_retrieval", "prompt_as_typed", "ground_feet", "target"} <= props
    ops = [e[1] for e in log if e[0] == "operator"]
    assert "remomask.generate" in ops and "remomask.new_seed" in ops and "remomask.cancel" not in ops
    assert not [e for e in log if e[0] == "progress"]

    sp = bpy.context.scene.remomask
    sp.running, sp.progress, sp.stage = True, 0.42, "mask_ts"
    sp.retrieved.add().text = "a man walks in a circle"
    log = draw(bpy, pt)
    ops = [e[1] for e in log if e[0] == "operator"]
    assert "remomask.cancel" in ops and "remomask.generate" not in ops
    prog = [e for e in log if e[0] == "progress"]
    assert prog and prog[0][1] == pytest.approx(0.42) and "mask_ts 42%" in prog[0][2]
    assert ("label", "a man walks in a circle") in log
    assert ("prop", "with_mannequin") in log and ("prop", "bone_map") not in log
    sp.target, sp.bone_map = 'SELECTED', 'FILE'
    log = draw(bpy, pt)
    assert ("prop", "bone_map") in log and ("prop", "bone_map_file") in log and ("prop", "with_mannequin") not in log


def test_history_import_backend_panels(addon, bpy_mod, fresh):
    bpy = bpy_mod
    sp = bpy.context.scene.remomask
    mod = sys.modules[PKG]
    mod.ui.history.add(bpy.context.scene, {"prompt": "a person waves", "seed": 3, "frames": 60, "fps": 20,
                                        "path": "/nonexistent/m.npz", "retrieved": ["waves hello"]})
    assert sp.history[0].length_s == pytest.approx(3.0) and sp.history_index == 0
    log = draw(bpy, bpy.types.REMOMASK_PT_history)
    assert ("template_list", "REMOMASK_UL_history", "history") in log
    assert ("operator", "remomask.history_apply") in log
    assert ("label", "seed 3, sample 0, 3.00 s") in log
    log = draw(bpy, bpy.types.REMOMASK_PT_import_batch)
    assert ("operator", "remomask.import_motion") in log and ("operator", "remomask.batch") in log
    assert ("prop_search", "batch_text") in log
    log = draw(bpy, bpy.types.REMOMASK_PT_backend)
    assert {("operator", "remomask.check_backend"), ("operator", "remomask.release_backend"),
            ("operator", "remomask.setup_backend")} <= set(log)
    log = draw(bpy, bpy.types.REMOMASK_PT_options)
    assert {("prop", "time_steps"), ("prop", "temperature"), ("prop", "topk")} <= set(log)


def test_preferences_draw(addon, bpy_mod, fresh):
    bpy = bpy_mod
    prefs = bpy.context.preferences.addons[PKG].preferences
    log = []
    type(prefs).draw(SimpleNamespace(layout=Recorder(bpy, log), bl_rna=prefs.bl_rna), bpy.context)
    names = {e[1] for e in log if e[0] == "prop"}
    assert names == {"backend_python", "project_dir", "models_dir", "device", "remote", "token", "place_takes",
                     "torch_choice", "torch_custom"}
    ops = {e[1] for e in log if e[0] == "operator"}
    assert ops == {"remomask.setup_backend", "remomask.check_backend", "remomask.release_backend"}
