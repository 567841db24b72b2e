"""Editing with the shipped starter model: the prompts' semantic checks (backend/synthetic/checks.py) in the edited
frames over 10 seeds (batched as samples), exactness outside the edit, smooth seams, the root meeting the source,
body parts, loops, long timelines, and motion -> tokens against the RVQ-VAE's own reconstruction."""

import json

import numpy as np
import pytest
import torch

from backend.editing import tasks
from backend.editing import tokens as T
from backend.editing.measures import contact_skate, joint_steps, pose, seam_steps
from backend.editing.source import source_from_joints
from backend.editing.stitch import place, world_yaw
from backend.editing.timeline import generate_timeline
from backend.editing.token_map import TABLE_PATH, blocks_for, measure
from backend.generation.model_folder import load_pipeline
from backend.motion.features import features_to_joints
from backend.synthetic import checks as C
from backend.synthetic import generate_clip, make_corpus
from backend.train.evaluate import _raise_both, _squat

pytestmark = pytest.mark.slow  # the starter-model editing quality suite

SEEDS = 10
MIN_RATE = 0.8
SEAM_TOL = 0.01  # m/frame above the source's own 99th percentile step


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return load_pipeline()


def _src(pipe, prompt, frames, seed=1):
    g = pipe.generate([prompt], [frames], seed=seed)[0]
    return source_from_joints(g.joints, g.features)


@pytest.fixture(scope="module")
def walk(pipe):
    return _src(pipe, "a person walks forward", 160)


@pytest.fixture(scope="module")
def wave(pipe):
    return _src(pipe, "a person waves with the right hand", 80)


def _rate(out, check, window):
    res = [check(o.joints[slice(*window(o))]) for o in out]
    rate = np.mean([bool(r) for r in res])
    print(f"rate {rate:.0%}: {[round(r.value, 2) for r in res]}")
    return rate


def _exact_and_smooth(out, src, offset=0):
    """Outside the changed frames: the source's own frames bit for bit (``offset``: where the source starts in
    the result); seams no faster than the source's 99th-percentile step + 1 cm/frame."""
    limit = np.percentile(joint_steps(src.joints), 99) + SEAM_TOL
    for o in out:
        keep = np.zeros(len(o.joints), bool)
        keep[offset:offset + src.frames] = True
        for lo, hi in o.changed:
            keep[lo:hi] = False
        idx = np.flatnonzero(keep)
        assert np.array_equal(o.joints[idx], src.joints[idx - offset])
        assert np.array_equal(o.features[idx], src.features[idx - offset])
        assert max(seam_steps(o.joints, o.changed)) <= limit, (seam_steps(o.joints, o.changed), limit)


def _root_meets(out, src):
    """The edited features, integrated from the first frame, meet the source's root at the first frame after
    the changed frames within 1 mm."""
    f, j = src.features, src.joints
    for o in out:
        rebuilt = place(o.features, world_yaw(f[0], j[0]), j[0, 0], j[0, 0, 1] - f[0, 3])
        hi = o.changed[-1][1]
        if hi < len(o.joints):
            assert np.linalg.norm(rebuilt[hi, 0] - j[hi, 0]) < 1e-3


def test_tokens_reproduce_held_out_clips_within_the_vq_error(pipe):
    """joints -> features -> tokens -> features -> joints through backend.editing vs the RVQ-VAE's own
    reconstruction of the same clips (the training evaluation's measure: decode(encode(x)))."""
    clips = make_corpus(8, seed=0, split="test")
    ours, plain = [], []
    for c in clips:
        src = source_from_joints(c.joints)
        n = src.frames // 4 * 4
        rec = features_to_joints(T.roundtrip(pipe, src.features))
        truth = features_to_joints(src.features[:n])
        ours.append(np.linalg.norm(rec - truth, axis=-1).mean())
        x = torch.as_tensor((src.features[:n] - pipe.mean.numpy()) / pipe.std.numpy())[None]
        with torch.no_grad():
            y = pipe.models.vq.decode(*pipe.models.vq.encode(x))[0].numpy() * pipe.std.numpy() + pipe.mean.numpy()
        plain.append(np.linalg.norm(features_to_joints(y) - truth, axis=-1).mean())
    print(f"MPJPE editing tokens {np.round(ours, 3)} m, plain VQ {np.round(plain, 3)} m")
    np.testing.assert_allclose(ours, plain, rtol=0.01, atol=1e-4)  # per clip: the VQ's own error, no more
    assert np.median(ours) < 0.1  # global joints, root drift included (a spin drifts most)


def test_inpaint(pipe, walk):
    out = tasks.inpaint(pipe, walk, 60, 120, "a person jumps in place", seed=0, samples=SEEDS)
    assert _rate(out, C.check_jump, lambda o: o.changed[0]) >= MIN_RATE
    _exact_and_smooth(out, walk)
    _root_meets(out, walk)


def test_prefix_and_suffix(pipe, walk, wave):
    out = tasks.prefix(pipe, walk, 60, "a person sits down", seed=0, samples=SEEDS)
    # starter 2's first run sat down before the walk in 5 of 10 seeds; retrained (issue #16): 10 of 10
    assert _rate(out, C.check_sit_down, lambda o: o.changed[0]) >= MIN_RATE
    _exact_and_smooth(out, walk)
    out = tasks.suffix(pipe, wave, 80, "a person walks forward", seed=0, samples=SEEDS)
    assert _rate(out, C.check_walk_forward, lambda o: o.changed[0]) >= MIN_RATE
    _exact_and_smooth(out, wave, offset=80)


def test_inbetween_and_outpaint(pipe, walk, wave):
    out = tasks.inbetween(pipe, walk, wave, "a person jumps in place", frames=60, place="world", seed=0,
                          samples=SEEDS)
    assert _rate(out, C.check_jump, lambda o: o.changed[0]) >= MIN_RATE
    _exact_and_smooth(out, walk)
    f, j = walk.features, walk.joints
    for o in out:  # place="world": the second clip stays exactly where it was, and the gap reaches it
        hi = o.changed[0][1]
        assert np.array_equal(o.joints[hi:], wave.joints[hi - 220:])
        rebuilt = place(o.features, world_yaw(f[0], j[0]), j[0, 0], j[0, 0, 1] - f[0, 3])
        assert np.linalg.norm(rebuilt[hi, 0] - o.joints[hi, 0]) < 1e-3
    out = tasks.outpaint(pipe, wave, 60, 60, "a person jumps in place", seed=0, samples=SEEDS)
    assert _rate(out, C.check_jump, lambda o: o.changed[0]) >= MIN_RATE
    assert _rate(out, C.check_jump, lambda o: o.changed[1]) >= MIN_RATE
    _exact_and_smooth(out, wave, offset=60)


def test_bodypart_arms_keeps_the_rest_exact(pipe, walk):
    out = tasks.bodypart(pipe, walk, 20, 140, "arms", "a person waves with the right hand", seed=0, samples=SEEDS)
    assert _rate(out, lambda j: C.check_wave(j, "right"), lambda o: (20, 140)) >= MIN_RATE
    rest = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15]
    for o in out:
        assert np.abs(o.joints[:, rest] - walk.joints[:, rest]).max() < 1e-3  # legs, spine, head: exact
        assert C.check_walk_forward(o.joints)
    _exact_and_smooth(out, walk)
    _root_meets(out, walk)
    up = tasks.bodypart(pipe, walk, 20, 140, "arms", "a person raises both arms above the head", seed=0,
                        samples=SEEDS)
    assert _rate(up, _raise_both, lambda o: (20, 140)) >= MIN_RATE


@pytest.mark.parametrize("mode", ["return", "travel"])
def test_loop(pipe, walk, mode):
    out = tasks.loop(pipe, walk, "a person walks forward", mode=mode, seed=0, samples=SEEDS)
    steps = joint_steps(walk.joints)
    for o in out:
        j = o.joints
        assert np.abs(pose(j[-1]) - pose(j[0])).max() < 0.01  # the last frame is the first pose again
        wrap = np.linalg.norm(pose(j[1]) - pose(j[-1]), axis=-1).max()  # last -> the next cycle's second frame
        assert wrap <= steps.max() + SEAM_TOL
        offset = j[-1, 0] - j[0, 0]
        assert np.allclose(o.file_fields["loop_offset"], offset, atol=1e-6)
        yaw = C.root_yaw(j)
        assert abs(np.angle(np.exp(1j * (yaw[-1] - yaw[0])))) < np.deg2rad(2)  # facing the start direction
        if mode == "return":
            assert np.linalg.norm(offset) < 0.01
        else:
            assert np.linalg.norm(offset[[0, 2]]) > 2.0  # keeps walking: ~ the clip's own travel
    _exact_and_smooth(out, walk)


def test_long_timeline(pipe):
    items = [("a person walks forward", 5), ("a person jumps in place", 5),
             ("a person waves with the right hand", 5), ("a person does a squat", 5)]
    checks = [C.check_walk_forward, C.check_jump, lambda j: C.check_wave(j, "right"), _squat]
    out = generate_timeline(pipe, items, seed=0, samples=SEEDS)
    assert all(o.length == 400 for o in out)
    rates = np.mean([[bool(fn(o.joints[a:b])) for fn, (a, b) in zip(checks, o.part_frames)] for o in out], 0)
    print("timeline rates", rates)
    # starter 2's first run squatted and stayed down over a 5 s part; retrained (issue #16) every part passes again
    assert (rates >= MIN_RATE).all(), rates
    corpus = [generate_clip(f, 100 + i).joints for f in ("walk", "jump_in_place", "wave", "squat") for i in range(6)]
    limit = np.percentile(np.concatenate([contact_skate(c) for c in corpus]), 99)
    for o in out:
        sk = contact_skate(o.joints)
        for p in (100, 200, 300):  # the joins; transitions span 8 frames on each side
            assert sk[p - 10:p + 10].max() <= limit, (sk[p - 10:p + 10].max(), limit)
    long = generate_timeline(pipe, [("a person walks forward", 30), ("a person runs forward", 30)], seed=1)[0]
    assert long.length == 1200 and np.isfinite(long.joints).all()
    assert max(joint_steps(long.joints)) < 0.5


def test_while(pipe):
    out = pipe.generate(["a person walks forward while waving with the right hand"], [120], seed=0, samples=SEEDS)
    assert np.mean([bool(C.check_walk_forward(o.joints)) for o in out]) >= MIN_RATE
    assert np.mean([bool(C.check_wave(o.joints, "right")) for o in out]) >= MIN_RATE
    assert out[0].task == "while" and out[0].part == "arms"


def test_shipped_token_map_is_what_the_measurement_gives(pipe):
    from backend.editing.bodypart import PARTS

    shipped = json.loads(TABLE_PATH.read_text())["starter"]
    fresh = measure(pipe, n_clips=shipped["clips"], draws=shipped["draws"], seed=shipped["seed"])
    np.testing.assert_allclose(fresh["blocks"], shipped["blocks"], atol=2e-4)
    assert {n: blocks_for(fresh, p.joints) for n, p in PARTS.items()} == shipped["parts"]
    assert shipped["parts"]["arms"] == [0, 2, 3, 4, 5]  # starter 2 retrained (measured; first run 2-5, starter 1: 3-5)
