"""The editing engine on tiny random-weight models: tokens, the constrained sampler, every task's shapes,
exactness outside the hole and determinism, the token -> joint table, the timeline."""

import numpy as np
import pytest
import torch

from backend.editing import tasks
from backend.editing import tokens as T
from backend.editing.canvas import Canvas, plan_window, window_row
from backend.editing.sampler import Row, sample_rows
from backend.editing.source import EditError, source_from_joints
from backend.editing.timeline import generate_timeline
from backend.editing.token_map import blocks_for, measure, table_for
from backend.generation.pipeline import Pipeline
from backend.synthetic import generate_clip
from tests.models.conftest import StubRetriever, StubTextEncoder, build_tiny

KW = dict(time_steps=2)


@pytest.fixture(scope="module")
def pipe():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Pipeline(build_tiny(), StubTextEncoder(), StubRetriever())
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def src():
    return source_from_joints(generate_clip("walk", 5).joints)  # 81 frames


@pytest.fixture(scope="module")
def other():
    return source_from_joints(generate_clip("wave", 1).joints)


def test_encode_decode_shapes_and_long_windows(pipe, src):
    ids1d, ids2d = T.encode(pipe, src.features[:80])
    q = pipe.models.vq.num_quantizers
    assert ids1d.shape == (1, 20, q) and ids2d.shape == (1, 20, 6, q) and ids1d.dtype == torch.long
    f = T.decode(pipe, ids1d, ids2d)
    assert f.shape == (1, 80, 263) and np.isfinite(f).all()
    assert np.array_equal(T.decode_long(pipe, ids1d[0], ids2d[0]), f[0])
    # a long sequence in windows: the interior of each window is what one decode gives
    long1, long2 = ids1d[0].repeat(8, 1), ids2d[0].repeat(8, 1, 1)
    whole = T.decode(pipe, long1[None], long2[None])[0]
    win = T.decode_long(pipe, long1, long2, window=48, overlap=8)
    assert win.shape == whole.shape
    np.testing.assert_allclose(win[40:150], whole[40:150], atol=1e-4)
    with pytest.raises(ValueError):
        T.encode(pipe, src.features[:81])


def test_sampler_keeps_given_tokens_and_without_keep_is_generation(pipe, src):
    ids1d, ids2d = T.encode(pipe, src.features[:40])
    keep = torch.ones(10, dtype=torch.bool)
    row = Row("a person walks", ids1d[0], ids2d[0], keep, keep[:, None].repeat(1, 6))
    out = sample_rows(pipe, [row], seed=3, **KW)
    assert torch.equal(out.ids1d[0], ids1d[0]) and torch.equal(out.ids2d[0], ids2d[0])
    none = torch.zeros(10, dtype=torch.bool)
    free = Row("a person walks", ids1d[0] * 0, ids2d[0] * 0, none, none[:, None].repeat(1, 6))
    toks = sample_rows(pipe, [free, free], seed=3, **KW)
    gen = pipe.generate(["a person walks"], [40], seed=3, samples=2, **KW)
    feats = T.decode(pipe, toks.ids1d, toks.ids2d, toks.lens)
    for i in range(2):
        np.testing.assert_allclose(feats[i], gen[i].features, atol=1e-5)


def test_window_row_keeps_outside_the_hole(pipe, src):
    c = Canvas.of(src)
    w = plan_window(c, 40, 60)
    row = window_row(pipe, c, w, "x", blocks=[4, 5])
    h0, h1 = w.hole
    assert not row.keep1d[h0:h1].any() and row.keep1d[:h0].all() and row.keep1d[h1:].all()
    assert row.keep2d[h0:h1, :4].all() and not row.keep2d[h0:h1, 4:].any()


def _exact_outside(out, src_joints, src_feats, changed):
    keep = np.ones(len(out.joints), bool)
    for lo, hi in changed:
        keep[lo:hi] = False
    return np.array_equal(out.joints[keep], src_joints[keep]) and np.array_equal(out.features[keep],
                                                                                 src_feats[keep])


def test_every_task_shapes_exactness_determinism(pipe, src, other):
    n = src.frames
    runs = {
        "inpaint": lambda s: tasks.inpaint(pipe, src, 30, 50, "jumps", seed=s, samples=2, **KW),
        "bodypart": lambda s: tasks.bodypart(pipe, src, 20, 60, "arms", "waves", seed=s, samples=2, **KW),
        "prefix": lambda s: tasks.prefix(pipe, src, 20, "sits down", seed=s, samples=2, **KW),
        "suffix": lambda s: tasks.suffix(pipe, src, 16, "stands up", seed=s, samples=2, **KW),
        "outpaint": lambda s: tasks.outpaint(pipe, src, 12, 16, "runs", seed=s, samples=2, **KW),
        "inbetween": lambda s: tasks.inbetween(pipe, src, other, "turns", 24, seed=s, samples=2, **KW),
        "loop": lambda s: tasks.loop(pipe, src, "walks", mode="travel", seed=s, samples=2, **KW),
    }
    lengths = {"inpaint": n, "bodypart": n, "prefix": n + 20, "suffix": n + 16, "outpaint": n + 28,
               "inbetween": n + 24 + other.frames, "loop": n}
    for name, run in runs.items():
        a, b, c = run(1), run(1), run(2)
        assert len(a) == 2 and all(o.task == name for o in a), name
        for x, y in zip(a, b):
            assert np.array_equal(x.joints, y.joints) and np.array_equal(x.features, y.features), name
        assert not np.array_equal(a[0].joints, c[0].joints), name
        for o in a:
            assert o.joints.shape == (lengths[name], 22, 3) and o.features.shape == (lengths[name], 263), name
            assert np.isfinite(o.joints).all() and o.source is None and o.edited
        if name in ("inpaint", "bodypart", "loop"):
            for o in a:
                assert _exact_outside(o, src.joints, src.features, o.changed), name
        if name == "prefix":
            assert np.array_equal(a[0].joints[:a[0].changed[0][0]], src.joints[:a[0].changed[0][0]])
        if name == "suffix":
            hi = a[0].changed[0][1]
            assert np.array_equal(a[0].joints[hi:], src.joints[hi - 16:])


def test_bodypart_keeps_the_other_joints(pipe, src):
    for part, kept in (("arms", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15]), ("legs", [0, 3, 6, 9, 12, 15, 13,
                                                                                           14, 16, 17, 18, 19, 20, 21]),
                       ("upper", [0, 1, 2, 4, 5, 7, 8, 10, 11])):
        out = tasks.bodypart(pipe, src, 10, 70, part, "x", seed=0, **KW)[0]
        assert np.array_equal(out.joints[:, kept], src.joints[:, kept]), part
        assert not np.allclose(out.joints, src.joints), part
    low = tasks.bodypart(pipe, src, 10, 70, "lower", "x", seed=0, **KW)[0]
    bones = [(9, 12), (12, 15), (9, 16), (16, 18)]  # the upper body keeps its shape while riding on the hips
    for a, b in bones:
        np.testing.assert_allclose(np.linalg.norm(low.joints[:, a] - low.joints[:, b], axis=-1),
                                   np.linalg.norm(src.joints[:, a] - src.joints[:, b], axis=-1), atol=1e-5)


def test_bad_edits(pipe, src):
    with pytest.raises(EditError, match="empty"):
        tasks.inpaint(pipe, src, 30, 30, "x")
    with pytest.raises(EditError, match="outside"):
        tasks.inpaint(pipe, src, 30, 90, "x")
    with pytest.raises(EditError, match="unknown body part"):
        tasks.bodypart(pipe, src, 0, 40, "tail", "x")
    with pytest.raises(EditError, match="at most"):
        tasks.prefix(pipe, src, 400, "x")
    with pytest.raises(EditError, match="loop mode"):
        tasks.loop(pipe, src, mode="spiral")


def test_token_map_on_a_tiny_model(pipe):
    clips = [source_from_joints(generate_clip(f, 2).joints).features for f in ("walk", "wave")]
    table = measure(pipe, clips=clips, draws=1)
    b = np.asarray(table["blocks"])
    assert b.shape == (6, 22) and np.isfinite(b).all() and (b >= 0).all() and b.sum() > 0
    assert len(table["aux"]) == 22 and table["joints"][21] == "right_wrist"
    assert table == measure(pipe, clips=clips, draws=1)  # recomputable: same clips, same table
    cols = blocks_for(table, [16, 17, 18, 19, 20, 21])
    assert cols and all(0 <= c < 6 for c in cols)
    assert blocks_for(table, range(22), share=1.01) == [int(b.sum(1).argmax())]
    tab = table_for(pipe)  # a model other than the starter: measured once, kept with the pipeline
    assert table_for(pipe) is tab


def test_timeline_on_a_tiny_model(pipe):
    items = [("walk", 2.0), ("jump", 1.2), ("wave", 1.6)]
    out = generate_timeline(pipe, items, seed=4, samples=2, **KW)
    assert [o.length for o in out] == [96, 96] and out[0].parts == ["walk", "jump", "wave"]
    assert out[0].part_frames[0][0] == 0 and out[0].part_frames[-1][1] == 96
    again = generate_timeline(pipe, items, seed=4, samples=2, **KW)
    assert np.array_equal(out[1].joints, again[1].joints) and not np.array_equal(out[0].joints, out[1].joints)
    long = generate_timeline(pipe, [("walk", 12.0), ("run", 10.0)], seed=0, **KW)[0]
    assert long.length == 440 and np.isfinite(long.joints).all()
    with pytest.raises(EditError, match="at least 1 s"):
        generate_timeline(pipe, [("walk", 0.5)])
