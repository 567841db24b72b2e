"""Fixtures for the Edit-panel tests: the add-on registered from the source tree (headless bpy), a clean scene
per test, and a stand-in backend client that answers ``edit`` requests with a known motion (``fake_edit``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "retarget"))


@pytest.fixture(scope="module")
def addon():
    """remomask_addon registered (classes, scene properties, handlers) for one test module."""
    bpy = pytest.importorskip("bpy")
    import remomask_addon

    remomask_addon.register()
    yield remomask_addon
    from remomask_addon.ops import session
    session._CLIENT = None
    remomask_addon.unregister()
    assert not [n for n in dir(bpy.types) if n.startswith("REMOMASK_")]
    assert not hasattr(bpy.types.Scene, "remomask_edit")


@pytest.fixture
def scene(addon, monkeypatch):
    """An empty scene at 20 fps and the stand-in client in the session."""
    import bpy

    from fake_edit import FakeEditClient
    from remomask_addon.ops import session

    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = 20, 1.0
    client = FakeEditClient()
    monkeypatch.setattr(session, "_CLIENT", client)
    monkeypatch.setattr(session, "get_client", lambda settings: client)
    session._JOBS.clear()
    yield sc
    session._JOBS.clear()
    bpy.ops.wm.read_homefile(use_empty=True)
