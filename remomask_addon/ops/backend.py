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
        session._JOBS[rid] = {"kind": "hello", "scene": context.scene.name}
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
        project = settings.project_dir
        if not project or not os.path.isfile(os.path.join(project, "pyproject.toml")):
            self.report({'ERROR'}, "Set 'Project folder' (your ReMoMask for Blender checkout, with "
                                   "pyproject.toml) in the add-on preferences first.")
            return {'CANCELLED'}
        if backend_setup.STATE.running:
            self.report({'ERROR'}, "The backend set-up is already running.")
            return {'CANCELLED'}
        user = preferences.user_dir(create=True)
        state = backend_setup.start(user, project, synchronous=self.synchronous)
        if self.synchronous:
            if state.failed:
                self.report({'ERROR'}, state.message)
                return {'CANCELLED'}
            self.report({'INFO'}, state.message)
            return {'FINISHED'}
        session.ensure_timer()
        self.report({'INFO'}, f"Setting up the backend in {user} (log: {state.log_path})")
        return {'FINISHED'}
