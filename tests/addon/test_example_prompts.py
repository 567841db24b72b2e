"""The Generate panel's example prompts: the examples of the backend's last hello (models.examples) become a
drop-down that puts the chosen one into the prompt field; nothing is shown when the backend gave none, and
examples from a backend with other settings are forgotten."""

from __future__ import annotations

import json
import sys

import pytest

from addon_helpers import PKG, scene_snapshot
from test_panels import Recorder

pytestmark = pytest.mark.blender

EXAMPLES = [
    {"family": "walk", "label": "Walk", "prompt": "a person walks forward slowly"},
    {"family": "walk", "label": "Walk", "prompt": "someone walks forward quickly while turning left"},
    {"family": "dance_salsa", "label": "Salsa dance", "prompt": "a person dances salsa"},
    {"family": "push_ups", "label": "Push-ups", "prompt": "a person does push-ups"},
]


@pytest.fixture(autouse=True)
def _forget_examples():
    """No example outlives a test (other panel tests draw with a layout stand-in that has no menus)."""
    yield
    for name in (PKG + ".core.examples", "remomask_addon.core.examples"):
        if name in sys.modules:
            sys.modules[name].forget()


class MenuRecorder(Recorder):
    def _child(self, kind):
        self.log.append((kind,))
        return MenuRecorder(self._bpy, self.log)

    def operator_menu_enum(self, idname, prop, **kw):
        mod, _, op = idname.partition(".")
        assert op in dir(getattr(self._bpy.ops, mod)), f"no operator {idname}"
        rna = getattr(getattr(self._bpy.ops, mod), op).get_rna_type()
        assert prop in rna.properties and rna.properties[prop].type == 'ENUM'
        self.log.append(("operator_menu_enum", idname, prop))


def _draw(bpy):
    from types import SimpleNamespace

    log = []
    bpy.types.REMOMASK_PT_generate.draw(SimpleNamespace(layout=MenuRecorder(bpy, log)), bpy.context)
    return log


def _offered(log):
    return [e for e in log if e[0] == "operator_menu_enum" or e[:2] in (("operator", "remomask.example_prompt"),
                                                                           ("operator", "remomask.check_backend"))]


def test_no_examples_nothing_shown(fresh, bpy_mod):
    bpy = bpy_mod
    ex = fresh.core.examples
    ex.forget()
    # before any hello: a button that asks the backend (Check Backend)
    assert _offered(_draw(bpy)) == [("operator", "remomask.check_backend")]
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=20) == {'FINISHED'}
    assert ex.current() == () and ex.asked()
    assert _offered(_draw(bpy)) == []  # the backend listed none: nothing
    sp = bpy.context.scene.remomask
    sp.prompt = "mine"
    with pytest.raises(TypeError):  # the only item is NONE, which is no example
        bpy.ops.remomask.example_prompt(example="walk/1")
    with pytest.raises(RuntimeError, match="No such example prompt"):  # one message, the prompt kept
        bpy.ops.remomask.example_prompt(example="NONE")
    assert sp.prompt == "mine"


def test_examples_from_hello_fill_the_prompt(fresh, bpy_mod, monkeypatch, tmp_path):
    bpy = bpy_mod
    ex = fresh.core.examples
    ex.forget()
    monkeypatch.setenv("FAKE_BACKEND_EXAMPLES", json.dumps(EXAMPLES + [{"family": 3}, "junk"]))
    sp = bpy.context.scene.remomask
    sp.prompt, sp.seed, sp.samples = "my own prompt", 7, 2
    before = scene_snapshot(bpy)
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=20) == {'FINISHED'}
    assert [(e.key, e.prompt) for e in ex.current()] == [
        ("walk/1", EXAMPLES[0]["prompt"]), ("walk/2", EXAMPLES[1]["prompt"]),
        ("dance_salsa/1", "a person dances salsa"), ("push_ups/1", "a person does push-ups")]
    log = _draw(bpy)
    assert _offered(log) == [("operator_menu_enum", "remomask.example_prompt", "example"),
                             ("operator", "remomask.example_prompt")]   # the drop-down and the search button
    # the menu entry sits right under the prompt field
    props = [i for i, e in enumerate(log) if e[0] in ("prop", "operator_menu_enum")]
    assert log[props[0]] == ("prop", "prompt") and log[props[1]][0] == "operator_menu_enum"

    assert bpy.ops.remomask.example_prompt(example="dance_salsa/1") == {'FINISHED'}
    assert sp.prompt == "a person dances salsa"
    assert bpy.ops.remomask.example_prompt(example="walk/2") == {'FINISHED'}
    assert sp.prompt == "someone walks forward quickly while turning left"
    # nothing else of the scene changed
    assert (sp.seed, sp.samples) == (7, 2) and scene_snapshot(bpy) == before
    with pytest.raises(TypeError):
        bpy.ops.remomask.example_prompt(example="walk/9")
    assert sp.prompt == "someone walks forward quickly while turning left"

    # another models folder: the old examples are stale as soon as a client with the new settings is made
    other = tmp_path / "other"
    other.mkdir()
    bpy.context.preferences.addons[fresh.__name__].preferences.models_dir = str(other)
    monkeypatch.delenv("FAKE_BACKEND_EXAMPLES")
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=20) == {'FINISHED'}
    assert ex.current() == () and _offered(_draw(bpy)) == []
    ex.forget()
    assert _offered(_draw(bpy)) == [("operator", "remomask.check_backend")]


def test_core_examples_parse_and_keep_for():
    from remomask_addon.core import examples as ex

    try:
        got = ex.remember({"models": {"examples": EXAMPLES + [EXAMPLES[0], {"family": "x", "prompt": " "}]}},
                          settings=("a",))
        assert [e.key for e in got] == ["walk/1", "walk/2", "dance_salsa/1", "push_ups/1"]  # duplicate, blank: out
        assert ex.enum_items(got)[2] == ("dance_salsa/1", "Salsa dance: a person dances salsa",
                                         "Put 'a person dances salsa' into the prompt field (dance_salsa)")
        assert ex.find("push_ups/1").prompt == "a person does push-ups" and ex.find("nope") is None
        ex.keep_for(("a",))
        assert len(ex.current()) == 4
        assert ex.asked()
        ex.keep_for(("b",))
        assert ex.current() == () and not ex.asked()
        assert ex.parse({"kind": "official"}) == () and ex.parse(None) == () and ex.parse({"examples": "x"}) == ()
        assert ex.parse({"examples": [{"family": "f", "prompt": "p"}]})[0].label == "f"
    finally:
        ex.forget()
