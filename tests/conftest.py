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

# Skips CI accepts (a reason must contain one of these). Any other skip fails a run with REMOMASK_STRICT_SKIPS=1
# (set by .ci/run): a test that silently stops running is a defect, not a pass.
ALLOWED_SKIPS = ("needs a CUDA GPU", "needs ../shared/data/mocap")
_SKIPS: list = []


def pytest_collectreport(report):
    """A whole module skipped at import (``pytest.importorskip`` at module level) counts like a skipped test."""
    pytest_runtest_logreport(report)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(a in reason for a in ALLOWED_SKIPS):
            _SKIPS.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if _SKIPS and os.environ.get("REMOMASK_STRICT_SKIPS") == "1" and exitstatus == 0:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"unexpected skips ({len(_SKIPS)}), failing the run:", red=True)
            for nodeid, reason in _SKIPS:
                tr.write_line(f"  {nodeid}: {reason}")
        session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
    _EXIT_STATUS["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "bpy" in sys.modules and "code" in _EXIT_STATUS and not os.environ.get("REMOMASK_NO_HARD_EXIT"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["code"])


# The other-Blender-versions run (scripts/test_blender_versions.sh) has bpy but no torch and no project install:
# there, test modules that import torch at module level (directly or through tests/models' helpers) cannot even be
# collected, so they are left out (only when that script says so; in the main run nothing is left out).
_TORCH_IMPORTS = ("import torch", "from tests.models")


def pytest_ignore_collect(collection_path, config):
    if os.environ.get("REMOMASK_BPY_ONLY") != "1" or collection_path.suffix != ".py":
        return None
    try:
        top = [ln for ln in collection_path.read_text().splitlines() if ln.startswith(("import ", "from "))]
    except OSError:
        return None
    return True if any(ln.startswith(_TORCH_IMPORTS) for ln in top) else None
