"""`remomask render | export | demo` through the CLI entry point (in-process)."""

from __future__ import annotations

import os

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from backend import cli  # noqa: E402
from backend import errors as cli_errors  # noqa: E402
from tests.addon_keying.conftest import make_motion, write_npz  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the render suite


@pytest.fixture
def motion_file(tmp_path):
    return str(write_npz(tmp_path / "walk.npz", make_motion(T=20)))


def test_render_and_export_commands(motion_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert cli.main(["render", motion_file, "--out", str(out) + "/", "--mode", "frames", "--scale", "10"]) == 0
    assert len(os.listdir(out / "walk_frames")) == 20
    # an existing output is kept without --overwrite: exit 2, one error line
    assert cli.main(["render", motion_file, "--out", str(out) + "/", "--mode", "frames", "--scale", "10"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["export", motion_file, "--out", str(out / "walk.glb")]) == 0
    assert (out / "walk.glb").stat().st_size > 0
    assert cli.main(["export", motion_file, "--out", str(out / "walk.obj")]) == 2
    assert cli.main(["render", str(tmp_path / "missing.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Unknown export format" in err and "no such file" in err
    assert sorted(os.listdir(out)) == ["walk.glb", "walk_frames"]


def test_demo_missing_models_folder_is_one_clear_error(tmp_path, capsys):
    assert cli.main(["demo", "a person walks", "--out", str(tmp_path / "d"), "--models", str(tmp_path / "none")]) == 2
    assert "models folder not found" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_demo_prompt_to_blend_and_video(tmp_path, capsys):
    from tests.release_fixture import make_tiny_release

    release = make_tiny_release(tmp_path / "release")
    out = tmp_path / "demo"
    rc = cli.main(["demo", "a person walks forward", "--models", str(release), "--out", str(out), "--seconds", "1.2",
                   "--scale", "10", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    names = sorted(os.listdir(out))
    stems = {os.path.splitext(n)[0] for n in names}
    assert len(stems) == 1, names
    stem = stems.pop()
    assert names == sorted(f"{stem}{ext}" for ext in (".blend", ".bvh", ".mp4", ".npz"))
    motion = np.load(out / f"{stem}.npz")
    frames = motion["joints"].shape[0]
    # the saved .blend holds the keyed armature (with its stage), and the video has every frame
    bpy.ops.wm.open_mainfile(filepath=str(out / f"{stem}.blend"))
    scene = bpy.context.scene
    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    assert scene.camera is not None and scene.camera.name == "ReMoMask Camera"
    assert scene.frame_end - scene.frame_start + 1 == frames
    from remomask_addon.core import coords
    from smpl_fitting.skeleton import forward_kinematics

    # the armature is keyed from the SMPL fit (which, with feet grounding on by default, deliberately moves the
    # pelvis and legs away from the generated joints): compare it with the joints of that fit
    keyed_from = forward_kinematics(motion["rest_joints"].astype(float), motion["poses"].astype(float),
                                    motion["trans"].astype(float))
    errs = []
    for f in range(frames):
        scene.frame_set(scene.frame_start + f)
        heads = np.array([tuple(arm.matrix_world @ arm.pose.bones[n].head) for n in
                          ("pelvis", "left_knee", "right_wrist", "head")])
        want = coords.points_to_zup(keyed_from[f][[0, 4, 21, 15]])
        errs.append(np.linalg.norm(heads - want, axis=1))
    errs = np.array(errs)
    assert errs.mean() < 0.005 and errs.max() < 0.015
    clip = bpy.data.movieclips.load(str(out / f"{stem}.mp4"))
    assert clip.frame_duration == frames
    bpy.ops.wm.read_homefile(use_empty=True)


def test_render_output_name_fits_the_mode(tmp_path, capsys):
    """--mode video --out x.png used to write an MP4 named .png; a folder that cannot be created (its parent
    is a file) used to end in a traceback."""
    from backend.cli.blender import _render_target

    class RP:
        @staticmethod
        def default_output_name(mode, stem):
            return {"video": f"{stem}.mp4", "frames": f"{stem}_frames", "sequence": f"{stem}_sequence.png"}[mode]

    assert _render_target(str(tmp_path / "x"), "video", "m", RP) == str(tmp_path / "x.mp4")
    assert _render_target(str(tmp_path / "x"), "sequence", "m", RP) == str(tmp_path / "x.png")
    assert _render_target(str(tmp_path / "x.mp4"), "video", "m", RP) == str(tmp_path / "x.mp4")
    assert _render_target(str(tmp_path / "f"), "frames", "m", RP) == str(tmp_path / "f")
    for out, mode in (("x.png", "video"), ("x.mp4", "sequence"), ("x.png", "frames")):
        with pytest.raises(cli_errors.UserError, match=f"--mode {mode} writes"):
            _render_target(str(tmp_path / out), mode, "m", RP)
    (tmp_path / "file").write_text("x")
    code = cli.main(["render", str(tmp_path / "none.npz"), "--out", str(tmp_path / "file" / "sub") + "/"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    motion = tmp_path / "m.npz"
    from backend.motion.motion_file import save_motion
    save_motion(motion, joints=np.zeros((4, 22, 3), np.float32) + np.linspace(0, 1, 22)[None, :, None])
    code = cli.main(["render", str(motion), "--mode", "video", "--out", str(tmp_path / "v.png")])
    err = capsys.readouterr().err
    assert code == 2 and "--mode video writes a .mp4 file" in err and not (tmp_path / "v.png").exists()
