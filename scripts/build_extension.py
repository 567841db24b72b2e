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

The zip also carries the generator: a wheel of this project (``backend`` + ``smpl_fitting`` + the starter model as
package data, built with ``pip wheel --no-deps`` from a copy of just those folders) in ``backend_dist/``. It is
plain data for the add-on's *Set up backend*, which installs it into the add-on's own venv; it is NOT in the
manifest's ``wheels`` list (those Blender would install into its own Python, and torch must stay out of there).
The build refuses to run when the manifest's version and ``backend.__version__`` (the wheel's version, through
pyproject.toml's dynamic version) differ: one version for the add-on and its backend.
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
#: The extension's folder for the backend wheel (remomask_addon/core/backend_setup.py WHEEL_FOLDER).
WHEEL_FOLDER = "backend_dist"
#: What the backend wheel is built from (nothing else of the repository goes in).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "backend", "smpl_fitting")
#: Files the wheel must hold: the server, the fitting package and the whole starter model.
WHEEL_REQUIRED = ("backend/__init__.py", "backend/serving/server.py", "smpl_fitting/__init__.py")


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
#: The zip's size that the build refuses to pass (the starter model is ~25 MB of it).
MAX_ZIP_BYTES = 60 * 1024 * 1024


def backend_version() -> str:
    """``backend.__version__`` read from the source (no import: the builder may lack torch)."""
    import re

    text = (REPO / "backend" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
    if not m:
        raise RuntimeError("backend/__init__.py has no __version__")
    return m.group(1)


def starter_files() -> list[str]:
    """The shipped starter model's files as the wheel must hold them (``backend/starter/...``), logs aside."""
    root = REPO / "backend" / "starter"
    return sorted(p.relative_to(REPO).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix in (".json", ".safetensors", ".npy"))


def build_wheel(out_dir: Path, python: str | None = None) -> Path:
    """Build the backend wheel (backend + smpl_fitting + the starter) into out_dir; check its contents; return it."""
    python = python or sys.executable
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="remomask-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in WHEEL_SOURCES:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
            else:
                shutil.copy2(REPO / name, src / name)
        has_setuptools = subprocess.run([python, "-c", "import setuptools, wheel"], capture_output=True).returncode == 0
        cmd = [python, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(out_dir),
               str(src)] + (["--no-build-isolation"] if has_setuptools else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    version = backend_version()
    wheels = sorted(out_dir.glob(f"remomask_blender-{version}-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one remomask_blender-{version} wheel in {out_dir}, found {wheels}")
    with zipfile.ZipFile(wheels[0]) as zf:
        names = set(zf.namelist())
    missing = sorted((set(WHEEL_REQUIRED) | set(starter_files())) - names)
    if missing:
        raise RuntimeError(f"the backend wheel lacks {missing} (check [tool.setuptools.package-data])")
    stray = sorted(n for n in names if n.startswith(("remomask_addon/", "tests/")))
    if stray:
        raise RuntimeError(f"the backend wheel holds files that are not the backend's: {stray[:5]}")
    return wheels[0]


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
    if manifest["version"] != backend_version():
        raise RuntimeError(f"blender_manifest.toml says version {manifest['version']} but backend/__init__.py "
                           f"says {backend_version()}: the add-on and its backend have one version")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix="remomask-ext-") as tmp:
        src = Path(tmp) / manifest["id"]
        staged = stage(src)
        wheel = build_wheel(src / WHEEL_FOLDER, python)
        staged.append(wheel.relative_to(src).as_posix())
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
        if tmp_zip.stat().st_size > MAX_ZIP_BYTES:
            raise RuntimeError(f"the zip is {tmp_zip.stat().st_size / 2**20:.1f} MiB, over the "
                               f"{MAX_ZIP_BYTES / 2**20:.0f} MiB this build allows")
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
