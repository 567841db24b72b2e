"""Render presets, headless: every mode writes what it should, nothing is half-written or overwritten."""

from __future__ import annotations

import os

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from remomask_addon.blender import motion_to_armature, render_presets as rp  # noqa: E402
from tests.addon_keying.conftest import make_motion  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # the render suite

SMALL = dict(resolution="360p", scale_percent=25)  # 160 x 90: the mode logic, not the pixels, is tested


@pytest.fixture
def walker():
    """An SMPL armature with a mannequin, keyed with a 2.4 s walk that travels about 3 m."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    motion = make_motion(T=48, speed=1.3, turn=0.0, amp=0.2)
    arm, _ = motion_to_armature.import_motion(bpy.context, motion)
    yield scene, arm
    bpy.ops.wm.read_homefile(use_empty=True)


def _image_pixels(path):
    img = bpy.data.images.load(path)
    try:
        w, h = img.size
        px = np.empty(w * h * 4, dtype=np.float32)
        img.pixels.foreach_get(px)
        return px.reshape(h, w, 4)
    finally:
        bpy.data.images.remove(img)


def test_video_has_the_motions_frame_count(walker, tmp_path):
    scene, arm = walker
    lo, hi = rp.motion_frame_range(scene, arm)
    out = tmp_path / "walk.mp4"
    rp.render_motion(scene, arm, str(out), rp.RenderOptions(mode="video", caption="a person walks", **SMALL))
    assert out.is_file() and out.stat().st_size > 1000
    clip = bpy.data.movieclips.load(str(out))
    assert clip.frame_duration == hi - lo + 1
    assert tuple(clip.size) == (160, 90)
    assert sorted(os.listdir(tmp_path)) == ["walk.mp4"]  # no temporary folder left behind


def test_frames_mode_writes_one_png_per_frame(walker, tmp_path):
    scene, arm = walker
    lo, hi = rp.motion_frame_range(scene, arm)
    out = tmp_path / "walk_frames"
    rp.render_motion(scene, arm, str(out), rp.RenderOptions(mode="frames", **SMALL))
    files = sorted(os.listdir(out))
    assert files == [f"frame_{f:04d}.png" for f in range(lo, hi + 1)]
    px = _image_pixels(str(out / files[0]))
    assert px.shape == (90, 160, 4)


def test_sequence_still_shows_k_separate_figures_inside_the_frame(walker, tmp_path):
    scene, arm = walker
    k = 4
    out = tmp_path / "seq.png"
    opts = rp.RenderOptions(mode="sequence", sequence_count=k, ground="none", transparent=True,
                            resolution="720p", scale_percent=25)
    rp.render_motion(scene, arm, str(out), opts)
    px = _image_pixels(str(out))
    h, w = px.shape[:2]
    mask = px[..., 3] > 0.5
    ys, xs = np.nonzero(mask)
    assert mask.sum() > 200
    margin = 2
    assert xs.min() >= margin and xs.max() <= w - 1 - margin, "figure touches the left/right edge"
    assert ys.min() >= margin and ys.max() <= h - 1 - margin, "figure touches the top/bottom edge"
    # The walk travels ~3 m and the camera looks from the side: the K figures are separate blobs
    # along the image's x axis (runs of occupied columns).
    cols = mask.any(axis=0).astype(int)
    runs = int(cols[0]) + int(np.sum(np.diff(cols) == 1))
    assert runs == k
    # Coloured light to dark over time: the mean brightness of each blob decreases monotonically
    # in the direction of travel.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], cols, [0]])))
    blobs = [px[:, a:b][mask[:, a:b]][:, :3].mean() for a, b in zip(edges[::2], edges[1::2])]
    order = np.argsort(blobs)
    assert list(order) in (list(range(k)), list(range(k))[::-1])
    # The scene is as before: figures removed, the armature visible again, no stage left.
    assert "ReMoMask Sequence Figures" not in bpy.data.collections
    assert rp.STAGE_COLLECTION not in bpy.data.collections
    assert not arm.hide_render


def test_existing_output_is_kept_unless_overwrite(walker, tmp_path):
    scene, arm = walker
    out = tmp_path / "seq.png"
    out.write_bytes(b"precious")
    opts = rp.RenderOptions(mode="sequence", sequence_count=2, **SMALL)
    with pytest.raises(rp.RenderError, match="already exists"):
        rp.render_motion(scene, arm, str(out), opts)
    assert out.read_bytes() == b"precious"
    opts.overwrite = True
    rp.render_motion(scene, arm, str(out), opts)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cancel_mid_render_writes_nothing_and_restores_the_scene(walker, tmp_path):
    scene, arm = walker
    scene.render.engine = "CYCLES"
    scene.render.resolution_x, scene.render.resolution_y = 333, 222
    camera_before = scene.camera
    job = rp.RenderJob(scene, arm, str(tmp_path / "walk.mp4"), rp.RenderOptions(mode="video", **SMALL))
    assert job.step() and job.step()
    assert 0 < job.progress < 1
    job.cancel()
    assert job.step() is False
    with pytest.raises(rp.RenderError, match="cancelled"):
        job.run()
    assert os.listdir(tmp_path) == []
    assert scene.render.engine == "CYCLES"
    assert (scene.render.resolution_x, scene.render.resolution_y) == (333, 222)
    assert scene.camera == camera_before
    assert rp.STAGE_COLLECTION not in bpy.data.collections


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(mode="gif"), "Unknown render mode"),
        (dict(quality="ultra"), "Unknown quality"),
        (dict(resolution="8k"), "Unknown resolution"),
        (dict(sequence_count=1), "sequence_count"),
    ],
)
def test_bad_options_are_refused_before_anything_happens(walker, tmp_path, options, message):
    scene, arm = walker
    with pytest.raises(rp.RenderError, match=message):
        rp.RenderJob(scene, arm, str(tmp_path / "x"), rp.RenderOptions(**options))
    assert os.listdir(tmp_path) == []


def test_unwritable_or_missing_folder_gives_a_clear_error(walker, tmp_path, monkeypatch):
    scene, arm = walker
    with pytest.raises(rp.RenderError, match="does not exist"):
        rp.RenderJob(scene, arm, str(tmp_path / "missing" / "walk.mp4"), rp.RenderOptions(**SMALL))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root ignores permission bits, so the refusal is simulated where the job first writes.
    monkeypatch.setattr(rp.tempfile, "mkdtemp", refuse)
    with pytest.raises(rp.RenderError, match="Cannot write in .*Permission denied"):
        rp.RenderJob(scene, arm, str(tmp_path / "walk.mp4"), rp.RenderOptions(**SMALL))
    assert os.listdir(tmp_path) == []


def test_sequence_still_spreads_a_motion_in_place_and_marks_a_highlight(tmp_path):
    """A motion that stays in place used to stack its figures on one spot (issue #13 item 8): they are now
    spread side by side along the camera's horizontal axis (separate blobs), and a highlighted frame range (an
    edit's hole) is drawn in the highlight colour."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 20
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=40, speed=0.0, turn=0.0, amp=0.3))
    k = 4
    lo, hi = rp.motion_frame_range(scene, arm)
    out = tmp_path / "seq.png"
    opts = rp.RenderOptions(mode="sequence", sequence_count=k, ground="none", transparent=True,
                            resolution="720p", scale_percent=25, highlight=(lo + 10, lo + 30))
    rp.render_motion(scene, arm, str(out), opts)
    px = _image_pixels(str(out))
    mask = px[..., 3] > 0.5
    cols = mask.any(axis=0).astype(int)
    runs = int(cols[0]) + int(np.sum(np.diff(cols) == 1))
    assert runs == k, runs
    rgb = px[..., :3][mask]
    orange = (rgb[:, 0] > 1.5 * rgb[:, 2]) & (rgb[:, 0] > 0.2)
    assert orange.mean() > 0.15, orange.mean()  # at least a third of the figures are highlighted
    assert not arm.hide_render and "ReMoMask Sequence Figures" not in bpy.data.collections
    bpy.ops.wm.read_homefile(use_empty=True)


def test_sequence_without_a_body_mesh_is_refused_cleanly(tmp_path):
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    arm, _ = motion_to_armature.import_motion(bpy.context, make_motion(T=20), with_mannequin=False)
    with pytest.raises(rp.RenderError, match="no body mesh"):
        rp.RenderJob(scene, arm, str(tmp_path / "s.png"), rp.RenderOptions(mode="sequence", **SMALL))
    assert os.listdir(tmp_path) == []
    assert rp.STAGE_COLLECTION not in bpy.data.collections


def test_fit_distance_keeps_every_point_inside_the_view():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-2, 2, size=(200, 3))
    forward, right, up = rp.camera_basis(np.array([0.3, -1.0]) / np.hypot(0.3, 1.0))
    center = pts.mean(axis=0)
    tan_h, tan_v = 0.4, 0.225
    d = rp.fit_distance(pts, center, forward, right, up, tan_h, tan_v, margin=0.1)
    cam = center - forward * d
    rel = pts - cam
    z = rel @ forward
    assert np.all(z > 0)
    assert np.all(np.abs(rel @ right) / z <= tan_h * 0.9 + 1e-9)
    assert np.all(np.abs(rel @ up) / z <= tan_v * 0.9 + 1e-9)
    # and it is tight: some point touches the margin
    assert max((np.abs(rel @ right) / z / (tan_h * 0.9)).max(), (np.abs(rel @ up) / z / (tan_v * 0.9)).max()) > 0.999


def _red_cube_in_front_of_the_camera(scene, arm, options, probe):
    """A big red cube 1.5 m in front of the camera the job will use (found by starting the same job and
    cancelling it), plus two more objects whose hide_render states the render must restore exactly."""
    job = rp.RenderJob(scene, arm, str(probe), options)
    bpy.context.view_layer.update()
    cam = scene.camera.matrix_world.copy()
    job.cancel()
    job.step()
    forward = -(cam.to_3x3() @ __import__("mathutils").Vector((0.0, 0.0, 1.0)))
    mesh = bpy.data.meshes.new("Wall")
    obj = bpy.data.objects.new("Wall", mesh)
    scene.collection.objects.link(obj)
    import bmesh
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.2)
    bm.to_mesh(mesh)
    bm.free()
    red = bpy.data.materials.new("Red")
    red.diffuse_color = (1.0, 0.0, 0.0, 1.0)
    mesh.materials.append(red)
    obj.location = cam.translation + 1.5 * forward
    hidden = bpy.data.objects.new("Already hidden", bpy.data.meshes.new("Already hidden"))
    scene.collection.objects.link(hidden)
    hidden.hide_render = True
    empty = bpy.data.objects.new("An empty", None)
    scene.collection.objects.link(empty)
    return obj


def _red_fraction(path):
    px = _image_pixels(str(path))
    red = (px[..., 0] > 0.35) & (px[..., 1] < 0.2) & (px[..., 2] < 0.2) & (px[..., 3] > 0.5)
    return float(red.mean())


def _hide_render_states():
    return {o.name: o.hide_render for o in bpy.data.objects}


def test_renders_show_the_take_not_the_rest_of_the_scene(walker, tmp_path):
    """Issue #13 item 7: a big cube in front of the camera is in the picture only with include_scene."""
    scene, arm = walker
    opts = dict(mode="sequence", sequence_count=3, ground="none", transparent=True, resolution="720p",
                scale_percent=25)
    _red_cube_in_front_of_the_camera(scene, arm, rp.RenderOptions(**opts), tmp_path / "probe.png")
    states = _hide_render_states()
    assert states["Wall"] is False and states["Already hidden"] is True
    rp.render_motion(scene, arm, str(tmp_path / "with.png"), rp.RenderOptions(include_scene=True, **opts))
    rp.render_motion(scene, arm, str(tmp_path / "take.png"), rp.RenderOptions(**opts))
    assert _red_fraction(tmp_path / "with.png") > 0.3          # the cube covers much of the picture
    assert _red_fraction(tmp_path / "take.png") == 0.0         # only the take
    assert _image_pixels(str(tmp_path / "take.png"))[..., 3].mean() > 0.01     # and the take is there
    assert _hide_render_states() == states
    # a frame of the preview: the same
    frame = dict(mode="frames", frame_start=10, frame_end=10, **SMALL)
    rp.render_motion(scene, arm, str(tmp_path / "frame"), rp.RenderOptions(**frame))
    assert _red_fraction(tmp_path / "frame" / "frame_0010.png") == 0.0
    assert _hide_render_states() == states


def test_hidden_objects_are_restored_on_cancel_and_failure(walker, tmp_path, monkeypatch):
    scene, arm = walker
    opts = rp.RenderOptions(mode="frames", **SMALL)
    _red_cube_in_front_of_the_camera(scene, arm, opts, tmp_path / "probe")
    states = _hide_render_states()
    job = rp.RenderJob(scene, arm, str(tmp_path / "f"), opts)
    assert bpy.data.objects["Wall"].hide_render and not arm.hide_render        # hidden while rendering
    assert job.step()
    job.cancel()
    job.step()
    assert _hide_render_states() == states

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    job = rp.RenderJob(scene, arm, str(tmp_path / "f"), opts)
    monkeypatch.setattr(job, "_render_still", broken)
    with pytest.raises(rp.RenderError, match="out of memory"):
        job.run()
    assert _hide_render_states() == states
    assert os.listdir(tmp_path) == []
