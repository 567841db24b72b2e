"""Outputs written atomically through a temporary file get the user's usual file mode, not mkstemp's 0600."""

import os
import stat

import numpy as np

from backend.motion.bvh import write_bvh
from backend.motion.motion_file import save_motion
from backend.motion.skeleton import PARENTS, default_rest_joints


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_motion_file_and_bvh_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        joints = np.tile(default_rest_joints()[None], (4, 1, 1))
        npz = save_motion(tmp_path / "m.npz", joints=joints)
        rest = default_rest_joints()
        offsets = rest - rest[[max(p, 0) for p in PARENTS]]
        offsets[0] = rest[0]
        bvh = write_bvh(tmp_path / "m.bvh", [f"j{i}" for i in range(22)], list(PARENTS), offsets,
                        np.zeros((4, 22, 3)), np.zeros((4, 3)))
        assert _mode(npz) == 0o644 and _mode(bvh) == 0o644
    finally:
        os.umask(old)


def test_smpl_fitting_cli_output_mode(tmp_path):
    from smpl_fitting.__main__ import write_npz_atomic

    old = os.umask(0o027)
    try:
        out = tmp_path / "fitted.npz"
        write_npz_atomic(out, {"joints": np.zeros((2, 22, 3), np.float32)})
        assert _mode(out) == 0o640
    finally:
        os.umask(old)
