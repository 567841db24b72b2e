"""ReMoMask for Blender: text -> human motion, keyed onto an SMPL armature (or retargeted onto any rig).

The extension's metadata is in blender_manifest.toml (repository root; staged next to this file by
scripts/build_extension.py). This package never imports torch: the generator runs in its own process
(``core/client.py``), started from the add-on preferences' backend Python.

Layout (in the spirit of glTF-Blender-IO's ``io/`` vs ``blender/`` split):

- ``core/``    bpy-free: numpy and the standard library only (backend client, request objects, motion files,
               SMPL skeleton, keying maths, bone maps, retargeting solver); importable and tested without bpy.
- ``blender/`` what touches Blender data: armatures, keys, NLA batches, the body mesh, retarget key writing,
               renders, exports, the one motion -> armature path and the command line's headless steps.
- ``ops/``     operators, grouped by what they do, and the session with the generator (client, jobs, poller).
- ``ui/``      properties, preferences, the history list and the panels.

Nothing but the standard library is imported here at module level: importing ``remomask_addon.core`` runs this
file first, also where bpy is not installed. ``register()`` imports the Blender side.
"""

import atexit

#: The unregister half of ``bpy.utils.register_classes_factory``, kept from the last ``register()``.
_unregister_classes = None


def classes() -> tuple:
    """Every class the add-on registers, in registration order: property groups first (nested groups before
    the groups that hold them), the preferences, the history list, the operators, the panels (a parent panel
    before its sub-panels). Unregistration runs in reverse."""
    from .ops import backend, edit, generate, importing, library, render, retarget
    from .ops import root_motion, timeline
    from .ui import edit_panel, history, library_panel, library_props, panels, preferences, props
    from .ui import rootline_panel
    from .ops import examples as example_ops
    return (
        *library_props.CLASSES,
        props.REMOMASK_PG_caption, props.REMOMASK_PG_history_item, props.REMOMASK_PG_scene,
        props.RemomaskRenderSettings, props.RemomaskRetargetSettings, props.REMOMASK_PG_edit,
        preferences.REMOMASK_AP_preferences,
        history.REMOMASK_UL_history, *library_panel.LISTS,
        generate.REMOMASK_OT_generate, generate.REMOMASK_OT_cancel, generate.REMOMASK_OT_new_seed,
        generate.REMOMASK_OT_history_apply,
        importing.REMOMASK_OT_import_motion, importing.REMOMASK_OT_batch,
        backend.REMOMASK_OT_check_backend, backend.REMOMASK_OT_release_backend, backend.REMOMASK_OT_setup_backend,
        render.REMOMASK_OT_render, render.REMOMASK_OT_render_cancel, render.REMOMASK_OT_export,
        render.REMOMASK_OT_export_replace,
        retarget.REMOMASK_OT_retarget,
        root_motion.REMOMASK_OT_root_motion,
        timeline.REMOMASK_OT_timeline_generate, timeline.REMOMASK_OT_timeline_redo_part,
        *edit.CLASSES, *library.CLASSES,
        *example_ops.CLASSES,
        panels.REMOMASK_PT_generate, panels.REMOMASK_PT_options, panels.REMOMASK_PT_history,
        panels.REMOMASK_PT_import_batch, panels.REMOMASK_PT_backend, panels.REMOMASK_PT_render,
        panels.REMOMASK_PT_retarget,
        edit_panel.REMOMASK_PT_edit,
        rootline_panel.REMOMASK_PT_root_motion, rootline_panel.REMOMASK_PT_timeline,
        *library_panel.PANELS,
    )


def register():
    import bpy

    from .core import client
    from .ops import session
    from .ui import props

    global _unregister_classes
    register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes())
    register_classes()
    for name, group in props.SCENE_PROPERTIES:
        setattr(bpy.types.Scene, name, bpy.props.PointerProperty(type=group))
    for name, fn in session.HANDLERS:
        getattr(bpy.app.handlers, name).append(fn)
    atexit.register(client.stop_all)


def unregister():
    import bpy

    from .core import backend_setup, client
    from .ops import render, session
    from .ui import props

    global _unregister_classes
    session.remove_timer()
    backend_setup.stop()
    render.stop_render()
    session.stop_backend()          # pending jobs end; their scenes' status is still writable here
    for name, fn in session.HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        while fn in handlers:
            handlers.remove(fn)
    for name, _group in reversed(props.SCENE_PROPERTIES):
        if hasattr(bpy.types.Scene, name):
            delattr(bpy.types.Scene, name)
    unregister_classes = _unregister_classes or bpy.utils.register_classes_factory(classes())[1]
    _unregister_classes = None
    unregister_classes()
    client.stop_all()
    atexit.unregister(client.stop_all)
