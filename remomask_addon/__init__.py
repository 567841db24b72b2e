"""ReMoMask for Blender: text -> human motion, keyed onto an SMPL armature.

The extension's metadata is in blender_manifest.toml (repository root; staged next to this file by
scripts/build_extension.py). This package never imports torch: the generator runs in its own process
(client.py), started from the add-on preferences' backend Python.
"""

import atexit

from . import backend_setup, client, history, operators, panels, preferences, props

_MODULES = (props, preferences, history, operators, panels)


def register():
    for m in _MODULES:
        m.register()
    atexit.register(client.stop_all)


def unregister():
    operators.remove_timer()
    backend_setup.stop()
    for m in reversed(_MODULES):
        m.unregister()
    client.stop_all()
    atexit.unregister(client.stop_all)
