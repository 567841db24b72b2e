"""Add-on preferences: where the generator backend lives and how to start it, and where new takes go."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from ..core import backend_setup

#: The add-on's top-level package (``bl_ext.<repo>.remomask`` when installed; this module is its ``ui.preferences``).
ADDON_PACKAGE = __package__.rpartition(".")[0]

# A development checkout: the add-on folder sits next to backend/ (the generator's package).
_HERE = Path(__file__).resolve().parent.parent
_CHECKOUT = _HERE.parent if (_HERE.parent / "backend").is_dir() else None


def user_dir(create: bool = True) -> Path:
    """The add-on's writable folder (the backend venv, logs, generated motions)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, create=create))
    except (ValueError, TypeError, AttributeError):
        # Imported as a plain package (not through the extension system): a folder in Blender's user config.
        path = Path(bpy.utils.user_resource('CONFIG', path="remomask", create=create))
        return path


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


class REMOMASK_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    backend_python: StringProperty(
        name="Backend Python", subtype='FILE_PATH',
        description="Python executable of the generator's environment (torch). Empty: the one made by "
                    "'Set up backend'")
    project_dir: StringProperty(
        name="Developer checkout", subtype='DIR_PATH', default=str(_CHECKOUT) if _CHECKOUT else "",
        description="Optional: a git checkout of ReMoMask for Blender (the folder that holds backend/). Empty: "
                    "'Set up backend' installs the backend the extension carries. Set: it installs this checkout "
                    "editable and starts the backend with it on PYTHONPATH")
    models_dir: StringProperty(
        name="Model folder", subtype='DIR_PATH',
        description="Official ReMoMask release folder, or a trained model folder. Empty: the starter model "
                    "shipped with the backend")
    torch_choice: EnumProperty(name="Torch", items=[
        ('AUTO', "Auto", "CUDA build when nvidia-smi lists an NVIDIA GPU (Linux, Windows), the default wheel on "
                         "macOS (Apple MPS), else the CPU build"),
        ('CPU', "CPU", "The CPU build of torch (smallest download)"),
        ('CUDA', "CUDA", "The CUDA build of torch"),
        ('CUSTOM', "Custom", "Your own pip arguments for torch (below)"),
    ], default='AUTO', description="Which torch 'Set up backend' installs")
    torch_custom: StringProperty(
        name="Torch pip arguments", default="",
        description="e.g. 'torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126'")
    device: EnumProperty(name="Device", items=[
        ('auto', "Auto", "CUDA when available, else CPU"),
        ('cuda', "CUDA", "NVIDIA GPU"),
        ('cpu', "CPU", "Slow but works everywhere"),
    ], default='auto')
    remote: StringProperty(name="Remote address", default="",
                           description="host:port of a running 'python -m backend.server --listen', or the URL "
                                       "(http(s)://host:port) of a shared 'remomask serve'. Empty: start a local "
                                       "backend")
    token: StringProperty(name="Token", subtype='PASSWORD', default="",
                          description="The remote server's token")
    place_takes: EnumProperty(name="Place new takes", items=[
        ('BESIDE', "Beside previous takes", "Each new armature goes beside the previous takes, clear of the "
                                            "other objects in the scene"),
        ('CURSOR', "At the 3D cursor", "Each new armature starts at the 3D cursor"),
    ], default='BESIDE')

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "backend_python")
        col.prop(self, "models_dir")
        col.prop(self, "device")
        col.prop(self, "place_takes")
        box = layout.box()
        box.label(text="Backend set-up")
        box.prop(self, "torch_choice")
        box.prop(self, "torch_custom")
        box.prop(self, "project_dir")
        box = layout.box()
        box.label(text="Remote generator (optional)")
        box.prop(self, "remote")
        box.prop(self, "token")
        row = layout.row()
        row.operator("remomask.setup_backend", icon='CONSOLE')
        row.operator("remomask.check_backend", icon='CHECKMARK')
        row.operator("remomask.release_backend", icon='X')
        st = backend_setup.STATE
        if st.running or st.message:
            layout.label(text=st.message or "Setting up...", icon='ERROR' if st.failed else 'INFO')


class Settings:
    """Resolved backend settings (defaults filled in). Works without registered preferences too."""

    def __init__(self, prefs=None):
        get = (lambda k, d="": getattr(prefs, k, d)) if prefs is not None else (lambda k, d="": d)
        project = bpy.path.abspath(get("project_dir")) if get("project_dir") else (
            str(_CHECKOUT) if _CHECKOUT else "")
        self.project_dir = project.rstrip("/\\") or None
        py = get("backend_python")
        if py:
            py = bpy.path.abspath(py)
        else:
            py = str(venv_python(user_dir(create=False) / "venv"))
        self.python = py
        #: The default venv's record of the installed backend (version, starter folder); None for another Python.
        self.installed = None
        if not get("backend_python"):
            self.installed = backend_setup.read_installed(user_dir(create=False) / "venv")
        models = get("models_dir")
        if models:
            models = bpy.path.abspath(models).rstrip("/\\")
        elif self.project_dir:
            models = os.path.join(self.project_dir, "backend", "starter")
        elif self.installed and self.installed.get("starter"):
            models = str(self.installed["starter"])
        self.models_dir = models or None
        self.torch_choice = get("torch_choice", "AUTO") or "AUTO"
        self.torch_custom = get("torch_custom") or ""
        self.device = get("device", "auto") or "auto"
        self.remote = (get("remote") or "").strip() or None
        self.token = get("token") or None
        #: Where new takes go (``blender.take_placement``): 'BESIDE' or 'CURSOR'.
        self.place_takes = get("place_takes", "BESIDE") or "BESIDE"

    def problem(self) -> str | None:
        """A user-facing message when the backend cannot be started with these settings, else None."""
        if self.remote and self.remote.lower().startswith(("http://", "https://")):
            from urllib.parse import urlsplit  # the shared service (remomask serve)

            try:
                ok = bool(urlsplit(self.remote).hostname)
            except ValueError:
                ok = False
            return None if ok else f"Remote URL must be http(s)://host:port, not {self.remote!r}"
        if self.remote:
            host, sep, port = self.remote.rpartition(":")
            if not sep or not port.isdigit():
                return f"Remote address must be host:port, not {self.remote!r}"
            return None
        if not self.python or not os.path.isfile(self.python):
            return (f"Backend Python not found: {self.python}. Run 'Set up backend' or set 'Backend Python' in "
                    "the add-on preferences.")
        if self.installed is not None:
            old = backend_setup.version_problem(self.installed.get("version"), backend_setup.addon_version())
            if old:
                return old + "."
        if not self.models_dir:
            return ("No model folder set. Run 'Set up backend' (it installs the starter model), or set 'Model "
                    "folder' (the official release folder) in the add-on preferences.")
        if not os.path.isdir(self.models_dir):
            return (f"Model folder not found: {self.models_dir}. Set 'Model folder' in the add-on preferences "
                    "(the official release folder or the starter model).")
        return None


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def settings(context=None) -> Settings:
    return Settings(get_prefs(context))
