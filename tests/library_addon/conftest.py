"""The add-on tests' fixtures (tests/addon/conftest.py: the built extension installed into a throw-away Blender
user folder, the backend stopped after every test), shared here without copying them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "remomask_tests_addon_conftest", Path(__file__).resolve().parents[1] / "addon" / "conftest.py")
_addon_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_addon_conftest)

bpy_mod = _addon_conftest.bpy_mod
ext_zip = _addon_conftest.ext_zip
addon = _addon_conftest.addon
fresh = _addon_conftest.fresh
_stop_every_backend = _addon_conftest._stop_every_backend
