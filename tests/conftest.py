"""Shared test set-up: no network, no user state."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Nothing may try to reach a model hub; bpy must not read or write the real user's Blender config.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="remomask-blender-user-"))


# bpy 4.5 can hang at interpreter exit when anything stays registered (see ../shared/PLATFORM.md). The add-on
# tests check that nothing is left registered; this only keeps one missed unregister from hanging CI after
# pytest has already printed its result. It ends the process with pytest's own exit status.
_EXIT_STATUS = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "bpy" in sys.modules and "code" in _EXIT_STATUS and not os.environ.get("REMOMASK_NO_HARD_EXIT"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["code"])
