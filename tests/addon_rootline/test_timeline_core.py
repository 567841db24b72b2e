"""core/timeline.py: markers -> parts, the requests (checked by the backend's own validators), and the frames of a
part on the generator's tiny model: the add-on's copy of the part-frame rule matches ``generate_timeline``, and
re-doing part 2 of a 4-part timeline leaves parts 1, 3 and 4 bit-identical outside its transitions."""

import numpy as np
import pytest
import torch

from backend.editing import limits, tasks
from backend.editing import timeline as backend_timeline
from backend.editing.request import validate_edit
from backend.editing.source import Source
from backend.generation.pipeline import Pipeline
from backend.serving import protocol
from remomask_addon.core import timeline as tl
from tests.models.conftest import StubRetriever, StubTextEncoder, build_tiny


def test_markers_make_parts():
    marks = [("sits down", 301), ("walks forward", 1), ("jumps in place", 101), ("waves", 201), ("END", 401)]
    plan = tl.plan_from_markers(marks, 20.0, scene_end=1000)
    assert plan.prompts == ("walks forward", "jumps in place", "waves", "sits down")
    assert plan.seconds == (5.0, 5.0, 5.0, 5.0) and plan.total_seconds == 20.0
    assert plan.start_frame == 1 and plan.scene_frames[1] == (101, 201)
    # without an end marker the last part runs to the scene's end (inclusive); 24 fps scenes
    plan = tl.plan_from_markers([("walks", 1), ("runs", 121)], 24.0, scene_end=240)
    assert plan.seconds == (5.0, 5.0)


@pytest.mark.parametrize("marks, end, msg", [
    ([], 100, "Add timeline markers"),
    ([("walks", 1), ("", 50)], 200, "has no name"),
    ([("walks", 1), ("runs", 10)], 200, "at least 1 s"),
    ([("end", 1), ("walks", 10)], 200, "first marker is 'end'"),
    ([("walks", 1), ("runs", 1)], 200, "same frame"),
    ([("walks", 1)], 20 * 301, "at most 300 s"),
])
def test_bad_markers_get_one_message(marks, end, msg):
    with pytest.raises(tl.TimelineError, match=msg):
        tl.plan_from_markers(marks, 20.0, scene_end=end)


def test_limits_are_the_backends():
    assert tl.MIN_PART_SECONDS == limits.MIN_PART_SECONDS
    assert tl.MAX_TIMELINE_SECONDS == limits.MAX_TIMELINE_SECONDS
    assert tl.MAX_TIMELINE_PARTS == limits.MAX_TIMELINE_PARTS
    assert tl.MAX_HOLE_FRAMES == limits.max_hole_frames(2)
    assert tl.TRANSITION_TOKENS == backend_timeline.TRANSITION_TOKENS and tl.UNIT == limits.UNIT_LENGTH


def test_requests_pass_the_backend_validators(tmp_path):
    req = tl.TimelineRequest(("a person walks forward", "jumps"), (5.0, 3.0), seed=3, samples=2)
    g = protocol.validate_generate(req.to_params())
    assert g.timeline == [("a person walks forward", 5.0), ("a person jumps", 3.0)] and g.samples == 2
    src = tmp_path / "timeline.npy"
    from backend.synthetic import generate_clip
    np.save(src, generate_clip("walk", 5).joints)
    e = validate_edit(tl.SegmentEditRequest(str(src), (8, 48), "a person jumps", seed=2).to_params())
    assert e.task == "inpaint" and tuple(e.frames) == (8, 48) and e.place == "world" and e.prompt == "a person jumps"


def test_segment_hole_and_untouched_frames():
    secs = (5.0, 5.0, 5.0, 5.0)
    assert tl.part_frames(secs) == [(0, 92), (92, 192), (192, 292), (292, 400)]
    assert tl.segment_hole(secs, 1) == (92, 208)
    assert tl.segment_hole(secs, 0) == (0, 108) and tl.segment_hole(secs, 3) == (292, 400)
    assert tl.untouched_frames(400, (92, 208)) == ((0, 84), (216, 400))
    with pytest.raises(tl.TimelineError, match="at most 9 s"):
        tl.segment_hole((5.0, 9.5, 5.0), 1)
    with pytest.raises(tl.TimelineError, match="no part 5"):
        tl.segment_hole(secs, 4)
    assert tl.scene_span((92, 208), 1, 20.0) == (93, 208)
    assert tl.scene_span((92, 208), 1, 30.0) == (139, 312)


@pytest.fixture(scope="module")
def pipe():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Pipeline(build_tiny(), StubTextEncoder(), StubRetriever())
    torch.set_num_threads(n)


def test_part_frames_match_the_backend(pipe):
    for secs in ((5.0, 5.0, 5.0, 5.0), (2.0, 1.2, 12.0, 1.0)):
        items = [(f"part {i}", s) for i, s in enumerate(secs)]
        out = backend_timeline.generate_timeline(pipe, items, seed=1, time_steps=2)[0]
        assert [tuple(f) for f in out.part_frames] == tl.part_frames(secs)
        assert out.length == sum(tl.part_tokens(secs)) * tl.UNIT


def test_redoing_part_two_keeps_the_other_parts_bit_identical(pipe):
    secs = (5.0, 5.0, 5.0, 5.0)
    items = [("a person walks", 5.0), ("a person jumps", 5.0), ("a person waves", 5.0), ("a person sits", 5.0)]
    long = backend_timeline.generate_timeline(pipe, items, seed=0, time_steps=2)[0]
    assert long.length == 400                                     # 20 s at 20 fps
    src = Source(joints=long.joints, features=long.features)   # the tiny random model's motion, as it is
    hole = tl.segment_hole(secs, 1)
    new = tasks.inpaint(pipe, src, *hole, "a person kicks", seed=5, time_steps=2)[0]
    assert new.joints.shape == src.joints.shape
    (a0, a1), (b0, b1) = tl.untouched_frames(400, hole)
    np.testing.assert_array_equal(new.joints[a0:a1], src.joints[a0:a1])      # part 1 up to the transition
    np.testing.assert_array_equal(new.joints[b0:b1], src.joints[b0:b1])      # parts 3 and 4 after it
    np.testing.assert_array_equal(new.features[:a1], src.features[:a1])
    np.testing.assert_array_equal(new.features[b0:], src.features[b0:])
    # part 2 itself changed, and only the hole with its margins did
    assert np.abs(new.joints[hole[0]:hole[1]] - src.joints[hole[0]:hole[1]]).max() > 0.01
    (lo, hi), = new.changed
    assert a1 <= lo and hi <= b0
