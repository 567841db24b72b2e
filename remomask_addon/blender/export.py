"""Export a keyed armature (the SMPL skeleton or a retargeted rig) with Blender's own exporters.

BVH (``io_anim_bvh``), FBX (``io_scene_fbx``) and glTF binary (``io_scene_gltf2``), all bundled with
Blender. Each export writes to a temporary file beside the target and is renamed into place only when
the exporter finished, so a failed export never leaves a half-written file, and an existing file is
kept unless ``overwrite=True``.
"""

from __future__ import annotations

import os

import bpy

from ..core.atomic import atomic_write

FORMATS = {".bvh": "BVH", ".fbx": "FBX", ".glb": "GLTF", ".gltf": "GLTF"}
_ADDONS = {"BVH": "io_anim_bvh", "FBX": "io_scene_fbx", "GLTF": "io_scene_gltf2"}


class ExportError(Exception):
    """An export that cannot be done; the message is meant for the user."""


def _ensure_addon(fmt: str) -> None:
    import addon_utils

    module = _ADDONS[fmt]
    loaded, enabled = addon_utils.check(module)
    if not enabled:
        if addon_utils.enable(module, default_set=False) is None:
            raise ExportError(f"Blender's {fmt} exporter ({module}) is not available in this Blender.")


def _frame_range(armature, scene) -> tuple[int, int]:
    from .render_presets import motion_frame_range

    return motion_frame_range(scene, armature)


def export_armature(armature, path: str, *, scene=None, frame_range: tuple[int, int] | None = None,
                    overwrite: bool = False, include_mesh: bool = True) -> str:
    """Export ``armature``'s animation to ``path``; the format follows the extension
    (.bvh, .fbx, .glb/.gltf). Returns the absolute path written."""
    if armature is None or getattr(armature, "type", None) != "ARMATURE":
        raise ExportError("Select an armature to export.")
    path = os.path.abspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ExportError(f"Unknown export format '{ext or path}': use .bvh, .fbx or .glb.")
    fmt = FORMATS[ext]
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ExportError(f"Output folder does not exist: {parent}")
    if os.path.exists(path) and not overwrite:
        raise ExportError(f"{path} already exists; choose another name or allow overwriting.")
    scene = scene or bpy.context.scene
    start, end = frame_range or _frame_range(armature, scene)
    _ensure_addon(fmt)
    objects = [armature]
    if include_mesh and fmt != "BVH":
        objects += [c for c in armature.children if c.type == "MESH"]
    view_layer = bpy.context.view_layer
    saved = (scene.frame_start, scene.frame_end, scene.frame_current, view_layer.objects.active,
             [o for o in view_layer.objects if o.select_get()])

    def write(tmp):
        with bpy.context.temp_override(active_object=armature, object=armature, selected_objects=objects,
                                       scene=scene):
            if fmt == "BVH":
                result = bpy.ops.export_anim.bvh(filepath=tmp, check_existing=False, frame_start=int(start),
                                                 frame_end=int(end), global_scale=1.0, rotate_mode="NATIVE",
                                                 root_transform_only=False)
            elif fmt == "FBX":
                result = bpy.ops.export_scene.fbx(filepath=tmp, check_existing=False, use_selection=True,
                                                  object_types={"ARMATURE", "MESH"}, add_leaf_bones=False,
                                                  bake_anim=True, bake_anim_use_all_actions=False,
                                                  bake_anim_use_nla_strips=False, bake_anim_simplify_factor=0.0)
            else:
                result = bpy.ops.export_scene.gltf(filepath=tmp, check_existing=False,
                                                   export_format="GLB" if ext == ".glb" else "GLTF_EMBEDDED",
                                                   use_selection=True, export_animations=True)
        if "FINISHED" not in result or not os.path.getsize(tmp):
            raise ExportError(f"Blender's {fmt} exporter did not finish.")

    try:
        scene.frame_start, scene.frame_end = int(start), int(end)
        for o in saved[4]:
            o.select_set(False)
        for o in objects:
            o.select_set(True)
        view_layer.objects.active = armature
        # the temporary name ends with the real extension: an exporter may add a missing one
        atomic_write(path, write, make_parents=False, suffix=ext)
    except ExportError:
        raise
    except OSError as err:
        raise ExportError(f"Cannot write {path}: {err.strerror or err}") from err
    except Exception as err:  # an exporter error: report it, keep nothing
        raise ExportError(f"{fmt} export failed: {err}") from err
    finally:
        scene.frame_start, scene.frame_end = saved[0], saved[1]
        scene.frame_set(saved[2])
        for o in objects:
            o.select_set(False)
        for o in saved[4]:
            o.select_set(True)
        view_layer.objects.active = saved[3]
    return path
