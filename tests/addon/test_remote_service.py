"""The add-on's Remote mode against the running shared service (``remomask serve``'s Ray Serve app): the same
Generate operator and poller as local mode, the preferences' remote address set to the service's URL: generate
(progress, keyed armature from the file written locally), cancel (nothing added to the scene)."""

from __future__ import annotations

import numpy as np
import pytest

from addon_helpers import PKG, poll_until, scene_snapshot

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # a real Ray + Serve


@pytest.fixture(scope="module")
def service_url(tmp_path_factory):
    pytest.importorskip("ray", reason="the [scale] extra (ray) is not installed")
    from tests.release_fixture import make_tiny_release
    from tests.scale.service_fixture import running_service

    with running_service(make_tiny_release(tmp_path_factory.mktemp("release"))) as url:
        yield url


def _remote(bpy, url, token):
    prefs = bpy.context.preferences.addons[PKG].preferences
    prefs.remote, prefs.token = url, token


def test_remote_generate_progress_and_cancel(fresh, bpy_mod, service_url):
    from tests.scale.service_fixture import TOKEN

    bpy, mod = bpy_mod, fresh
    _remote(bpy, service_url, TOKEN)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    sp = scene.remomask
    sp.prompt, sp.auto_length, sp.length_s, sp.seed = "a person jumps", False, 1.6, 11
    seen = []
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    assert isinstance(mod.ops.session._CLIENT, mod.core.remote_client.ServiceClient)
    assert poll_until(mod, lambda: seen.append(sp.progress) or not sp.running, 120), sp.status
    assert not sp.status_is_error, sp.status
    assert 0 < max(seen) <= 1 and any(0 < p < 1 for p in seen)  # the progress bar moved
    path = sp.history[-1].path
    with np.load(path) as z:  # written locally by the client from the service's bytes
        joints = z["joints"]
        assert str(z["prompt"]) == "a person jumps" and joints.shape == (32, 22, 3)
    arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    assert arm.animation_data.action is not None
    lo, hi = arm.animation_data.action.frame_range
    assert round(hi - lo) + 1 == 32
    # cancel: a request that would take a minute; the scene stays as it was
    before = scene_snapshot(bpy)
    sp.prompt = "a person takes ages"
    assert bpy.ops.remomask.generate() == {'FINISHED'}
    assert poll_until(mod, lambda: sp.running, 30)
    assert bpy.ops.remomask.cancel() == {'FINISHED'}
    assert poll_until(mod, lambda: not sp.running, 30), sp.status
    assert "cancel" in sp.status.lower(), sp.status
    assert scene_snapshot(bpy) == before
    # a wrong token: one clear error in the panel, nothing added
    _remote(bpy, service_url, "wrong-token")
    sp.prompt = "a person waves"
    bpy.ops.remomask.generate()
    assert poll_until(mod, lambda: not sp.running, 30)
    assert sp.status_is_error and "token" in sp.status.lower(), sp.status
    assert scene_snapshot(bpy) == before
