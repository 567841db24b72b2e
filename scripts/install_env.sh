#!/usr/bin/env bash
# Creates (or updates) the project's Python environment: backend (torch, FAISS, open_clip, smplx),
# Blender as a Python module (bpy, for the add-on's tests and headless rendering) and the test tools.
#
#   scripts/install_env.sh [VENV_DIR]        (default: .venv)
#
# torch: on this CPU-only machine `pip install torch==2.13.0` takes the local CPU wheel. On a CUDA
# machine, install the CUDA build of torch 2.13.0 first (or set REMOMASK_TORCH to the spec you want);
# nothing below replaces an installed torch.
#
# torchvision: open_clip imports torchvision at import time. The registry's torchvision 0.28.0 (the
# release paired with torch 2.13.0) is installed WITHOUT its dependencies, so that it never drags in a
# different torch. On a CPU-only torch its compiled ops fail to register; backend/models/tv_compat.py
# then skips torchvision's meta-kernel registration (a no-op on CUDA, where the ops exist).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$here/.venv}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
torch_spec="${REMOMASK_TORCH:-torch==2.13.0}"

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  pip install -q "$torch_spec"
fi
# Blender 4.5 LTS as a module; it needs numpy 1.26.x.
pip install -q "bpy~=4.5.0" "numpy>=1.26,<2.0"
# The project itself (editable) with the SMPL path and the test tools. `clip` extra is installed
# by hand below, without dependencies.
# "compat" editable mode puts the checkout on sys.path instead of a static map of the packages present at
# install time, so a package added later (a new top-level folder) is importable by the `remomask` command too.
pip install -q -e "$here[smpl,reader,dev]" --config-settings editable_mode=compat
pip install -q --no-deps "torchvision==0.28.0" "open_clip_torch==3.3.0" "timm==1.0.22"
pip install -q regex ftfy huggingface_hub pillow
pip install -q "ray[serve]==2.60.0"  # the [scale] extra (backend/scale): CI runs the Ray tests
"$venv/bin/python" - <<'PY'
import torch, numpy, bpy, faiss, smplx, safetensors
from backend.models.tv_compat import import_open_clip
open_clip = import_open_clip()
print(f"environment ok: torch {torch.__version__}, numpy {numpy.__version__}, bpy {bpy.app.version_string}, "
      f"faiss {faiss.__version__}, open_clip {open_clip.__version__}")
PY
