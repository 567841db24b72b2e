"""The one place where HumanML3D / SMPL y-up coordinates become Blender z-up coordinates.

HumanML3D (and the SMPL fits made from it) use a right-handed frame with +Y up and the body
facing +Z at rest. Blender is right-handed with +Z up, and a character "faces the front view"
when it looks along -Y. The conversion is a rotation of +90 degrees about X:

    blender = C @ humanml3d,   C = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]

so (x, y, z) -> (x, -z, y): up stays up, the HumanML3D forward (+Z) becomes Blender -Y, and the
SMPL body's left (+X) stays +X (the character's left is on screen right in the front view).
A rotation R given in the y-up frame becomes C @ R @ C.T in the z-up frame.

Only numpy here, so the module is usable (and testable) without bpy.
"""

from __future__ import annotations

import numpy as np

#: y-up (HumanML3D/SMPL) -> z-up (Blender) rotation matrix.
YUP_TO_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: z-up -> y-up (the inverse, which is the transpose).
ZUP_TO_YUP = YUP_TO_ZUP.T.copy()


def points_to_zup(points) -> np.ndarray:
    """Convert points/vectors (..., 3) from y-up to z-up (float64 copy)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ YUP_TO_ZUP.T


def points_to_yup(points) -> np.ndarray:
    """Convert points/vectors (..., 3) from z-up back to y-up (float64 copy)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ ZUP_TO_YUP.T


def rotations_to_zup(mats) -> np.ndarray:
    """Convert rotation matrices (..., 3, 3) expressed in the y-up frame to the z-up frame."""
    m = np.asarray(mats, dtype=np.float64)
    return YUP_TO_ZUP @ m @ ZUP_TO_YUP
