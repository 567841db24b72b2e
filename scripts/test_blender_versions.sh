#!/usr/bin/env bash
# The add-on's Blender tests (pytest -m "blender and not slow and not torch") under other Blender releases than the main
# environment's 4.5 LTS: bpy 4.2 LTS and 5.0, each in its own small venv (bpy, numpy, scipy and the test tools;
# no torch: the slow tests that start the real generator stay in the main run).
#
#   scripts/test_blender_versions.sh [VERSION ...]      (default: 4.2.23 5.0.1)
#
# The venvs are .venv-bpy-<version> at the repository root, made once and reused. bpy needs Python 3.11 (the
# registry's bpy 5.0.1 and 4.2.23 are cp311 wheels); 4.5 and 5.0 need numpy<2.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
py="${PYTHON:-python3.11}"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(4.2.23 5.0.1)
status=0
for v in "${versions[@]}"; do
  venv="$here/.venv-bpy-$v"
  if [ ! -f "$venv/.installed" ]; then
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "bpy==$v" "numpy>=1.26,<2.0" scipy \
      "pytest>=8" "pytest-timeout>=2.3" "hypothesis>=6.100"
    touch "$venv/.installed"
  fi
  echo "== bpy $v: $("$venv/bin/python" -c 'import bpy; print(bpy.app.version_string)' 2>/dev/null | tail -1)"
  start=$(date +%s)
  # The repository is on sys.path through tests/conftest.py (nothing of the project is installed here).
  # REMOMASK_BPY_ONLY: tests/conftest.py leaves out the test modules that import the generator (no torch here);
  # tests marked `torch` (a Blender test that starts the real generator) stay in the main run too
  if ! REMOMASK_BPY_ONLY=1 REMOMASK_STRICT_SKIPS="${REMOMASK_STRICT_SKIPS:-1}" "$venv/bin/python" -m pytest -q \
      -p no:cacheprovider -m "blender and not slow and not torch" tests/addon tests/addon_keying tests/render \
      tests/retarget tests/addon_edit tests/addon_rootline tests/library_addon; then
    status=1
  fi
  echo "== bpy $v: $(( $(date +%s) - start )) s"
done
exit $status
