"""'Set up backend': make a virtual environment in the add-on's user folder and pip-install the generator into it.

The work runs in a worker thread (subprocesses only, no bpy); ``STATE`` is read on the main thread by the
preferences and the panel. Every command's output goes to ``<user dir>/setup.log``.

Where the generator comes from: the wheel of this project (``backend`` + ``smpl_fitting`` + the starter model) that
the extension zip carries in ``backend_dist/`` (scripts/build_extension.py puts it there), so a user needs nothing
but the zip. A developer checkout (preference "Developer checkout") is the optional override: it is installed
editable instead.

Steps: venv, pip upgrade, torch (chosen by :func:`choose_torch`: ``$REMOMASK_TORCH`` > the preference > CUDA
build when ``nvidia-smi`` lists a GPU on Linux/Windows, the default wheel (MPS) on macOS, else the CPU build),
torchvision/open_clip/timm without dependencies, open_clip's small dependencies, the backend (the wheel, or the
checkout editable, with the ``smpl`` extra), and a check that imports ``backend.server`` and writes
``<venv>/remomask_backend.json`` (the installed backend's version and its starter folder; see
:func:`read_installed`). When that record exists and torch imports, *Set up backend* updates in place instead:
the new wheel is force-reinstalled without its dependencies (torch stays), then its dependencies are completed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: The torch release the backend is tested with (the CPU build on the CI machine).
TORCH_VERSION = "2.13.0"
#: PyTorch's CUDA wheel channels for TORCH_VERSION, newest first: (the CUDA version the driver must support, tag).
#: The driver's ``nvidia-smi`` header says which CUDA version it supports; the newest channel it covers is used.
CUDA_CHANNELS = (((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 6), "cu126"))
TORCH_INDEX = "https://download.pytorch.org/whl/{tag}"
#: The file that records the installed backend, inside the venv.
RECORD_NAME = "remomask_backend.json"
#: Where the extension keeps the backend wheel (next to its __init__.py).
WHEEL_FOLDER = "backend_dist"
ADDON_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TorchChoice:
    """What 'Set up backend' installs for torch: pip arguments (spec and index options) and why, in one line."""
    args: tuple
    reason: str


def probe_nvidia(timeout: float = 10.0) -> tuple[list[str], tuple[int, int] | None]:
    """The NVIDIA GPUs ``nvidia-smi -L`` lists and the CUDA version the driver supports (``nvidia-smi``'s header);
    ([], None) when nvidia-smi is not on PATH or fails."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return [], None
    try:
        listing = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=timeout)
        header = subprocess.run([exe], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return [], None
    if listing.returncode != 0:
        return [], None
    gpus = [ln.strip() for ln in listing.stdout.splitlines() if re.match(r"\s*GPU \d+:", ln)]
    m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header.stdout or "")
    return gpus, ((int(m.group(1)), int(m.group(2))) if m else None)


def choose_torch(platform: str, machine: str, gpus: list[str], driver_cuda: tuple[int, int] | None,
                 preference: str = "AUTO", custom: str = "", env_spec: str | None = None) -> TorchChoice:
    """The torch to install, decided from the probes (pure: the caller runs :func:`probe_nvidia`).

    ``platform`` is ``sys.platform``, ``machine`` ``platform.machine()``; ``preference`` is the add-on
    preference (AUTO, CPU, CUDA or CUSTOM with ``custom`` the pip arguments); ``env_spec`` is
    ``$REMOMASK_TORCH`` (the CI's and a developer's override: pip arguments, taken as they are)."""
    spec = f"torch=={TORCH_VERSION}"
    if env_spec and env_spec.strip():
        return TorchChoice(tuple(env_spec.split()), f"torch: {env_spec.strip()} (from REMOMASK_TORCH)")
    pref = (preference or "AUTO").upper()
    if pref == "CUSTOM":
        if not custom.strip():
            raise ValueError("Torch is set to 'Custom' but the pip arguments are empty.")
        return TorchChoice(tuple(custom.split()), f"torch: {custom.strip()} (custom, from the preferences)")
    if platform == "darwin":
        why = "macOS: the default wheel (Apple MPS on Apple silicon)"
        if pref == "CUDA":
            why = "macOS has no CUDA build; " + why
        return TorchChoice((spec,), f"torch: {spec}, {why}")
    if pref == "CUDA" or (pref == "AUTO" and gpus):
        tag = CUDA_CHANNELS[-1][1] if driver_cuda is None else next(
            (t for need, t in CUDA_CHANNELS if driver_cuda >= need), CUDA_CHANNELS[-1][1])
        if pref == "CUDA" and not gpus:
            why = "CUDA asked in the preferences (nvidia-smi lists no GPU)"
        else:
            cuda = f", driver supports CUDA {driver_cuda[0]}.{driver_cuda[1]}" if driver_cuda else ""
            why = f"NVIDIA GPU found ({gpus[0].split(' (UUID')[0]}{cuda})"
        return TorchChoice((spec, "--index-url", TORCH_INDEX.format(tag=tag)),
                           f"torch: {spec} CUDA build ({tag}), {why}")
    why = "CPU asked in the preferences" if pref == "CPU" else "no NVIDIA GPU found (nvidia-smi)"
    if platform.startswith("linux") and machine.lower() in ("x86_64", "amd64"):
        # PyPI's Linux torch is the multi-GB CUDA build; the CPU channel is a fraction of it.
        return TorchChoice((spec, "--index-url", TORCH_INDEX.format(tag="cpu")),
                           f"torch: {spec} CPU build, {why}")
    return TorchChoice((spec,), f"torch: {spec} (CPU), {why}")


def addon_version(root: Path = ADDON_ROOT) -> str:
    """The add-on's version: its blender_manifest.toml (next to __init__.py when installed, at the repository root
    in a checkout); "0" when neither is found."""
    import tomllib

    for manifest in (root / "blender_manifest.toml", root.parent / "blender_manifest.toml"):
        if manifest.is_file():
            try:
                return str(tomllib.loads(manifest.read_text(encoding="utf-8"))["version"])
            except (OSError, ValueError, KeyError):
                break
    return "0"


def _version_key(v: str) -> tuple:
    nums = [int(x) for x in re.findall(r"\d+", str(v).split("+")[0])[:3]]
    return tuple(nums + [0] * (3 - len(nums)))


def version_problem(backend_version: str | None, addon_ver: str) -> str | None:
    """The message when the backend is older than the add-on (None when it is as new or newer, or unknown)."""
    if not backend_version:
        return None
    if _version_key(backend_version) < _version_key(addon_ver):
        return (f"Backend {backend_version} is older than the add-on {addon_ver}: press Set up backend to "
                "update")
    return None


def find_wheel(root: Path = ADDON_ROOT, version: str | None = None) -> Path | None:
    """The backend wheel the extension carries (``backend_dist/remomask_blender-<version>-*.whl``), else None."""
    folder = root / WHEEL_FOLDER
    if not folder.is_dir():
        return None
    hits = sorted(folder.glob(f"remomask_blender-{version or '*'}-*.whl"))
    return hits[-1] if hits else None


def read_installed(venv: Path) -> dict | None:
    """The record the last set-up wrote in the venv (version, starter folder, torch), or None."""
    try:
        data = json.loads((Path(venv) / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def gpu_used(device: str | None) -> bool:
    """Whether the backend's device (hello's ``device``) is a GPU (CUDA or Apple MPS)."""
    return str(device or "").startswith(("cuda", "mps"))


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
        #: The one line that says what the set-up installs (torch chosen and why, or an update in place).
        self.note = ""


STATE = SetupState()


def base_python() -> str:
    """The interpreter that creates the venv: $REMOMASK_BASE_PYTHON, else Blender's own Python."""
    return os.environ.get("REMOMASK_BASE_PYTHON") or sys.executable


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


#: Run in the venv by the last step: imports the server, then records what is installed (cwd is the user folder,
#: so only the venv's packages can answer the imports).
_RECORD_SCRIPT = """
import importlib, json, os, sys
import backend, backend.server
torch = importlib.import_module("torch")
from backend.generation.project_weights import STARTER_DIR
rec = {"version": backend.__version__, "backend": os.path.dirname(backend.__file__), "starter": str(STARTER_DIR),
       "torch": torch.__version__, "cuda": bool(torch.cuda.is_available()), "source": sys.argv[2],
       "torch_choice": sys.argv[3]}
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(rec, f, indent=1)
os.replace(tmp, sys.argv[1])
print("backend ok:", json.dumps(rec))
"""


def setup_steps(venv: Path, source: str, base: str | None = None, *, torch: TorchChoice | None = None,
                update: bool = False) -> list[tuple[str, list[str]]]:
    """The commands of a set-up. ``source`` is the backend wheel (``*.whl``) or a developer checkout (installed
    editable); ``update``: the venv already holds a backend and torch, so only the backend is reinstalled (the
    wheel with ``--force-reinstall --no-deps``, then its dependencies completed; torch is kept)."""
    venv = Path(venv)
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    torch = torch or TorchChoice((f"torch=={TORCH_VERSION}",), f"torch: torch=={TORCH_VERSION}")
    is_wheel = str(source).endswith(".whl")
    target = f"{source}[smpl,reader]"  # reader: the starter's prompt reader (backend/generation/reading.py)
    install = pip + (["--force-reinstall", "--no-deps", str(source)] if is_wheel else ["-e", target])
    check = ("Checking the backend", [py, "-c", _RECORD_SCRIPT, str(venv / RECORD_NAME),
                                      "wheel" if is_wheel else "checkout", torch.reason])
    if update:
        steps = [("Updating the ReMoMask backend", install)]
        if is_wheel:
            steps.append(("Completing the backend's dependencies", pip + [target]))
        return steps + [check]
    steps = []
    if not venv_python(venv).is_file():
        steps.append(("Creating the virtual environment", [base or base_python(), "-m", "venv", str(venv)]))
    steps += [
        ("Updating pip", pip + ["--upgrade", "pip"]),
        ("Installing torch", pip + list(torch.args)),
        ("Installing open_clip", pip + ["--no-deps", "torchvision==0.28.0", "open_clip_torch==3.3.0",
                                        "timm==1.0.22"]),
        ("Installing open_clip's dependencies", pip + ["regex", "ftfy", "huggingface_hub", "pillow"]),
        ("Installing the ReMoMask backend", pip + ([target] if is_wheel else ["-e", target])),
        check,
    ]
    return steps


def _clean_env() -> dict:
    """The environment of the set-up's commands: Blender's (or a test's) Python settings never leak into them."""
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONUSERBASE"):
        env.pop(key, None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(steps, log_path: Path, state: SetupState, note: str = "") -> None:
    try:
        with open(log_path, "a", encoding="utf-8", errors="replace") as log:
            if note:
                log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {note}\n")
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
                                                  stdin=subprocess.DEVNULL, cwd=str(log_path.parent),
                                                  env=_clean_env())
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


def plan(user_dir: Path, source: str, preference: str = "AUTO", custom: str = "",
         probe=probe_nvidia) -> tuple[list, str]:
    """The steps of *Set up backend* for this machine and the one line that says what it chose and why: an update
    in place when the venv holds a recorded backend (torch kept), else a full install with :func:`choose_torch`."""
    import platform

    venv = Path(user_dir) / "venv"
    rec = read_installed(venv) if venv_python(venv).is_file() else None
    name = Path(source).name if str(source).endswith(".whl") else f"the checkout {source}"
    if rec is not None:
        note = (f"Updating the backend {rec.get('version', '?')} in place from {name}; keeping torch "
                f"{rec.get('torch', '?')}")
        kept = TorchChoice((), str(rec.get("torch_choice") or f"torch kept: {rec.get('torch')}"))
        return setup_steps(venv, source, update=True, torch=kept), note
    env_spec = os.environ.get("REMOMASK_TORCH")
    pref = (preference or "AUTO").upper()
    gpus, cuda = probe() if not env_spec and pref in ("AUTO", "CUDA") and sys.platform != "darwin" else ([], None)
    choice = choose_torch(sys.platform, platform.machine(), gpus, cuda, pref, custom, env_spec)
    return setup_steps(venv, source, torch=choice), f"Installing the backend from {name}; {choice.reason}"


def start(user_dir: Path, project_dir: str, steps=None, synchronous: bool = False, *, preference: str = "AUTO",
          custom: str = "") -> SetupState:
    """Start the set-up (refuses while one runs). ``project_dir`` is the source: the backend wheel or a developer
    checkout. ``steps`` replaces the pip recipe (tests). Raises ValueError for a bad torch preference."""
    global STATE
    if STATE.running:
        raise RuntimeError("Backend set-up is already running.")
    note = ""
    if steps is None:
        steps, note = plan(Path(user_dir), project_dir, preference, custom)
    state = SetupState()
    venv = Path(user_dir) / "venv"
    state.python = str(venv_python(venv))
    state.log_path = str(Path(user_dir) / "setup.log")
    state.note = note
    Path(user_dir).mkdir(parents=True, exist_ok=True)
    state.running = True
    state.message = note or "Starting..."
    STATE = state
    if synchronous:
        _run(steps, Path(state.log_path), state, note)
    else:
        state.thread = threading.Thread(target=_run, args=(steps, Path(state.log_path), state, note), daemon=True,
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
