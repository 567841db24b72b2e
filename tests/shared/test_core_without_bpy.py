"""``remomask_addon/core`` is the bpy-free half of the add-on: every module imports in a Python where ``bpy`` cannot
be imported, and none of them names bpy (or mathutils, bmesh, addon_utils) or anything outside ``core`` in an
import."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "remomask_addon" / "core"
BLENDER_MODULES = {"bpy", "mathutils", "bmesh", "addon_utils", "bpy_extras"}


def _core_modules() -> list[str]:
    mods = []
    for p in sorted(CORE.rglob("*.py")):
        parts = list(p.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.append(".".join(parts))
    return mods


def bad_imports(source: str) -> list[str]:
    """Imports a core module may not have: Blender's modules, and anything of the add-on outside core (a relative
    import that climbs out of core, or an absolute remomask_addon.<not core>)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 2:
                out.append(f"line {node.lineno}: {'.' * node.level}{node.module or ''} (outside core)")
                continue
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] in BLENDER_MODULES:
                out.append(f"line {node.lineno}: {n}")
            elif parts[0] == "remomask_addon" and parts[1:2] != ["core"]:
                out.append(f"line {node.lineno}: {n} (outside core)")
    return out


def test_core_holds_the_bpy_free_modules():
    assert {"remomask_addon.core", "remomask_addon.core.atomic", "remomask_addon.core.client",
            "remomask_addon.core.coords", "remomask_addon.core.motion_io", "remomask_addon.core.smpl_rig",
            "remomask_addon.core.backend_setup", "remomask_addon.core.channels", "remomask_addon.core.bone_map",
            "remomask_addon.core.retarget", "remomask_addon.core.requests"} <= set(_core_modules())


def test_no_core_module_imports_bpy_or_the_blender_side():
    found = {str(p.relative_to(REPO)): bad for p in sorted(CORE.rglob("*.py")) if (bad := bad_imports(p.read_text()))}
    assert found == {}


def test_the_check_sees_the_usual_spellings():
    for src in ("import bpy", "from bpy.props import IntProperty", "import mathutils", "def f():\n    import bpy",
                "from ..blender import keying", "from .. import ops", "from remomask_addon.ui import props",
                "from remomask_addon import preferences"):
        assert bad_imports(src), src
    for src in ("import numpy as np", "from . import smpl_rig", "from .atomic import atomic_write_json",
                "from remomask_addon.core import coords"):
        assert not bad_imports(src), src


def test_every_core_module_imports_with_bpy_blocked():
    mods = _core_modules()
    code = ("import importlib, sys\n"
            f"for name in {sorted(BLENDER_MODULES)!r}:\n"
            "    sys.modules[name] = None   # importing it raises ImportError\n"
            f"for m in {mods!r}:\n"
            "    importlib.import_module(m)\n"
            "outside = sorted(m for m in sys.modules if m.startswith('remomask_addon.')\n"
            "                 and not m.startswith('remomask_addon.core'))\n"
            "assert not outside, outside\n"
            "print('imported', len(sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("imported")
