"""A new user's first session, run by ``test_zip_to_render.py`` in its own Blender process (the bpy module) with a
fresh Blender user folder and no repository on any path: install the extension zip, press *Set up backend* (pip
for real), *Check Backend*, generate with the starter model, render a preview video. Writes what it saw as JSON
(and the keyed joints as .npy) for the test to check.

    python zip_to_render.py <extension zip> <output folder>
"""

import json
import os
import sys
import time
from pathlib import Path

# The test environment has the project installed editable (a checkout on sys.path), as has this folder: take them
# off, so that nothing here can lean on a checkout. The backend runs in the venv Set up backend makes.
REMOVED = [p for p in sys.path if os.path.isfile(os.path.join(p or ".", "pyproject.toml"))
           or os.path.abspath(p or ".") == os.path.dirname(os.path.abspath(__file__))]
sys.path[:] = [p for p in sys.path if p not in REMOVED]

import bpy  # noqa: E402
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402

PKG = "bl_ext.user_default.remomask"
SMPL_22 = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
           "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
           "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")


def main(zip_path: str, out: str) -> dict:
    res = {"sys_path_has_repo": [p for p in sys.path if os.path.isfile(os.path.join(p or ".", "pyproject.toml"))],
           "backend_importable": any(os.path.isdir(os.path.join(p or ".", "backend")) for p in sys.path)}
    t0 = time.monotonic()
    # the user allows online access (Preferences > System > Network), then installs the zip
    bpy.context.preferences.system.use_online_access = True
    assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                    enable_on_install=True) == {'FINISHED'}
    mod = sys.modules[PKG]
    prefs = bpy.context.preferences.addons[PKG].preferences
    res["addon_file"] = mod.__file__
    res["developer_checkout"] = prefs.project_dir
    res["install_s"] = time.monotonic() - t0

    t = time.monotonic()
    assert bpy.ops.remomask.setup_backend(synchronous=True) == {'FINISHED'}
    res["setup_s"] = time.monotonic() - t
    st = mod.core.backend_setup.STATE
    res["setup_note"], res["setup_message"], res["setup_log"] = st.note, st.message, st.log_path
    user = mod.ui.preferences.user_dir(create=False)
    res["venv"] = str(user / "venv")
    res["record"] = mod.core.backend_setup.read_installed(user / "venv")
    res["settings_problem"] = mod.ui.preferences.settings().problem()
    res["venv_bytes"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(user / "venv") for f in fs
                            if not os.path.islink(os.path.join(d, f)))

    # an extension update over an older backend: told at once, and Set up backend updates it in place
    rec_path = user / "venv" / mod.core.backend_setup.RECORD_NAME
    rec = json.loads(rec_path.read_text())
    rec_path.write_text(json.dumps({**rec, "version": "0.0.9"}))
    res["old_problem"] = mod.ui.preferences.settings().problem()
    try:
        bpy.ops.remomask.check_backend(synchronous=True, timeout=60)
        res["old_check_error"] = None
    except RuntimeError as exc:
        res["old_check_error"] = str(exc)
    t = time.monotonic()
    assert bpy.ops.remomask.setup_backend(synchronous=True) == {'FINISHED'}
    res["update_s"] = time.monotonic() - t
    res["update_note"] = mod.core.backend_setup.STATE.note
    res["record_after_update"] = mod.core.backend_setup.read_installed(user / "venv")
    log = Path(res["setup_log"]).read_text()
    res["update_log"] = log[log.rindex("Updating the backend 0.0.9"):]      # this update's part of the log

    scene = bpy.context.scene
    t = time.monotonic()
    assert bpy.ops.remomask.check_backend(synchronous=True, timeout=300) == {'FINISHED'}
    res["check_s"] = time.monotonic() - t
    res["check_status"] = scene.remomask.status

    sp = scene.remomask
    sp.prompt, sp.auto_length, sp.length_s, sp.seed = "a person walks forward", False, 3.0, 7
    t = time.monotonic()
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    deadline = time.monotonic() + 300
    while sp.running and time.monotonic() < deadline:
        mod.ops.session.poll_once()
        time.sleep(0.05)
    res["generate_s"] = time.monotonic() - t
    res["generate_status"], res["generate_error"] = sp.status, bool(sp.status_is_error)
    res["motion_file"] = sp.history[-1].path if len(sp.history) else ""
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    res["armatures"] = len(arms)
    arm = arms[0]
    bpy.context.view_layer.objects.active = arm
    res["frame_range"] = [scene.frame_start, scene.frame_end]
    res["fps"] = scene.render.fps / scene.render.fps_base
    keyed = []
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        keyed.append([list(arm.matrix_world @ arm.pose.bones[n].head) for n in SMPL_22])
    np.save(os.path.join(out, "keyed_joints.npy"), np.asarray(keyed))

    rs = scene.remomask_render
    rs.mode, rs.quality, rs.resolution, rs.output = "video", "preview", "360p", os.path.join(out, "render") + "/"
    t = time.monotonic()
    assert bpy.ops.remomask.render(synchronous=True) == {'FINISHED'}
    res["render_s"] = time.monotonic() - t
    videos = [os.path.join(out, "render", n) for n in os.listdir(os.path.join(out, "render"))]
    res["videos"] = videos
    clip = bpy.data.movieclips.load(videos[0])
    res["video_frames"], res["video_size"] = clip.frame_duration, list(clip.size)

    mod.ops.session.stop_backend()
    mod.ops.session.remove_timer()
    addon_utils.disable(PKG, default_set=True)
    res["total_s"] = time.monotonic() - t0
    return res


if __name__ == "__main__":
    result = main(sys.argv[1], sys.argv[2])
    with open(os.path.join(sys.argv[2], "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    sys.stdout.flush()
    os._exit(0)     # bpy 4.5 can hang at exit (PLATFORM.md); everything is unregistered above
