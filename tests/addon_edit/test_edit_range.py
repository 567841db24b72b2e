"""The Edit panel's frame arithmetic and version naming (bpy-free: remomask_addon.core.edit_range,
core.action_versions)."""

import pytest

from remomask_addon.core import action_versions as av
from remomask_addon.core.edit_range import (MARGIN, EditRangeError, FrameRange, check_inside, plan_edit,
                                            range_from_timeline, snap_to_keys)


def test_range_priority_preview_then_keys_then_markers_then_typed():
    kw = dict(preview=(10, 40), selected_keys=[5.0, 25.0, 15.0], markers=[50, 70], typed=(1, 9))
    assert range_from_timeline(**kw) == FrameRange(10, 40, "preview range")
    kw["preview"] = None
    assert range_from_timeline(**kw) == FrameRange(5, 25, "selected keys")
    kw["selected_keys"] = [7.0, 7.0]             # one frame is not a range
    assert range_from_timeline(**kw) == FrameRange(50, 70, "selected markers")
    kw["markers"] = [50, 60, 70]                 # not exactly two markers
    assert range_from_timeline(**kw).label == "1-9 (typed range)"
    kw["typed"] = None
    with pytest.raises(EditRangeError, match="No frame range"):
        range_from_timeline(**kw)
    with pytest.raises(EditRangeError, match="typed range 9-3 is empty"):
        range_from_timeline(typed=(9, 3))


def test_inside_and_snap():
    with pytest.raises(EditRangeError, match="outside the action's keys \\(1-120\\)"):
        check_inside(FrameRange(100, 130, "typed range"), (1, 120))
    check_inside(FrameRange(1, 120, "typed range"), (1.0, 120.0))
    snapped = snap_to_keys(FrameRange(33, 47, "typed range"), [1, 11, 21, 31, 41, 51, 61])
    assert (snapped.start, snapped.end) == (31, 51) and snapped.source == "keys around the typed range"
    with pytest.raises(EditRangeError, match="keys before and after"):
        snap_to_keys(FrameRange(33, 70, "typed range"), [1, 31, 61])


@pytest.mark.parametrize("fps", [20, 24, 30])
def test_regenerate_hole_keeps_the_generators_margins_inside_the_range(fps):
    plan = plan_edit("REGENERATE", FrameRange(100, 200, "typed range"), (1, 400), fps)
    r = fps / 20
    a, b = plan.frames
    # the changed frames [a - MARGIN, b + MARGIN) map into the range, and the hole is as large as it can be
    assert plan.read[0] + (a - MARGIN) * r >= 100 - 1e-6
    assert plan.read[0] + (b + MARGIN - 1) * r <= 200 + 1e-6
    assert plan.read[0] + (a - MARGIN - 1) * r < 100 and plan.read[0] + (b + MARGIN) * r > 200
    assert plan.read == (100 - 2 * fps, 200 + 2 * fps)  # two seconds of context on each side
    # a result that changed more than asked is still written only inside the range
    n = plan.source_frames()
    assert plan.window([(0, n)], n) == (100, 200)
    assert plan.window([(a - MARGIN, b + MARGIN)], n)[0] >= 100
    p = plan.params("/x/src.npy", " a person  jumps ", seed=3, samples=2)
    assert p == {"source": "/x/src.npy", "task": "inpaint", "seed": 3, "samples": 2, "fit": True,
                 "ground_feet": False, "prompt": "a person  jumps", "frames": [a, b], "place": "world"}


def test_ops_plans():
    ib = plan_edit("INBETWEEN", FrameRange(40, 50, "typed range"), (1, 121), 20, key_frames=range(1, 122, 30))
    assert ib.clip == (32, 60) and ib.read == (1, 101)       # between the keys at 31 and 61, not on them
    assert ib.frames == (31 + MARGIN, 60 - MARGIN)
    with pytest.raises(EditRangeError, match="too short"):  # keys 20 frames apart leave no room for a hole
        plan_edit("INBETWEEN", FrameRange(33, 47, "typed range"), (1, 121), 20, key_frames=range(1, 122, 10))
    with pytest.raises(EditRangeError, match="too short"):
        plan_edit("REGENERATE", FrameRange(40, 55, "typed range"), (1, 121), 20)
    with pytest.raises(EditRangeError, match="at most 9 s"):
        plan_edit("REGENERATE", FrameRange(10, 400, "typed range"), (1, 500), 20)
    bp = plan_edit("BODYPART", FrameRange(1, 121, "typed range"), (1, 121), 20, part="arms")
    assert bp.frames == (0, 121) and "left_wrist" in bp.bones and "pelvis" not in bp.bones
    assert bp.params("s", "waves")["part"] == "arms"
    ext = plan_edit("EXTEND", None, (1, 121), 24, seconds=2)
    assert ext.read == (73, 121) and ext.clip == (73, None) and ext.start_frame(61) == 73
    lead = plan_edit("LEAD_IN", None, (1, 121), 20, seconds=2)
    assert lead.read == (1, 41) and lead.start_frame(41 + 40) == 1 - 40
    assert lead.window([(0, 48)], 81) == (-39, 8)
    loop = plan_edit("LOOP", None, (1, 121), 20, mode="travel")
    assert loop.read == (1, 121) and loop.params("s", "")["mode"] == "travel" and "prompt" not in loop.params("s", "")
    with pytest.raises(EditRangeError, match="single key"):
        plan_edit("LOOP", None, (5, 5), 20)
    with pytest.raises(EditRangeError, match="0.2 to 9.4 seconds"):
        plan_edit("EXTEND", None, (1, 121), 20, seconds=20)
    with pytest.raises(EditRangeError, match="Unknown body part"):
        plan_edit("BODYPART", FrameRange(1, 121, "typed range"), (1, 121), 20, part="tail")


def test_version_names():
    acts = [("Walk", {}), ("Other", {}), ("Walk.v2", {av.ROOT: "Walk", av.VERSION: 2, av.OP: "Loop"}),
            ("Walk.v3", {av.ROOT: "Walk", av.VERSION: 3, av.OP: "Extend"})]
    assert av.next_version("Walk", acts) == 4 and av.next_version("Other", acts) == 2
    assert av.version_name("Walk", 4) == "Walk.v4"
    assert av.versions("Walk", acts) == [(1, "Walk", "original"), (2, "Walk.v2", "Loop"), (3, "Walk.v3", "Extend")]
    assert av.root_of("Walk.v3", acts[3][1]) == "Walk"
    assert av.describe("INBETWEEN", "turns", (32, 50)) == "In-between 32-50: turns"
