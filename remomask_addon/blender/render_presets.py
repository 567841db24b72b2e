"""Render presets: a generated motion as an MP4, a PNG sequence, or one "sequence" still.

Used by the add-on's render panel (stepped from a timer, with progress and cancel) and by the command
line (``remomask render``, which runs Blender headless through the ``bpy`` module).

- ``video``: MP4 (H.264) at the motion's length and the scene's fps.
- ``frames``: a PNG sequence (``frame_0001.png`` ...).
- ``sequence``: one still showing the body at K evenly spaced moments along its path, coloured from
  light to dark over time.

Quality presets: ``preview`` (Workbench: fast, flat studio light) and ``final`` (Cycles on the CPU,
EEVEE where a GPU is present). Resolution presets: 360p, 720p, 1080p, square.

Renders show the take: the armature and its body meshes on the stage, with the user's other objects hidden from
the render while it runs (their ``hide_render`` restored exactly afterwards, also on cancel or failure), unless
``include_scene=True``.

Every job renders frame by frame into a hidden temporary folder next to the output and moves the
finished result into place at the end: a cancelled or failed render leaves nothing half-written,
and an existing output is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

import bpy

from ..core import sequence
from .take_placement import frame_range_of

STAGE_COLLECTION = "ReMoMask Stage"
HIGHLIGHT_RGB = (1.0, 0.45, 0.05)  # the figures inside RenderOptions.highlight (an edit's changed frames)
FIGURES_COLLECTION = "ReMoMask Sequence Figures"
MODES = ("video", "frames", "sequence")


class RenderError(Exception):
    """A render that cannot start or could not finish; the message is meant for the user."""


@dataclass(frozen=True)
class QualityPreset:
    engine: str  # "WORKBENCH", "CYCLES" or "EEVEE" (resolved to the engine id of this Blender)
    samples: int
    label: str


QUALITY = {
    "preview": QualityPreset("WORKBENCH", 1, "Workbench, flat studio light (fast)"),
    "final": QualityPreset("CYCLES", 64, "Cycles 64 samples (EEVEE when a GPU is present)"),
}

RESOLUTIONS = {
    "360p": (640, 360),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "square": (1080, 1080),
}


@dataclass
class RenderOptions:
    mode: str = "video"
    quality: str = "preview"
    resolution: str = "720p"
    #: Percentage of the resolution actually rendered (tests and quick looks use small values).
    scale_percent: int = 100
    camera: str = "fit"  # "fit": one camera framing the whole motion; "follow": tracks the root smoothly
    ground: str = "checker"  # "checker", "grid" or "none"
    lights: bool = True
    caption: str | None = None
    #: Number of figures in the ``sequence`` still.
    sequence_count: int = 8
    #: Transparent film (PNG with alpha; the video keeps the world colour). Best with ground="none".
    transparent: bool = False
    #: Keep the stage (camera, lights, ground) in the scene after rendering, e.g. to save it in a .blend.
    keep_stage: bool = False
    #: Render the user's other objects too. Off: only the armature and its body meshes are rendered, on the stage
    #: (everything else is hidden from the render while it runs and restored afterwards).
    include_scene: bool = False
    overwrite: bool = False
    frame_start: int | None = None
    frame_end: int | None = None
    #: A frame range [start, end) the ``sequence`` still shows in a highlight colour with at least a third of its
    #: figures (e.g. the frames an edit changed).
    highlight: tuple | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise RenderError(f"Unknown render mode '{self.mode}': choose one of {', '.join(MODES)}.")
        if self.quality not in QUALITY:
            raise RenderError(f"Unknown quality preset '{self.quality}': choose preview or final.")
        if self.resolution not in RESOLUTIONS:
            raise RenderError(f"Unknown resolution '{self.resolution}': choose one of {', '.join(RESOLUTIONS)}.")
        if not 1 <= int(self.scale_percent) <= 100:
            raise RenderError("scale_percent must be between 1 and 100.")
        if self.camera not in ("fit", "follow"):
            raise RenderError("camera must be 'fit' or 'follow'.")
        if self.ground not in ("checker", "grid", "none"):
            raise RenderError("ground must be 'checker', 'grid' or 'none'.")
        if not 2 <= int(self.sequence_count) <= 64:
            raise RenderError("sequence_count must be between 2 and 64.")


# --------------------------------------------------------------------------------------------- engines
def _engine_ids() -> set[str]:
    return {e.identifier for e in bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items}


def _gpu_available() -> bool:
    """True when Cycles sees a CUDA/OptiX/HIP/Metal/oneAPI device (then EEVEE is usable and fast)."""
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        prefs.refresh_devices()
        return any(d.type in {"CUDA", "OPTIX", "HIP", "METAL", "ONEAPI"} for d in prefs.devices)
    except Exception:  # cycles not available or no device API in this build
        return False


def resolve_engine(quality: str) -> str:
    """The engine id of this Blender for a quality preset."""
    preset = QUALITY[quality]
    ids = _engine_ids()
    if preset.engine == "WORKBENCH":
        return "BLENDER_WORKBENCH"
    if preset.engine == "CYCLES" and _gpu_available():
        for eevee in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"):  # 4.2-4.5 call it EEVEE_NEXT, 5.0 EEVEE
            if eevee in ids:
                return eevee
    return "CYCLES"


def configure_render(scene, options: RenderOptions) -> None:
    """Engine, samples, resolution and colour settings of a quality/resolution preset."""
    r = scene.render
    engine = resolve_engine(options.quality)
    r.engine = engine
    w, h = RESOLUTIONS[options.resolution]
    r.resolution_x, r.resolution_y = w, h
    r.resolution_percentage = int(options.scale_percent)
    r.film_transparent = bool(options.transparent)
    if engine == "BLENDER_WORKBENCH":
        shading = scene.display.shading
        shading.light = "STUDIO"
        shading.color_type = "MATERIAL"
        shading.show_shadows = True
        shading.show_cavity = False
        scene.display.render_aa = "8"
    elif engine == "CYCLES":
        scene.cycles.samples = QUALITY[options.quality].samples
        scene.cycles.device = "GPU" if _gpu_available() else "CPU"
        scene.cycles.use_denoising = True
    else:
        eevee = scene.eevee
        if hasattr(eevee, "taa_render_samples"):
            eevee.taa_render_samples = QUALITY[options.quality].samples
    # Caption burnt in through Blender's render stamp (only the note, no metadata clutter).
    for attr in dir(r):
        if attr.startswith("use_stamp_"):
            try:
                setattr(r, attr, False)
            except (AttributeError, TypeError):
                pass
    if options.caption:
        r.use_stamp = True
        r.use_stamp_note = True
        r.stamp_note_text = options.caption[:200]
        r.stamp_font_size = max(12, int(h * options.scale_percent / 100 / 22))
        r.stamp_foreground = (1.0, 1.0, 1.0, 1.0)
        r.stamp_background = (0.0, 0.0, 0.0, 0.55)
    else:
        r.use_stamp = False


def _set_png(scene) -> None:
    s = scene.render.image_settings
    if "media_type" in s.bl_rna.properties:  # Blender 5.0: choose the media type before the format
        s.media_type = "IMAGE"
    s.file_format = "PNG"
    s.color_mode = "RGBA" if scene.render.film_transparent else "RGB"
    s.color_depth = "8"


def _set_mp4(scene) -> None:
    r = scene.render
    s = r.image_settings
    if "media_type" in s.bl_rna.properties:
        s.media_type = "VIDEO"
    s.file_format = "FFMPEG"
    r.ffmpeg.format = "MPEG4"
    r.ffmpeg.codec = "H264"
    r.ffmpeg.constant_rate_factor = "HIGH"
    r.ffmpeg.ffmpeg_preset = "GOOD"
    r.ffmpeg.audio_codec = "NONE"


# ------------------------------------------------------------------------------------ motion bounds
def _figure_parts(armature):
    """The meshes deformed by the armature (its children with an Armature modifier on it)."""
    meshes = []
    for child in armature.children_recursive if hasattr(armature, "children_recursive") else armature.children:
        if child.type != "MESH":
            continue
        if any(m.type == "ARMATURE" and m.object == armature for m in child.modifiers) or child.parent == armature:
            meshes.append(child)
    return meshes


def sample_points(scene, armature, frames) -> np.ndarray:
    """World positions of every bone's head and tail at the given frames: (F, 2*bones, 3)."""
    out = []
    current = scene.frame_current
    try:
        for f in frames:
            scene.frame_set(int(f))
            mw = armature.matrix_world
            pts = []
            for pb in armature.pose.bones:
                pts.append(tuple(mw @ pb.head))
                pts.append(tuple(mw @ pb.tail))
            out.append(pts)
    finally:
        scene.frame_set(current)
    return np.asarray(out, dtype=np.float64)


def _body_pad(armature) -> float:
    """Half the body's thickness around the bones, in world units (mesh hull beyond the bone line)."""
    scale = max(armature.matrix_world.to_scale())
    return 0.15 * scale


def motion_frame_range(scene, armature) -> tuple[int, int]:
    """The frame range of the armature's animation (action or NLA strips), else the scene's."""
    rng = frame_range_of(armature)
    return rng if rng is not None else (scene.frame_start, scene.frame_end)


# ------------------------------------------------------------------------------------------- camera
def _view_direction(points: np.ndarray) -> np.ndarray:
    """Unit vector from the scene towards the camera, horizontal part only, for a motion's points.

    Motions that travel are seen from the side of their main direction of travel (the side the figure
    faces more); motions in place are seen from a 3/4 front view (figures face -Y in Blender)."""
    roots = points[:, 0, :2]  # first point is the root bone's head
    travel = roots - roots.mean(axis=0)
    front = np.array([0.35, -1.0])
    front /= np.linalg.norm(front)
    if len(roots) > 1 and np.ptp(roots, axis=0).max() > 1.0:
        _, _, vt = np.linalg.svd(travel, full_matrices=False)
        axis = vt[0]
        side = np.array([-axis[1], axis[0]])
        if side @ np.array([0.0, -1.0]) < 0:  # prefer the side nearer the figure's front view
            side = -side
        d = 0.8 * side + 0.2 * front
    else:
        d = front
    d = d / np.linalg.norm(d)
    return d


def camera_basis(view_dir_xy: np.ndarray, elevation_deg: float = 12.0):
    """(forward, right, up) unit vectors of a camera looking back along view_dir, tilted down."""
    e = math.radians(elevation_deg)
    to_cam = np.array([view_dir_xy[0] * math.cos(e), view_dir_xy[1] * math.cos(e), math.sin(e)])
    forward = -to_cam
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return forward, right, up


def fit_distance(points: np.ndarray, center: np.ndarray, forward, right, up, tan_h: float, tan_v: float,
                 margin: float = 0.08) -> float:
    """The smallest distance back from ``center`` along ``-forward`` at which every point lies inside
    the view with the given margin (fraction of the half-size of the frame)."""
    rel = points.reshape(-1, 3) - center
    x, y, z = rel @ right, rel @ up, rel @ forward
    th, tv = tan_h * (1.0 - margin), tan_v * (1.0 - margin)
    need = np.maximum(np.abs(x) / th, np.abs(y) / tv) - z
    return float(max(need.max(), 0.5))


def _look_rotation(forward, up):
    from mathutils import Matrix

    back = -np.asarray(forward)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    up2 = np.cross(back, right)
    m = Matrix(((right[0], up2[0], back[0]), (right[1], up2[1], back[1]), (right[2], up2[2], back[2])))
    return m.to_euler()


def _half_tangents(scene, cam_data) -> tuple[float, float]:
    r = scene.render
    w = r.resolution_x * r.pixel_aspect_x
    h = r.resolution_y * r.pixel_aspect_y
    cam_data.sensor_fit = "AUTO"
    # AUTO: the sensor width spans the larger image dimension.
    t = math.tan(cam_data.angle / 2.0)
    if w >= h:
        return t, t * h / w
    return t * w / h, t


# -------------------------------------------------------------------------------------------- stage
def _stage_collection(scene):
    coll = bpy.data.collections.get(STAGE_COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(STAGE_COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    return coll


def _material(name: str, rgb) -> bpy.types.Material:
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    rgba = (float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0)
    mat.diffuse_color = rgba  # Workbench (colour type MATERIAL)
    mat.use_nodes = True
    bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = rgba
        bsdf.inputs["Roughness"].default_value = 0.6
    return mat


def _ground(coll, bounds_min, bounds_max, style: str):
    import bmesh

    pad = 2.0
    x0, y0 = bounds_min[0] - pad, bounds_min[1] - pad
    x1, y1 = bounds_max[0] + pad, bounds_max[1] + pad
    cell = 0.5
    nx = max(2, int(math.ceil((x1 - x0) / cell)))
    ny = max(2, int(math.ceil((y1 - y0) / cell)))
    nx, ny = min(nx, 400), min(ny, 400)
    mesh = bpy.data.meshes.new("ReMoMask Ground")
    bm = bmesh.new()
    verts = [[bm.verts.new((x0 + i * cell, y0 + j * cell, 0.0)) for j in range(ny + 1)] for i in range(nx + 1)]
    for i in range(nx):
        for j in range(ny):
            f = bm.faces.new((verts[i][j], verts[i + 1][j], verts[i + 1][j + 1], verts[i][j + 1]))
            f.material_index = (i + j) % 2 if style == "checker" else 0
    bm.to_mesh(mesh)
    bm.free()
    light, dark = (0.78, 0.78, 0.78), (0.55, 0.55, 0.57)
    mesh.materials.append(_material("ReMoMask Ground A", light))
    mesh.materials.append(_material("ReMoMask Ground B", dark))
    obj = bpy.data.objects.new("ReMoMask Ground", mesh)
    coll.objects.link(obj)
    if style == "grid":
        wire = obj.modifiers.new("grid lines", "WIREFRAME")
        wire.thickness = 0.01
        wire.use_replace = False
        wire.material_offset = 1
    return obj


def _three_point_lights(coll, center, forward, right, distance):
    """Key (front-left, high), fill (front-right, low, soft) and rim (behind) area lights."""
    specs = [
        ("ReMoMask Key", -0.7, 0.9, 0.8, 900.0, 3.0),
        ("ReMoMask Fill", 0.9, 0.6, 0.25, 300.0, 4.0),
        ("ReMoMask Rim", 0.2, -1.0, 0.9, 600.0, 2.0),
    ]
    made = []
    back = -np.asarray(forward)
    for name, side, front, height, power, size in specs:
        pos = np.asarray(center) + distance * (side * np.asarray(right) + front * back) + [0, 0, distance * height]
        data = bpy.data.lights.new(name, "AREA")
        data.energy = power * max(1.0, distance / 5.0) ** 2
        data.size = size
        obj = bpy.data.objects.new(name, data)
        obj.location = pos
        obj.rotation_euler = _look_rotation(np.asarray(center) - pos, [0.0, 0.0, 1.0])
        coll.objects.link(obj)
        made.append(obj)
    return made


def _world(scene):
    world = scene.world or bpy.data.worlds.new("ReMoMask World")
    scene.world = world
    world.color = (0.9, 0.92, 0.95)
    world.use_nodes = True
    bg = next((n for n in world.node_tree.nodes if n.type == "BACKGROUND"), None)
    if bg is not None:
        bg.inputs["Color"].default_value = (0.8, 0.84, 0.9, 1.0)
        bg.inputs["Strength"].default_value = 0.6


def clear_stage(scene=None) -> None:
    """Remove the stage objects made by ``build_stage`` (camera, lights, ground) and their data."""
    coll = bpy.data.collections.get(STAGE_COLLECTION)
    if coll is None:
        return
    for obj in list(coll.objects):
        data = obj.data
        bpy.data.objects.remove(obj, do_unlink=True)
        if data is None or data.users:
            continue
        if isinstance(data, bpy.types.Camera):
            bpy.data.cameras.remove(data)
        elif isinstance(data, bpy.types.Light):
            bpy.data.lights.remove(data)
        elif isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)
    bpy.data.collections.remove(coll)


def build_stage(scene, armature, options: RenderOptions, frames, points: np.ndarray | None = None):
    """Camera (fit or follow), ground and lights for an animated armature over ``frames``.

    ``points`` (F, N, 3) may be given (e.g. the sequence still's figures); otherwise the armature's
    bone points are sampled at ``frames``. Returns the camera object."""
    clear_stage(scene)
    coll = _stage_collection(scene)
    if points is None:
        points = sample_points(scene, armature, frames)
    pad = _body_pad(armature)
    lo = points.reshape(-1, 3).min(axis=0) - pad
    hi = points.reshape(-1, 3).max(axis=0) + pad
    lo[2] = min(lo[2], 0.0)

    cam_data = bpy.data.cameras.new("ReMoMask Camera")
    cam_data.lens = 50.0
    cam = bpy.data.objects.new("ReMoMask Camera", cam_data)
    coll.objects.link(cam)
    scene.camera = cam
    tan_h, tan_v = _half_tangents(scene, cam_data)
    view = _view_direction(points)
    forward, right, up = camera_basis(view)
    cam.rotation_euler = _look_rotation(forward, up)

    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    if options.camera == "fit":
        center = (lo + hi) / 2.0
        dist = fit_distance(corners, center, forward, right, up, tan_h, tan_v)
        cam.location = center - forward * dist
    else:
        # Follow: a per-frame body box around a smoothed root; one distance that fits the largest.
        roots = points[:, 0, :].copy()
        k = max(1, int(round(scene.render.fps / max(scene.render.fps_base, 1e-6))))
        kernel = np.ones(k) / k
        smooth = np.stack([np.convolve(np.pad(roots[:, i], (k // 2, k - 1 - k // 2), mode="edge"), kernel,
                                       mode="valid") for i in range(3)], axis=1)
        dist = 0.5
        for f in range(len(points)):
            box = points[f] - smooth[f]
            bl, bh = box.min(axis=0) - pad, box.max(axis=0) + pad
            bl[2] = min(bl[2], -smooth[f][2])
            c = np.array([[x, y, z] for x in (bl[0], bh[0]) for y in (bl[1], bh[1]) for z in (bl[2], bh[2])])
            dist = max(dist, fit_distance(c, (bl + bh) / 2.0, forward, right, up, tan_h, tan_v))
        mid_offset = np.array([0.0, 0.0, (hi[2] + lo[2]) / 2.0])
        for f, frame in enumerate(frames):
            target = np.array([smooth[f][0], smooth[f][1], 0.0]) + mid_offset
            cam.location = target - forward * dist
            cam.keyframe_insert("location", frame=int(frame))
    cam_data.clip_start = 0.05
    cam_data.clip_end = max(100.0, 4.0 * dist)
    if options.ground != "none":
        _ground(coll, lo, hi, options.ground)
    if options.lights:
        _three_point_lights(coll, (lo + hi) / 2.0, forward, right, max(4.0, dist * 0.6))
    _world(scene)
    return cam


# ---------------------------------------------------------------------------------------- the job
def check_output(path: str, overwrite: bool, is_dir: bool = False) -> None:
    """Refuse an output whose folder is missing or not writable, or that exists (unless ``overwrite``)."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(parent):
        raise RenderError(f"Output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RenderError(f"No permission to write in {parent}")
    if os.path.exists(path) and not overwrite:
        kind = "folder" if is_dir else "file"
        raise RenderError(f"{path} already exists; choose another name or allow overwriting ({kind} kept).")


def default_output_name(mode: str, stem: str) -> str:
    return {"video": f"{stem}.mp4", "frames": f"{stem}_frames", "sequence": f"{stem}_sequence.png"}[mode]


class RenderJob:
    """A render that advances one frame per ``step()``; ``run()`` does all steps.

    ``progress`` is ``done / total``. ``cancel()`` stops at the next step and removes the temporary
    files; the target path is only ever written by a final rename."""

    def __init__(self, scene, armature, out_path: str, options: RenderOptions):
        options.validate()
        if armature is None or armature.type != "ARMATURE":
            raise RenderError("Select the armature to render (a generated or imported motion).")
        self.scene, self.armature, self.options = scene, armature, options
        self.out_path = os.path.abspath(out_path)
        check_output(self.out_path, options.overwrite, is_dir=options.mode == "frames")
        lo, hi = motion_frame_range(scene, armature)
        self.frame_start = options.frame_start if options.frame_start is not None else lo
        self.frame_end = options.frame_end if options.frame_end is not None else hi
        if self.frame_end < self.frame_start:
            raise RenderError(f"Empty frame range {self.frame_start}..{self.frame_end}.")
        parent = os.path.dirname(self.out_path)
        try:
            self.tmp = tempfile.mkdtemp(prefix=".remomask-render-", dir=parent)
        except OSError as err:
            raise RenderError(f"Cannot write in {parent}: {err.strerror or err}") from err
        self._saved = _save_render_settings(scene)
        self._hidden: list = []
        self._scene_hidden: list = []  # (object, its hide_render) of the user's objects hidden for the render
        self._copies: list = []
        self._figures_coll = None
        self.cancelled = False
        self.finished = False
        self.error: str | None = None
        self.done = 0
        try:
            if not options.include_scene:
                self._hide_the_scene()
            configure_render(scene, options)
            if options.mode == "sequence":
                self._choose_sequence_frames()
                self.total = 2
                points = self._make_sequence_figures()
                build_stage(scene, armature, options, self._frames, points=points)
            else:
                self._frames = list(range(self.frame_start, self.frame_end + 1))
                self.total = len(self._frames) + (1 if options.mode == "video" else 0)
                build_stage(scene, armature, options, self._frames)
        except Exception:
            self._finish(success=False)
            raise

    # -- the take without the scene ------------------------------------------------------------
    def _hide_the_scene(self) -> None:
        """Hide every object of the scene from the render but the armature and what it moves (its children, and
        meshes with an Armature modifier on it); ``_finish`` restores each one's exact ``hide_render``."""
        arm = self.armature
        keep = {arm.name} | {c.name for c in arm.children_recursive}
        stage = bpy.data.collections.get(STAGE_COLLECTION)
        for obj in self.scene.objects:
            if obj.name in keep or (stage is not None and obj.name in stage.objects):
                continue
            if obj.type == "MESH" and any(m.type == "ARMATURE" and m.object == arm for m in obj.modifiers):
                continue
            self._scene_hidden.append((obj, obj.hide_render))
            obj.hide_render = True

    # -- sequence still ------------------------------------------------------------------------
    def _choose_sequence_frames(self) -> None:
        """The figures' frames and their side-by-side offsets (core.sequence: even spacing along a path that
        travels; in place, the moments that show the action, spread along the camera's horizontal axis)."""
        every = list(range(self.frame_start, self.frame_end + 1))
        pts = sample_points(self.scene, self.armature, every)
        hl = self.options.highlight
        idx = sequence.choose_frames(pts, self.options.sequence_count,
                                     None if hl is None else (hl[0] - self.frame_start, hl[1] - self.frame_start))
        self._frames = [every[i] for i in idx]
        right = camera_basis(_view_direction(pts[idx]))[1]
        width = sequence.figure_width(pts[idx], right[:2], pad=2 * _body_pad(self.armature))
        self._offsets = sequence.spread_offsets(pts[idx, 0, :2], right[:2], width)

    def _make_sequence_figures(self) -> np.ndarray:
        scene, arm = self.scene, self.armature
        meshes = _figure_parts(arm)
        if not meshes:
            raise RenderError(f"'{arm.name}' has no body mesh to show; import it with a mannequin.")
        coll = bpy.data.collections.new(FIGURES_COLLECTION)
        scene.collection.children.link(coll)
        self._figures_coll = coll
        figures = []  # per figure: world vertices (subsampled), same count for every figure
        n = len(self._frames)
        light, dark = np.array([0.80, 0.88, 1.00]), np.array([0.04, 0.13, 0.42])
        current = scene.frame_current
        for i, frame in enumerate(self._frames):
            scene.frame_set(frame)
            dg = bpy.context.evaluated_depsgraph_get()
            t = i / max(n - 1, 1)
            hl = self.options.highlight
            colour = np.array(HIGHLIGHT_RGB) if hl is not None and hl[0] <= frame < hl[1] else light * (1 - t) + dark * t
            mat = _material(f"ReMoMask Sequence {i:02d}", colour)
            dx, dy = self._offsets[i]
            verts = []
            for m in meshes:
                mesh = bpy.data.meshes.new_from_object(m.evaluated_get(dg), preserve_all_data_layers=False,
                                                       depsgraph=dg)
                mesh.materials.clear()
                mesh.materials.append(mat)
                obj = bpy.data.objects.new(f"ReMoMask Sequence {i:02d}", mesh)
                mw = m.matrix_world.copy()
                mw.translation.x += dx
                mw.translation.y += dy
                obj.matrix_world = mw
                coll.objects.link(obj)
                self._copies.append(obj)
                co = np.empty(len(mesh.vertices) * 3)
                mesh.vertices.foreach_get("co", co)
                mw = np.array(obj.matrix_world)
                verts.append((co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3])[:: max(1, len(mesh.vertices) // 300)])
            figures.append(np.concatenate(verts, axis=0))
        scene.frame_set(current)
        for m in meshes + [arm]:
            self._hidden.append((m, m.hide_render))
            m.hide_render = True
        figures = np.stack(figures)  # (K, N, 3)
        # build_stage reads row [:, 0] as the root path: prepend each figure's centre.
        return np.concatenate([figures.mean(axis=1, keepdims=True), figures], axis=1)

    # -- stepping --------------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        return self.done / max(self.total, 1)

    def cancel(self) -> None:
        self.cancelled = True

    def step(self) -> bool:
        """Render the next piece. Returns True while there is more to do."""
        if self.finished:
            return False
        try:
            if self.cancelled:
                self._finish(success=False)
                return False
            mode = self.options.mode
            if mode == "sequence":
                if self.done == 0:
                    self._render_still(self.scene.frame_start, os.path.join(self.tmp, "sequence.png"))
                else:
                    self._commit(os.path.join(self.tmp, "sequence.png"))
            elif self.done < len(self._frames):
                frame = self._frames[self.done]
                self._render_still(frame, os.path.join(self.tmp, "frames", f"frame_{frame:04d}.png"))
            elif mode == "frames":
                pass
            else:
                self._encode_mp4()
            self.done += 1
            if self.done >= self.total:
                if mode == "frames":
                    self._commit(os.path.join(self.tmp, "frames"))
                elif mode == "video":
                    self._commit(os.path.join(self.tmp, "video.mp4"))
                self._finish(success=True)
                return False
            return True
        except RenderError as err:
            self.error = str(err)
            self._finish(success=False)
            raise
        except Exception as err:  # a Blender error mid-render: report it, clean up
            self.error = f"Render failed: {err}"
            self._finish(success=False)
            raise RenderError(self.error) from err

    def run(self, progress=None) -> str:
        while self.step():
            if progress is not None:
                progress(self.progress)
        if self.cancelled:
            raise RenderError("Render cancelled; nothing was written.")
        return self.out_path

    def _render_still(self, frame: int, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        scene = self.scene
        scene.frame_set(frame)
        _set_png(scene)
        scene.render.filepath = path
        scene.render.use_file_extension = False
        bpy.ops.render.render(write_still=True)
        if not os.path.isfile(path):
            raise RenderError(f"Blender did not write frame {frame}.")

    def _encode_mp4(self) -> None:
        """Encode the rendered PNG frames to H.264 with Blender's own FFmpeg (a sequencer scene)."""
        frames_dir = os.path.join(self.tmp, "frames")
        files = sorted(f for f in os.listdir(frames_dir) if f.endswith(".png"))
        enc = bpy.data.scenes.new("ReMoMask Encode")
        try:
            enc.render.fps = self.scene.render.fps
            enc.render.fps_base = self.scene.render.fps_base
            enc.render.resolution_x = self.scene.render.resolution_x
            enc.render.resolution_y = self.scene.render.resolution_y
            enc.render.resolution_percentage = self.scene.render.resolution_percentage
            ed = enc.sequence_editor_create()
            strips = ed.strips if hasattr(ed, "strips") else ed.sequences
            strip = strips.new_image("frames", os.path.join(frames_dir, files[0]), 1, 1)
            for name in files[1:]:
                strip.elements.append(name)
            enc.frame_start = 1
            enc.frame_end = len(files)
            _set_mp4(enc)
            enc.render.use_stamp = False
            enc.render.use_sequencer = True
            out = os.path.join(self.tmp, "video.mp4")
            enc.render.filepath = out
            enc.render.use_file_extension = False
            with bpy.context.temp_override(scene=enc):
                bpy.ops.render.render(animation=True, scene=enc.name)
            if not os.path.isfile(out):
                raise RenderError("Blender's FFmpeg did not write the video (is this Blender built with FFmpeg?).")
        finally:
            bpy.data.scenes.remove(enc)

    def _commit(self, src: str) -> None:
        dst = self.out_path
        if os.path.exists(dst):
            if not self.options.overwrite:
                raise RenderError(f"{dst} appeared while rendering; kept it and discarded the render.")
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            else:
                os.remove(dst)
        os.replace(src, dst)

    def _finish(self, success: bool) -> None:
        self.finished = True
        for obj in self._copies:
            mesh = obj.data
            bpy.data.objects.remove(obj, do_unlink=True)
            if mesh is not None and mesh.users == 0:
                bpy.data.meshes.remove(mesh)
        self._copies.clear()
        if self._figures_coll is not None:
            bpy.data.collections.remove(self._figures_coll)
            self._figures_coll = None
        for obj, hidden in self._hidden:
            obj.hide_render = hidden
        self._hidden.clear()
        for obj, hidden in self._scene_hidden:
            try:
                obj.hide_render = hidden
            except ReferenceError:  # removed while rendering (a script): nothing to restore
                pass
        self._scene_hidden.clear()
        keep = success and self.options.keep_stage
        if not keep:
            clear_stage(self.scene)
        _restore_render_settings(self.scene, self._saved)
        if keep:
            self.scene.camera = bpy.data.objects.get("ReMoMask Camera")
        shutil.rmtree(self.tmp, ignore_errors=True)


_SAVED_RENDER = ("filepath", "use_file_extension", "engine", "resolution_x", "resolution_y",
                 "resolution_percentage", "film_transparent", "use_stamp", "stamp_note_text", "stamp_font_size",
                 "use_stamp_note")
_SAVED_IMAGE = ("file_format", "color_mode", "color_depth")


def _save_render_settings(scene) -> dict:
    r = scene.render
    return {
        "render": {a: getattr(r, a) for a in _SAVED_RENDER},
        "image": {a: getattr(r.image_settings, a) for a in _SAVED_IMAGE},
        "media_type": getattr(r.image_settings, "media_type", None),
        "camera": scene.camera,
        "frame_current": scene.frame_current,
    }


def _restore_render_settings(scene, saved: dict) -> None:
    r = scene.render
    if saved["media_type"] is not None:
        r.image_settings.media_type = saved["media_type"]
    for a, v in saved["image"].items():
        try:
            setattr(r.image_settings, a, v)
        except (TypeError, ValueError):  # a value the restored format does not offer
            pass
    for a, v in saved["render"].items():
        setattr(r, a, v)
    try:
        scene.camera = saved["camera"]
    except ReferenceError:
        scene.camera = None
    scene.frame_set(saved["frame_current"])


def render_motion(scene, armature, out_path: str, options: RenderOptions, progress=None) -> str:
    """Render synchronously (command line, tests). Returns the written path."""
    return RenderJob(scene, armature, out_path, options).run(progress)
