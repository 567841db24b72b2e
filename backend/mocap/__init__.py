"""Real motion capture for the corpus: read BVH takes on known skeletons into the project's 22 joints at 20 fps
(``read``, ``skeletons``), cut, mirror and caption them (``clips``, ``labels``). See README.md here.

The data is never part of the repository: it is read from ``$REMOMASK_MOCAP`` or ``../shared/data/mocap`` (seen
from the project root), or from a folder the caller names.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_mocap_dir() -> Path | None:
    """``$REMOMASK_MOCAP``, else ``../shared/data/mocap`` beside the checkout; None when neither exists."""
    env = os.environ.get("REMOMASK_MOCAP")
    if env:
        return Path(env) if Path(env).is_dir() else None
    p = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mocap"
    return p if p.is_dir() else None
