"""Issue 13 items 1 and 4: from the extension zip alone to a rendered take, nothing faked.

A fresh Blender process (the bpy module) with a fresh user folder and no repository on any path installs the
built zip, runs *Set up backend* for real (a venv in the extension's user folder; pip from the registry; torch
from ``$REMOMASK_TORCH``, else torch==2.13.0, which on the CI machine is the local CPU wheel), checks the backend,
generates with the starter model the zip carries, keys the armature and renders a preview video. Also: the wheel
alone, installed next to the test environment's torch, finds its starter model as package data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _build_module():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_extension
    finally:
        sys.path.pop(0)
    return build_extension


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def ext_zip(tmp_path_factory):
    return _build_module().build(tmp_path_factory.mktemp("dist"))


@pytest.mark.slow
def test_wheel_holds_the_starter_and_loads_it_from_site_packages(tmp_path):
    """The wheel alone (no checkout on the path) loads the shipped starter: ``load_pipeline(None)``."""
    bx = _build_module()
    wheel = bx.build_wheel(tmp_path / "wheel")
    with zipfile.ZipFile(wheel) as zf:
        infos = {i.filename: i.file_size for i in zf.infolist()}
    for rel in bx.starter_files():
        assert infos[rel] == (REPO / rel).stat().st_size, rel
    assert sum(v for k, v in infos.items() if k.startswith("backend/starter/")) > 20e6
    assert not [n for n in infos if n.startswith(("remomask_addon/", "tests/"))]
    # a venv that borrows this environment's site-packages (torch, numpy, ...) behind its own
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host_site = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(os.path.join(p, "torch"))]
    assert host_site, "torch is not installed in the test environment"
    Path(site, "host.pth").write_text(host_site[0] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                    "--target", site, str(wheel)], check=True, env=_clean_env())
    code = ("import torch; torch.set_num_threads(1)\n"
            "import backend\n"
            "from backend.generation.model_folder import load_pipeline\n"
            "p = load_pipeline(None)\n"
            "print(backend.__file__); print(p.info['kind']); print(p.info['path'])\n")
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=_clean_env(),
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    backend_file, kind, path = out.stdout.strip().splitlines()[-3:]
    assert backend_file.startswith(site) and path.startswith(site), (backend_file, path)
    assert kind == "starter" and Path(path, "mask_ts.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.blender
def test_from_the_zip_alone_to_a_rendered_take(ext_zip, tmp_path):
    pytest.importorskip("bpy")
    size = ext_zip.stat().st_size
    assert 20e6 < size < 60 * 2**20, size          # the starter model (~25 MB) is in, nothing big beside it
    out = tmp_path / "out"
    out.mkdir()
    user = tmp_path / "blender-user"
    env = _clean_env(BLENDER_USER_RESOURCES=str(user), REMOMASK_TORCH=os.environ.get("REMOMASK_TORCH",
                                                                                    "torch==2.13.0"))
    proc = subprocess.run([sys.executable, str(HERE / "zip_to_render.py"), str(ext_zip), str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=1200)
    res_file = out / "result.json"
    assert proc.returncode == 0 and res_file.is_file(), (proc.stdout[-3000:], proc.stderr[-5000:])
    res = json.loads(res_file.read_text())
    print(json.dumps({k: v for k, v in res.items() if k.endswith(("_s", "_bytes"))}))  # measured (-s shows it)

    # the add-on came from the zip, with no checkout anywhere
    assert res["addon_file"].startswith(str(user)) and res["developer_checkout"] == ""
    assert res["sys_path_has_repo"] == [] and res["backend_importable"] is False
    # Set up backend installed the wheel into the venv under the extension's user folder, and recorded it
    venv_dir = Path(res["venv"])
    assert venv_dir.is_relative_to(user)
    rec = res["record"]
    import backend
    assert rec["version"] == backend.__version__ and rec["source"] == "wheel"
    assert Path(rec["backend"]).is_relative_to(venv_dir) and Path(rec["starter"]).is_relative_to(venv_dir)
    assert rec["torch"].startswith("2.13.0") and rec["cuda"] is False
    assert res["setup_note"].startswith("Installing the backend from remomask_blender-")
    assert "torch: torch==2.13.0" in res["setup_note"] and res["setup_message"].startswith("Backend ready")
    assert "Checking the backend" in Path(res["setup_log"]).read_text()
    assert res["settings_problem"] is None
    # an older backend (its record says 0.0.9): a clear message, then Set up backend updates it in place
    older = f"Backend 0.0.9 is older than the add-on {backend.__version__}: press Set up backend to update"
    assert res["old_problem"] == older + "." and older in res["old_check_error"]
    assert res["update_note"] == (f"Updating the backend 0.0.9 in place from remomask_blender-{backend.__version__}"
                                  f"-py3-none-any.whl; keeping torch {rec['torch']}")
    assert res["record_after_update"] == rec
    log = res["update_log"]
    assert "--force-reinstall --no-deps" in log and "Successfully installed remomask-blender" in log
    assert "Installing torch" not in log and "Creating the virtual environment" not in log
    # Check Backend: one readable line, the starter from the venv, no GPU here
    line = res["check_status"]
    assert "\n" not in line and len(line) < 200, line
    assert f"Backend {backend.__version__}" in line and "on cpu" in line and "GPU used: no" in line, line
    assert "model: starter (starter)" in line and "torch 2.13.0" in line, line
    # generated and keyed: the armature plays the SMPL fit the backend returned (the other add-on tests compare
    # every joint; here: it moves like a walk and matches the fitted joints)
    assert not res["generate_error"], res["generate_status"]
    assert res["armatures"] == 1
    keyed = np.load(out / "keyed_joints.npy")
    with np.load(res["motion_file"]) as z:
        from smpl_fitting.skeleton import forward_kinematics
        fitted = forward_kinematics(z["rest_joints"], z["poses"], z["trans"])[:, :22]
    T = fitted.shape[0]
    assert abs(T / 20.0 - 3.0) < 0.1
    assert keyed.shape[0] == res["frame_range"][1] - res["frame_range"][0] + 1
    assert abs(keyed.shape[0] / res["fps"] - T / 20.0) < 0.15
    pelvis = keyed[:, 0, :2]
    travel = np.linalg.norm(pelvis[-1] - pelvis[0])
    assert travel > 0.5, travel                    # a 3 s walk goes somewhere
    # the first and the last keyed frame are the fit's first and last frame (z-up), moved as a whole to where the
    # take was placed (beside the default scene's cube): one horizontal offset for every joint and both frames
    to_zup = lambda p: np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)  # noqa: E731
    offset = keyed[0, 0] - to_zup(fitted[0, 0])
    assert abs(offset[2]) < 0.01, offset
    for k, f in ((0, 0), (-1, T - 1)):
        err = np.linalg.norm(keyed[k] - offset - to_zup(fitted[f]), axis=-1)
        assert err.mean() < 0.01 and err.max() < 0.03, (k, err.mean(), err.max())
    # the preview video has one frame per scene frame
    assert len(res["videos"]) == 1 and res["videos"][0].endswith(".mp4")
    assert res["video_frames"] == keyed.shape[0] and res["video_size"] == [640, 360]
    assert os.path.getsize(res["videos"][0]) > 10_000
