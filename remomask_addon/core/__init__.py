"""The bpy-free half of the add-on: numpy and the standard library only, importable and tested where Blender
is not installed (the backend client, motion files, the SMPL skeleton, coordinate conventions, the retargeting
solver and bone maps, the request objects sent to the generator).

Rule: nothing in ``core`` imports ``bpy`` (or ``mathutils``), nor anything from ``blender``, ``ops`` or ``ui``
(tests/shared/test_core_without_bpy.py checks both). ``core/atomic.py`` is a byte-identical copy of
``backend/atomic.py``; ``core/client.py`` is also loaded on its own by file path in tests.
"""
