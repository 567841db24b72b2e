"""ReMoMask for Blender: text -> human motion, keyed onto an SMPL armature.

The extension's metadata is in blender_manifest.toml (repository root; staged next to this file by
scripts/build_extension.py). This package never imports torch: the generator runs in its own process
(client.py), started from the add-on preferences' backend Python.

Submodules are imported in register(), not here, so that the numpy-only helpers of this package
(coords, smpl_rig, motion_io, client) can be imported where bpy is not installed.
"""

import atexit


def _modules():
    from . import history, operators, panels, preferences, props, render_ops, retarget_ops
    return (props, preferences, history, operators, panels, render_ops, retarget_ops)


def register():
    from .core import client
    for m in _modules():
        m.register()
    atexit.register(client.stop_all)


def unregister():
    from . import operators
    from .core import backend_setup, client
    operators.remove_timer()
    backend_setup.stop()
    for m in reversed(_modules()):
        m.unregister()
    client.stop_all()
    atexit.unregister(client.stop_all)
