"""Helpers shared by the add-on tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE_BACKEND = Path(__file__).resolve().parent / "fake_backend.py"
PKG = "bl_ext.user_default.remomask"


def leftovers(bpy) -> list[str]:
    """Anything of the add-on's still registered in Blender."""
    out = [n for n in dir(bpy.types) if n.startswith("REMOMASK_")]
    for prop in ("remomask", "remomask_render", "remomask_retarget"):
        if hasattr(bpy.types.Scene, prop):
            out.append(f"Scene.{prop}")
    out += [n for n in dir(bpy.types) if n.startswith("Remomask")]
    for mod_name in [m for m in sys.modules if m.startswith(PKG + ".ops.session")]:
        m = sys.modules[mod_name]
        if bpy.app.timers.is_registered(m._timer):
            out.append("timer")
    for name in dir(bpy.app.handlers):
        handlers = getattr(bpy.app.handlers, name)
        if isinstance(handlers, list):
            out += [f"handler {name}" for h in handlers if getattr(h, "__module__", "").startswith(PKG)]
    return out


def scene_snapshot(bpy) -> tuple:
    return (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.armatures), len(bpy.data.meshes),
            len(bpy.data.collections))


def poll_until(mod, cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mod.ops.session.poll_once()
        if cond():
            return True
        time.sleep(0.02)
    return False


