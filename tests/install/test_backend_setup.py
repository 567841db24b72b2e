"""Set up backend's decisions without Blender and without pip: which torch for which machine (fake probes), the
update in place when a backend is recorded, the one version of the add-on and its backend, the wheel the zip
carries, and the commands' clean environment."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from remomask_addon.core import backend_setup as bs

REPO = Path(__file__).resolve().parents[2]
H100 = ["GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)"]


# ------------------------------------------------------------------------------------------------ torch choice
def test_nvidia_gpu_on_linux_gets_the_cuda_channel_the_driver_supports():
    c = bs.choose_torch("linux", "x86_64", H100, (12, 8))
    assert c.args == ("torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128")
    assert "NVIDIA GPU found (GPU 0: NVIDIA H100 80GB HBM3, driver supports CUDA 12.8)" in c.reason
    assert "\n" not in c.reason and "cu128" in c.reason
    # a newer driver gets the newest channel, an older one the oldest, an unknown one the oldest
    assert bs.choose_torch("linux", "x86_64", H100, (13, 1)).args[-1].endswith("/cu130")
    assert bs.choose_torch("linux", "x86_64", H100, (12, 6)).args[-1].endswith("/cu126")
    assert bs.choose_torch("linux", "x86_64", H100, (12, 7)).args[-1].endswith("/cu126")
    assert bs.choose_torch("linux", "x86_64", H100, None).args[-1].endswith("/cu126")


def test_nvidia_gpu_on_windows_gets_cuda_too():
    c = bs.choose_torch("win32", "AMD64", ["GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-9)"], (13, 0))
    assert c.args == ("torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu130")


def test_no_gpu_linux_x86_gets_the_cpu_channel_and_elsewhere_the_default_wheel():
    c = bs.choose_torch("linux", "x86_64", [], None)
    assert c.args == ("torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu")
    assert c.reason == "torch: torch==2.13.0 CPU build, no NVIDIA GPU found (nvidia-smi)"
    assert bs.choose_torch("win32", "AMD64", [], None).args == ("torch==2.13.0",)
    assert bs.choose_torch("linux", "aarch64", [], None).args == ("torch==2.13.0",)


def test_macos_gets_the_default_wheel_for_mps_whatever_is_asked():
    for pref in ("AUTO", "CUDA", "CPU"):
        c = bs.choose_torch("darwin", "arm64", [], None, pref)
        assert c.args == ("torch==2.13.0",), pref
        assert "MPS" in c.reason
    assert "no CUDA build" in bs.choose_torch("darwin", "arm64", [], None, "CUDA").reason


def test_preferences_and_the_environment_override_the_probe():
    cpu = bs.choose_torch("linux", "x86_64", H100, (12, 8), "CPU")
    assert cpu.args[-1].endswith("/cpu") and "CPU asked in the preferences" in cpu.reason
    cuda = bs.choose_torch("linux", "x86_64", [], None, "CUDA")
    assert cuda.args[-1].endswith("/cu126") and "CUDA asked in the preferences" in cuda.reason
    custom = bs.choose_torch("linux", "x86_64", H100, (12, 8), "CUSTOM", " torch==2.12.0  --pre ")
    assert custom.args == ("torch==2.12.0", "--pre") and "custom" in custom.reason
    with pytest.raises(ValueError, match="Custom"):
        bs.choose_torch("linux", "x86_64", [], None, "CUSTOM", "  ")
    env = bs.choose_torch("linux", "x86_64", H100, (12, 8), "CUDA", "", env_spec="torch==2.13.0")
    assert env.args == ("torch==2.13.0",) and "REMOMASK_TORCH" in env.reason


def test_probe_reads_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = -L ]; then echo 'GPU 0: NVIDIA H100 (UUID: GPU-1)'; "
                    "echo 'GPU 1: NVIDIA H100 (UUID: GPU-2)'; else echo '| NVIDIA-SMI 570.1   Driver Version: "
                    "570.1   CUDA Version: 12.8     |'; fi\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert bs.probe_nvidia() == (["GPU 0: NVIDIA H100 (UUID: GPU-1)", "GPU 1: NVIDIA H100 (UUID: GPU-2)"], (12, 8))
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed'; exit 9\n")
    assert bs.probe_nvidia() == ([], None)
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert bs.probe_nvidia() == ([], None)


# ------------------------------------------------------------------------------------------------ the steps
def test_full_install_from_the_wheel(tmp_path):
    choice = bs.choose_torch("linux", "x86_64", H100, (12, 8))
    steps = bs.setup_steps(tmp_path / "venv", "/ext/backend_dist/remomask_blender-0.2.0-py3-none-any.whl",
                           "/usr/bin/python3.11", torch=choice)
    labels = [s[0] for s in steps]
    assert labels[0] == "Creating the virtual environment" and steps[0][1] == [
        "/usr/bin/python3.11", "-m", "venv", str(tmp_path / "venv")]
    torch_step = dict(steps)["Installing torch"]
    assert torch_step[-3:] == ["torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128"]
    backend_step = dict(steps)["Installing the ReMoMask backend"]
    assert backend_step[-1] == "/ext/backend_dist/remomask_blender-0.2.0-py3-none-any.whl[smpl,reader]"
    assert "-e" not in backend_step
    check = steps[-1][1]
    assert steps[-1][0] == "Checking the backend" and check[-3:] == [
        str(tmp_path / "venv" / bs.RECORD_NAME), "wheel", choice.reason]


def test_update_reinstalls_only_the_backend_and_keeps_torch(tmp_path):
    wheel = "/ext/backend_dist/remomask_blender-0.2.0-py3-none-any.whl"
    steps = bs.setup_steps(tmp_path / "venv", wheel, update=True)
    flat = [a for _, argv in steps for a in argv]
    assert not any(a.startswith("torch") for a in flat[:-3])
    assert steps[0][1][-3:] == ["--force-reinstall", "--no-deps", wheel]
    assert steps[1][1][-1] == wheel + "[smpl,reader]" and "--force-reinstall" not in steps[1][1]
    assert steps[-1][0] == "Checking the backend" and len(steps) == 3
    # a developer checkout is reinstalled editable
    steps = bs.setup_steps(tmp_path / "venv", "/src/remomask", update=True)
    assert steps[0][1][-2:] == ["-e", "/src/remomask[smpl,reader]"] and len(steps) == 2


def _fake_venv(tmp_path, record=None):
    py = bs.venv_python(tmp_path / "user" / "venv")
    py.parent.mkdir(parents=True)
    py.write_text("")
    if record is not None:
        (tmp_path / "user" / "venv" / bs.RECORD_NAME).write_text(json.dumps(record))
    return tmp_path / "user"


def test_plan_updates_in_place_when_a_backend_is_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv("REMOMASK_TORCH", raising=False)
    user = _fake_venv(tmp_path, {"version": "0.1.0", "torch": "2.13.0+cu128", "starter": "/x"})
    probed = []
    steps, note = bs.plan(user, "/ext/backend_dist/remomask_blender-0.2.0-py3-none-any.whl",
                          probe=lambda: probed.append(1) or (H100, (12, 8)))
    assert note == ("Updating the backend 0.1.0 in place from remomask_blender-0.2.0-py3-none-any.whl; keeping "
                    "torch 2.13.0+cu128")
    assert [s[0] for s in steps] == ["Updating the ReMoMask backend", "Completing the backend's dependencies",
                                     "Checking the backend"]
    assert probed == []


def test_plan_probes_and_says_what_it_chose(tmp_path, monkeypatch):
    monkeypatch.delenv("REMOMASK_TORCH", raising=False)
    user = _fake_venv(tmp_path)                  # a venv without a record: a full install into it
    steps, note = bs.plan(user, "/ext/w/remomask_blender-0.2.0-py3-none-any.whl", probe=lambda: (H100, (12, 8)))
    if sys.platform.startswith("linux") or sys.platform == "win32":
        assert "CUDA build (cu128), NVIDIA GPU found" in note
    assert note.startswith("Installing the backend from remomask_blender-0.2.0-py3-none-any.whl; torch: ")
    assert "Creating the virtual environment" not in [s[0] for s in steps]
    monkeypatch.setenv("REMOMASK_TORCH", "torch==2.13.0")
    steps, note = bs.plan(user, "/src/remomask", probe=lambda: pytest.fail("probed despite REMOMASK_TORCH"))
    assert dict(steps)["Installing torch"][-1] == "torch==2.13.0"
    assert note == "Installing the backend from the checkout /src/remomask; torch: torch==2.13.0 (from REMOMASK_TORCH)"


def test_commands_run_outside_any_checkout_with_a_clean_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    script = "import os, sys; print('CWD', os.getcwd()); print('PP', os.environ.get('PYTHONPATH')); " \
             "print('REPO_ON_PATH', any(p.rstrip('/') == sys.argv[1] for p in sys.path))"
    # -S: no site-packages, so a developer venv's editable install (a .pth naming the checkout) does not count;
    # what is tested is the set-up's own environment and working folder
    st = bs.start(tmp_path, "/unused", steps=[("probe", [sys.executable, "-S", "-c", script, str(REPO)])],
                  synchronous=True)
    assert st.done, st.message
    log = (tmp_path / "setup.log").read_text()
    assert f"CWD {tmp_path}" in log and "PP None" in log and "REPO_ON_PATH False" in log


# ------------------------------------------------------------------------------------------------ versions
def test_one_version_for_the_addon_the_wheel_and_the_backend():
    import backend

    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "backend.__version__"}
    assert manifest["version"] == backend.__version__
    assert bs.addon_version(REPO / "remomask_addon") == backend.__version__


def test_addon_version_reads_the_installed_manifest(tmp_path):
    (tmp_path / "blender_manifest.toml").write_text('id = "remomask"\nversion = "0.3.1"\n')
    assert bs.addon_version(tmp_path) == "0.3.1"
    assert bs.addon_version(tmp_path / "nowhere" / "x") == "0"


def test_an_older_backend_is_told_to_update():
    assert bs.version_problem("0.1.0", "0.2.0") == \
        "Backend 0.1.0 is older than the add-on 0.2.0: press Set up backend to update"
    assert bs.version_problem("0.1.9", "0.1.10") is not None
    assert bs.version_problem("0.2.0", "0.2.0") is None
    assert bs.version_problem("0.2", "0.2.0") is None
    assert bs.version_problem("0.3.0", "0.2.0") is None
    assert bs.version_problem("1.0.0+local", "0.9.9") is None
    assert bs.version_problem(None, "0.2.0") is None


def test_read_installed_and_find_wheel(tmp_path):
    assert bs.read_installed(tmp_path) is None
    (tmp_path / bs.RECORD_NAME).write_text("{not json")
    assert bs.read_installed(tmp_path) is None
    (tmp_path / bs.RECORD_NAME).write_text('{"version": "0.1.0", "starter": "/s"}')
    assert bs.read_installed(tmp_path) == {"version": "0.1.0", "starter": "/s"}
    assert bs.find_wheel(tmp_path) is None
    (tmp_path / bs.WHEEL_FOLDER).mkdir()
    for v in ("0.1.0", "0.2.0"):
        (tmp_path / bs.WHEEL_FOLDER / f"remomask_blender-{v}-py3-none-any.whl").write_text("")
    assert bs.find_wheel(tmp_path, "0.1.0").name == "remomask_blender-0.1.0-py3-none-any.whl"
    assert bs.find_wheel(tmp_path, "0.3.0") is None


def test_gpu_used():
    assert bs.gpu_used("cuda:0") and bs.gpu_used("cuda") and bs.gpu_used("mps")
    assert not bs.gpu_used("cpu") and not bs.gpu_used(None)
