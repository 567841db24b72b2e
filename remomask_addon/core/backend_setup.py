"""'Set up backend': make a virtual environment in the add-on's user folder and pip-install the generator into it.

The work runs in a worker thread (subprocesses only, no bpy); ``STATE`` is read on the main thread by the
preferences and the panel. Every command's output goes to ``<user dir>/setup.log``.

Steps (the same recipe as scripts/install_env.sh, without bpy): venv, pip upgrade, torch (``$REMOMASK_TORCH`` or
torch==2.13.0; on a CUDA machine point REMOMASK_TORCH at your CUDA build), torchvision/open_clip/timm without
dependencies, open_clip's small dependencies, the project itself (editable, with the ``smpl`` extra), and a check
that ``backend.server`` imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path


class SetupState:
    def __init__(self):
        self.running = False
        self.failed = False
        self.done = False
        self.fraction = 0.0
        self.message = ""
        self.log_path = ""
        self.python = ""
        self.thread: threading.Thread | None = None
        self.proc: subprocess.Popen | None = None
        self.cancel = False


STATE = SetupState()


def base_python() -> str:
    """The interpreter that creates the venv: $REMOMASK_BASE_PYTHON, else Blender's own Python."""
    return os.environ.get("REMOMASK_BASE_PYTHON") or sys.executable


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def setup_steps(venv: Path, project_dir: str, base: str | None = None) -> list[tuple[str, list[str]]]:
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    torch_spec = os.environ.get("REMOMASK_TORCH", "torch==2.13.0").split()
    steps = []
    if not venv_python(venv).is_file():
        steps.append(("Creating the virtual environment", [base or base_python(), "-m", "venv", str(venv)]))
    steps += [
        ("Updating pip", pip + ["--upgrade", "pip"]),
        ("Installing torch", pip + torch_spec),
        ("Installing open_clip", pip + ["--no-deps", "torchvision==0.28.0", "open_clip_torch==3.3.0",
                                        "timm==1.0.22"]),
        ("Installing open_clip's dependencies", pip + ["regex", "ftfy", "huggingface_hub", "pillow"]),
        ("Installing the ReMoMask backend", pip + ["-e", f"{project_dir}[smpl]"]),
        ("Checking the backend", [py, "-c", "import backend.server; print('backend ok')"]),
    ]
    return steps


def _run(steps, log_path: Path, state: SetupState) -> None:
    try:
        with open(log_path, "a", encoding="utf-8", errors="replace") as log:
            for i, (label, argv) in enumerate(steps):
                if state.cancel:
                    state.failed, state.message = True, "Set-up cancelled."
                    return
                state.message = f"{label} ({i + 1}/{len(steps)})"
                state.fraction = i / len(steps)
                log.write(f"\n=== {time.strftime('%H:%M:%S')} {label}: {' '.join(argv)}\n")
                log.flush()
                try:
                    state.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL)
                    rc = state.proc.wait()
                except OSError as exc:
                    rc = None
                    log.write(f"could not run: {exc}\n")
                if rc != 0:
                    state.failed = True
                    state.message = f"{label} failed (exit {rc}); see {log_path}"
                    return
            state.fraction = 1.0
            state.done = True
            state.message = f"Backend ready: {state.python}"
    except OSError as exc:
        state.failed, state.message = True, f"Set-up failed: {exc}"
    finally:
        state.proc = None
        state.running = False


def start(user_dir: Path, project_dir: str, steps=None, synchronous: bool = False) -> SetupState:
    """Start the set-up (refuses while one runs). ``steps`` replaces the pip recipe (tests)."""
    global STATE
    if STATE.running:
        raise RuntimeError("Backend set-up is already running.")
    state = SetupState()
    venv = Path(user_dir) / "venv"
    state.python = str(venv_python(venv))
    state.log_path = str(Path(user_dir) / "setup.log")
    Path(user_dir).mkdir(parents=True, exist_ok=True)
    steps = steps if steps is not None else setup_steps(venv, project_dir)
    state.running = True
    state.message = "Starting..."
    STATE = state
    if synchronous:
        _run(steps, Path(state.log_path), state)
    else:
        state.thread = threading.Thread(target=_run, args=(steps, Path(state.log_path), state), daemon=True,
                                        name="remomask-backend-setup")
        state.thread.start()
    return state


def stop(timeout: float = 5.0) -> None:
    """Cancel a running set-up (add-on disable)."""
    st = STATE
    st.cancel = True
    if st.proc is not None and st.proc.poll() is None:
        st.proc.terminate()
    if st.thread is not None:
        st.thread.join(timeout)
