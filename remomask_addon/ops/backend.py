"""The generator process: Check Backend (start it if needed, show version, device and models), Release Generator
(stop it, freeing its GPU memory) and Set Up Backend (make its Python environment in the add-on's user folder)."""

from __future__ import annotations

import os

import bpy
from bpy.props import BoolProperty

from ..core import backend_setup
from ..core import client as client_mod
from ..core.requests import HelloRequest
from ..ui import preferences
from . import session


def setup_source(checkout: str | None) -> tuple[str | None, str | None]:
    """What *Set up backend* installs: the developer checkout when one is set (it must hold pyproject.toml), else
    the backend wheel the extension carries. Returns (source, None) or (None, a message for the user)."""
    if checkout:
        if not os.path.isfile(os.path.join(checkout, "pyproject.toml")):
            return None, (f"'Developer checkout' {checkout} has no pyproject.toml: clear it to install the backend "
                          "the extension carries, or point it at a ReMoMask for Blender checkout.")
        return checkout, None
    wheel = backend_setup.find_wheel(version=backend_setup.addon_version())
    if wheel is None:
        return None, (f"This extension has no backend wheel in {backend_setup.ADDON_ROOT / backend_setup.WHEEL_FOLDER}"
                      ": reinstall the extension from its zip, or set 'Developer checkout' in the add-on "
                      "preferences.")
    return str(wheel), None


class REMOMASK_OT_check_backend(session.SyncMixin, bpy.types.Operator):
    """Start the backend (if needed) and show its version, device and models"""
    bl_idname = "remomask.check_backend"
    bl_label = "Check Backend"

    def execute(self, context):
        settings = preferences.settings(context)
        err = settings.problem()
        if err:
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        try:
            req = HelloRequest(token=settings.token)
            rid = session.get_client(settings).request(req.method, req.to_params())
        except client_mod.BackendError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        session.add_job(rid, {"kind": "hello", "scene": context.scene.name})
        session.set_status(context.scene, "Checking the backend...")
        if self.synchronous:
            res = self._wait([rid], "Backend check")
            props = context.scene.remomask
            self.report({'ERROR'} if props.status_is_error else {'INFO'}, props.status)
            return {'CANCELLED'} if props.status_is_error else res
        session.ensure_timer()
        return {'FINISHED'}


class REMOMASK_OT_release_backend(bpy.types.Operator):
    """Stop the backend process (frees its GPU memory); the next generation starts it again"""
    bl_idname = "remomask.release_backend"
    bl_label = "Release Generator"

    def execute(self, context):
        running = session._CLIENT is not None and session._CLIENT.alive
        for scene in bpy.data.scenes:
            session.cancel_job(scene)
        session.stop_backend()
        self.report({'INFO'}, "Generator stopped." if running else "The generator was not running.")
        return {'FINISHED'}


class REMOMASK_OT_setup_backend(bpy.types.Operator):
    """Create a Python environment in the add-on's user folder and install the generator (torch) into it"""
    bl_idname = "remomask.setup_backend"
    bl_label = "Set Up Backend"

    synchronous: BoolProperty(default=False, options={'SKIP_SAVE', 'HIDDEN'})

    def execute(self, context):
        if not bpy.app.online_access:
            self.report({'ERROR'}, "Setting up the backend downloads packages (pip), but Blender's online access "
                                   "is off. Allow it in Preferences > System > Network, or set 'Backend Python' "
                                   "to an environment you made yourself.")
            return {'CANCELLED'}
        settings = preferences.settings(context)
        source, err = setup_source(settings.project_dir)
        if err:
            self.report({'ERROR'}, err)
            return {'CANCELLED'}
        if backend_setup.STATE.running:
            self.report({'ERROR'}, "The backend set-up is already running.")
            return {'CANCELLED'}
        user = preferences.user_dir(create=True)
        # the running generator uses the venv about to change (and holds its files open on Windows): stop it first
        for scene in bpy.data.scenes:
            session.cancel_job(scene)
        session.stop_backend()
        try:
            state = backend_setup.start(user, source, synchronous=self.synchronous,
                                        preference=settings.torch_choice, custom=settings.torch_custom)
        except ValueError as exc:       # a bad torch preference
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        if self.synchronous:
            if state.failed:
                self.report({'ERROR'}, state.message)
                return {'CANCELLED'}
            self.report({'INFO'}, state.message)
            return {'FINISHED'}
        session.ensure_timer()
        self.report({'INFO'}, f"Setting up the backend in {user}: {state.note} (log: {state.log_path})")
        return {'FINISHED'}
