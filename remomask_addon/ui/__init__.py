"""What the user sees and sets: ``props`` (the scene's property groups), ``preferences`` (the add-on
preferences and the resolved backend settings), ``history`` (the generated-motion list and its UIList) and
``panels`` (every panel of the ReMoMask sidebar tab).

Rule: panels draw properties and name operators by their idname; nothing here imports ``ops``. ``ui`` may
import ``core`` and ``blender`` (for enum items), ``ops`` imports ``ui``.
"""
