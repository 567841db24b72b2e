#!/usr/bin/env python3
"""Build the installable Blender extension zip of the add-on and validate it.

    python scripts/build_extension.py [--out dist/] [--blender-ext PATH]

The manifest lives at the repository root (blender_manifest.toml); the add-on's code lives in remomask_addon/, in
sub-packages (core/ with its bone_maps/ data, blender/, ops/, ui/). Blender wants ``__init__.py`` next to the
manifest at the top of the zip, so this script stages the manifest and the whole of remomask_addon/ in a
temporary folder, runs ``blender_ext.py build`` (the extension CLI that ships
inside the bpy module and inside Blender, ``<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py``; it runs with
any Python >= 3.11, no Blender binary needed) and then ``blender_ext.py validate`` on the zip, and checks that
every staged file (each sub-package, the bone-map presets) made it into the zip. It prints the zip's path on the
last line. Exit status 0 on success.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO / "remomask_addon"
MANIFEST = REPO / "blender_manifest.toml"


def find_blender_ext() -> Path:
    """Path of blender_ext.py: $REMOMASK_BLENDER_EXT, else the copy inside the installed bpy module."""
    env = os.environ.get("REMOMASK_BLENDER_EXT")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.origin:
        raise SystemExit("error: bpy is not installed here; pass --blender-ext "
                         "<blender>/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    base = Path(spec.origin).parent
    hits = sorted(glob.glob(str(base / "*" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py")))
    if not hits:
        raise SystemExit(f"error: no blender_ext.py under {base}")
    return Path(hits[-1])


#: Files the zip must hold whatever else changes: the sub-packages and the bundled bone maps.
REQUIRED = ("__init__.py", "core/__init__.py", "blender/__init__.py", "ops/__init__.py", "ui/__init__.py",
            "core/bone_maps/mixamo.json", "core/bone_maps/rigify.json", "blender_manifest.toml")


def stage(dest: Path) -> list[str]:
    """Copy the manifest and remomask_addon/'s files (all sub-packages and data, no caches) into dest; return the
    staged files' paths relative to dest (posix)."""
    shutil.copytree(ADDON_DIR, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    shutil.copy2(MANIFEST, dest / "blender_manifest.toml")
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())


def build(out_dir: Path, blender_ext: Path | None = None, python: str | None = None) -> Path:
    """Build and validate the zip; return its path. Raises RuntimeError with the CLI's output on failure."""
    blender_ext = blender_ext or find_blender_ext()
    python = python or sys.executable
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix="remomask-ext-") as tmp:
        src = Path(tmp) / manifest["id"]
        staged = stage(src)
        tmp_zip = Path(tmp) / target.name
        for args in (["build", "--source-dir", str(src), "--output-filepath", str(tmp_zip)],
                     ["validate", str(tmp_zip)]):
            proc = subprocess.run([python, str(blender_ext), *args], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"blender_ext.py {args[0]} failed ({proc.returncode}):\n"
                                   f"{proc.stdout}{proc.stderr}")
        with zipfile.ZipFile(tmp_zip) as zf:
            names = zf.namelist()
        missing = sorted((set(staged) | set(REQUIRED)) - set(names))
        if missing:
            raise RuntimeError(f"zip lacks staged files (check paths_exclude_pattern in the manifest): {missing}")
        os.replace(tmp_zip, target) if _same_fs(tmp_zip, target) else shutil.move(str(tmp_zip), target)
    return target


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a.parent).st_dev == os.stat(b.parent).st_dev
    except OSError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "dist"), help="output folder (default dist/)")
    ap.add_argument("--blender-ext", help="path of blender_ext.py (default: the one inside bpy)")
    args = ap.parse_args(argv)
    try:
        path = build(Path(args.out), Path(args.blender_ext) if args.blender_ext else None)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
