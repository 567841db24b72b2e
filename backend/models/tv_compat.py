"""Import open_clip on a CPU-only torch whose paired torchvision wheel has no working compiled ops.

open_clip imports torchvision at import time. The registry's torchvision 0.28.0 is built against CUDA;
with the CPU build of torch 2.13.0 its compiled extension does not load and its meta-kernel module then
fails with ``RuntimeError: operator torchvision::nms does not exist``. Those meta kernels (nms,
roi_align, ...) are only used by torch.compile's fake tensors for detection ops, which nothing here
uses. So: import torchvision normally; only if that fails on exactly this error, import it again with
the meta-registration module replaced by an empty one. Where the ops exist (CUDA builds, matching CPU
builds) the first import succeeds and nothing is changed.
"""

from __future__ import annotations

import importlib
import sys
import types

_META_MODULE = "torchvision._meta_registrations"


def _purge_torchvision() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def import_torchvision():
    """Import torchvision, skipping its meta-kernel registration when the compiled ops are missing."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    _purge_torchvision()
    stub = types.ModuleType(_META_MODULE)
    stub.__doc__ = "skipped: torchvision's compiled ops are not available with this torch build"
    sys.modules[_META_MODULE] = stub
    return importlib.import_module("torchvision")


def import_open_clip():
    """Import and return open_clip, working around the torchvision issue described above."""
    import_torchvision()
    return importlib.import_module("open_clip")
