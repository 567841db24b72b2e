"""HumanML3D motion representation (pure numpy; no torch, no bpy).

- ``skeleton``: joint names/order, parents, kinematic chains, feature layout, Part-TMR body parts,
  a default rest skeleton.
- ``features``: joints (T, 22, 3) <-> 263-d features, canonicalisation, body-part split.
- ``normalize``: mean/std normaliser (HumanML3D conventions).
- ``motion_file``: the project's motion ``.npz`` (atomic writes, validated reads).
- ``bvh``: BVH writer/reader.

Conventions: y-up, metres, 20 fps, HumanML3D joint order.
"""

from .skeleton import FEATURE_DIM, FPS, JOINT_NAMES, NUM_JOINTS, PARENTS  # noqa: F401
