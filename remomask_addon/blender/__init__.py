"""Blender-side code of the add-on: everything that touches ``bpy`` data (armatures, actions, meshes, renders,
exports), but no operators, panels or properties (those are ``ops/`` and ``ui/``).

Rule: modules here may import ``core`` (the bpy-free half) and each other, never ``ops`` or ``ui``.
"""
