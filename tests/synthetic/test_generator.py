"""The synthetic corpus generator: shapes, physical plausibility, determinism, semantics, captions."""

import numpy as np
import pytest

from backend.motion.skeleton import PARENTS, default_rest_joints
from backend.synthetic import (FAMILIES, caption_variants, MAX_FRAMES, MIN_FRAMES, N_TRAIN, TEMPLATES, corpus_stats, generate_clip,
                               generate_sequence, make_corpus)
from backend.synthetic import checks as C
from backend.synthetic.skeleton import J, SCALE_RANGE

SEEDS = (0, 1, 2)


def _bones(j):
    return np.linalg.norm(j[:, 1:] - j[:, list(PARENTS[1:])], axis=-1)


def _assert_plausible(clip):
    j = clip.joints
    assert j.dtype == np.float32 and j.ndim == 3 and j.shape[1:] == (22, 3)
    assert MIN_FRAMES <= j.shape[0] <= MAX_FRAMES
    assert np.isfinite(j).all()
    assert clip.contacts.shape == (j.shape[0], 4) and clip.contacts.dtype == bool
    assert clip.caption and clip.caption == clip.caption.strip() and "  " not in clip.caption
    assert "{" not in clip.caption
    for chk in C.plausibility(j, clip.contacts):
        assert chk, f"{clip.family} ({clip.caption}): {chk.message}"
    # float32 storage only: sub-millimetre, and far tighter than the check's 1 mm
    assert C.bone_length_drift(j) < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_valid_and_plausible(family):
    for s in SEEDS:
        clip = generate_clip(family, s)
        assert clip.family == family
        _assert_plausible(clip)
        # the feet really are planted some of the time, and the planted foot joints are on the floor
        c = clip.contacts
        assert c.any()
        toe_y = np.where(c[:, 1], clip.joints[:, J["left_foot"], 1], np.nan)
        assert np.nanmax(np.abs(toe_y)) < 0.005


def test_at_least_15_families_with_five_phrasings_each():
    assert len(FAMILIES) >= 15
    for f in FAMILIES:
        assert len(set(TEMPLATES[f])) >= N_TRAIN + 2, f  # >= 5 for training, >= 2 held out


@pytest.mark.parametrize("pair", [("walk", "wave"), ("sit_down", "stand_up"), ("run", "turn"),
                                  ("spin", "jump_forward"), ("side_step", "sit_down")])
def test_sequences_are_plausible_and_smooth_at_the_join(pair):
    clip = generate_sequence(*pair, 11)
    _assert_plausible(clip)
    assert clip.family == "+".join(pair)
    b = clip.params["boundary"]
    j = clip.joints.astype(np.float64)
    acc = np.linalg.norm(np.diff(j, 2, axis=0), axis=-1).max(-1) * 400  # m/s^2 per frame
    assert acc[b - 4:b + 4].max() < 60.0, "a pop where the two parts meet"
    assert ", then" in clip.caption or "and then" in clip.caption or "afterwards" in clip.caption


def test_sequence_rejects_incompatible_states():
    with pytest.raises(ValueError, match="sit"):
        generate_sequence("sit_down", "walk", 0)
    with pytest.raises(ValueError, match="sit"):
        generate_sequence("walk", "stand_up", 0)


def test_bodies_vary_but_bone_lengths_are_fixed_within_a_clip():
    rest = default_rest_joints().astype(np.float64)
    femur = np.linalg.norm(rest[J["left_knee"]] - rest[J["left_hip"]])
    femurs = []
    for s in range(8):
        clip = generate_clip("walk", s)
        b = _bones(clip.joints)
        assert np.abs(b - b[0]).max() < 1e-4
        femurs.append(b[0, J["left_knee"] - 1])
        assert SCALE_RANGE[0] * 0.95 < clip.params["body_scale"] * 1.0 <= SCALE_RANGE[1]
    femurs = np.array(femurs) / femur
    assert femurs.std() > 0.02  # bodies differ
    assert femurs.min() > SCALE_RANGE[0] * 0.94 and femurs.max() < SCALE_RANGE[1] * 1.06


def test_deterministic_for_a_seed():
    a = generate_clip("hop", 123)
    b = generate_clip("hop", 123)
    c = generate_clip("hop", 124)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert a.caption == b.caption and a.params == b.params
    assert a.joints.shape != c.joints.shape or not np.array_equal(a.joints, c.joints)
    x = make_corpus(12, seed=5)
    y = make_corpus(12, seed=5)
    assert [k.caption for k in x] == [k.caption for k in y]
    assert all(np.array_equal(p.joints, q.joints) for p, q in zip(x, y))
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(generate_clip("kick", g1).joints, generate_clip("kick", g2).joints)


# ------------------------------------------------------------------------------------- semantics ---
@pytest.mark.parametrize("speed", ["slow", "normal", "fast"])
def test_walk_forward_travels_more_than_a_metre_in_4s(speed):
    for s in SEEDS:
        clip = generate_clip("walk", s, direction="forward", speed=speed, curve="straight")
        assert C.check_walk_forward(clip.joints), C.check_walk_forward(clip.joints).message
        back = generate_clip("walk", s, direction="backward", speed=speed)
        assert not C.check_walk_forward(back.joints, min_m=0.0)  # never forward at all


@pytest.mark.parametrize("fam", ["walk", "run"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_curving_gaits_turn_the_right_way(fam, side):
    other = "left" if side == "right" else "right"
    for s in SEEDS:
        clip = generate_clip(fam, s, curve=side)
        _assert_plausible(clip)
        chk = C.check_turn(clip.joints, side, min_deg=45)
        assert chk, chk.message
        assert not C.check_turn(clip.joints, other, min_deg=0)
        assert side in clip.caption and other not in clip.caption
    with pytest.raises(ValueError, match="curve"):
        generate_clip(fam, 0, direction="backward", curve=side)


def test_faster_gaits_cover_more_ground():
    def travel(fam, speed):
        return np.mean([C.check_walk_forward(generate_clip(fam, s, speed=speed, curve="straight").joints,
                                             within_s=2.5).value
                        for s in SEEDS])

    assert travel("walk", "slow") < travel("walk", "fast") < travel("run", "normal")


def test_jumps_lift_the_root_and_squats_do_not():
    for fam in ("jump_in_place", "jump_forward"):
        for s in SEEDS:
            chk = C.check_jump(generate_clip(fam, s).joints)
            assert chk, chk.message
    assert not C.check_jump(generate_clip("squat", 0).joints)
    assert not C.check_jump(generate_clip("walk", 0).joints)
    far = generate_clip("jump_forward", 3, distance="far", count=1)
    assert far.joints[-1, 0, 2] - far.joints[0, 0, 2] > 0.6


@pytest.mark.parametrize("hand", ["left", "right"])
def test_wave_raises_that_wrist_above_the_head(hand):
    other = "left" if hand == "right" else "right"
    for s in SEEDS:
        clip = generate_clip("wave", s, hand=hand)
        chk = C.check_wave(clip.joints, hand)
        assert chk, chk.message
        assert not C.check_wave(clip.joints, other)
        assert hand in clip.caption and other not in clip.caption


@pytest.mark.parametrize("direction", ["left", "right"])
def test_turns_follow_the_yaw_convention(direction):
    other = "left" if direction == "right" else "right"
    for s in SEEDS:
        clip = generate_clip("turn", s, direction=direction, angle=90)
        chk = C.check_turn(clip.joints, direction)
        assert chk, chk.message
        assert 75 < chk.value < 105
        assert not C.check_turn(clip.joints, other)
    spin = generate_clip("spin", 4, direction=direction)
    assert C.check_turn(spin.joints, direction, min_deg=330)


def test_yaw_convention_on_the_rest_skeleton():
    rest = default_rest_joints().astype(np.float64)
    assert rest[J["left_hip"], 0] > rest[J["right_hip"], 0]  # left is +X when facing +Z
    j = np.stack([rest, rest])
    assert abs(C.root_yaw(j)[0]) < 0.05
    # rotate by +90 degrees about +Y: the body now faces +X, i.e. it turned to its left
    R = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    j[1] = rest @ R.T
    assert abs(np.rad2deg(C.root_yaw(j)[1]) - 90) < 3
    assert C.check_turn(j, "left")


def test_sit_down_lowers_the_pelvis_and_stand_up_raises_it():
    for s in SEEDS:
        sit = generate_clip("sit_down", s)
        chk = C.check_sit_down(sit.joints)
        assert chk, chk.message
        up = generate_clip("stand_up", s)
        assert not C.check_sit_down(up.joints)
        assert up.joints[-1, 0, 1] > 1.6 * up.joints[0, 0, 1]


def test_semantic_check_dispatch():
    clip = generate_clip("turn", 2, direction="right")
    assert C.semantic_check("turn", clip.joints, clip.params)
    assert not C.semantic_check("turn", clip.joints, dict(clip.params, direction="left"))
    assert C.semantic_check("clap", clip.joints) is None


# ---------------------------------------------------------------------------------------- checks ---
def test_checks_detect_defects():
    clip = generate_clip("walk", 0, speed="normal")
    j = clip.joints.astype(np.float64).copy()
    assert C.check_foot_skate(j, clip.contacts)
    # slide every planted left toe by 2 cm over the clip
    slid = j.copy()
    slid[:, J["left_foot"], 0] += np.linspace(0, 0.2, len(j))
    assert not C.check_foot_skate(slid, clip.contacts)
    stretched = j.copy()
    stretched[10:, J["left_wrist"]] += np.array([0.0, 0.01, 0.0])
    assert not C.check_bone_lengths(stretched)
    sunk = j.copy()
    sunk[:, :, 1] -= 0.02
    assert not C.check_ground(sunk)
    pop = j.copy()
    pop[20, J["head"], 0] += 0.8
    assert not C.check_speed(pop) and not C.check_accel(pop)
    with pytest.raises(ValueError):
        C.check_jump(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError):
        C.check_wave(j, "middle")


# -------------------------------------------------------------------------------------- captions ---
def test_captions_reflect_parameters():
    backward = ("backward", "back", "in reverse", "bwd")  # captions.DIR["backward"] and its short forms
    assert any(w in generate_clip("walk", 1, direction="backward").caption for w in backward)
    assert any(w in generate_clip("walk", 2, direction="forward", speed="slow").caption
               for w in ("slow", "stroll", "ambles", "leisurely", "unhurried"))
    assert "right" in generate_clip("turn", 3, direction="right").caption
    assert "left" in generate_clip("kick", 3, leg="left").caption
    three = ("three", "3", "thrice", "3x")
    clap = generate_clip("clap", 4, count=3)
    assert not set(clap.caption.split()) & {"one", "two", "four", "five", "six", "once", "twice", "2", "4", "5", "6"}
    assert sum(any(w in v.split() for w in three) for v in caption_variants(clap, 12, 0)) >= 4
    assert "deep" in generate_clip("bow", 5, depth="deep").caption or "low" in generate_clip(
        "bow", 5, depth="deep").caption
    for fam in FAMILIES:
        assert fam.split("_")[0][:3] in " ".join(TEMPLATES[fam]) or fam in ("side_step", "raise_arms", "spin",
                                                                            "sit_down", "stand_up", "punch")


@pytest.mark.slow  # > 1.4 s: make test-fast stays under 90 s
def test_train_and_test_splits_use_disjoint_templates_and_seeds():
    train = make_corpus(500, seed=3, split="train")
    test = make_corpus(80, seed=3, split="test")
    for clip in train:
        t = clip.params["template"]
        assert all(i < N_TRAIN for i in (t if isinstance(t, list) else [t]))
    for clip in test:
        t = clip.params["template"]
        assert all(i >= N_TRAIN for i in (t if isinstance(t, list) else [t]))
    assert not {c.seed for c in train} & {c.seed for c in test}
    assert not {c.caption for c in train} & {c.caption for c in test}
    st = corpus_stats(train)
    assert set(st["families"]) == set(FAMILIES)
    assert all(n >= 5 for n in st["templates_per_family"].values()), st["templates_per_family"]
    assert st["distinct_captions"] > 0.8 * len(train)
    assert st["sequences"] > 20
    assert MIN_FRAMES <= st["frames"]["min"] <= st["frames"]["max"] <= MAX_FRAMES


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="unknown family"):
        generate_clip("moonwalk", 0)
    with pytest.raises(ValueError, match="hand"):
        generate_clip("wave", 0, hand="middle")
    with pytest.raises(ValueError, match="split"):
        make_corpus(2, 0, split="validation")
    with pytest.raises(TypeError):
        generate_clip("walk", "seed")


def test_corpus_features_compute():
    """(Speed is measured, not asserted: see the README's corpus figures.)"""
    from backend.motion.features import joints_to_features

    clips = make_corpus(300, seed=1, split="all")
    assert len(clips) == 300
    f = joints_to_features(clips[0].joints)
    assert f.shape == (clips[0].length - 1, 263) and np.isfinite(f).all()


def test_every_clip_starts_facing_plus_z_at_the_origin():
    for fam in FAMILIES:
        clip = generate_clip(fam, 21)
        yaw0 = np.rad2deg(C.root_yaw(clip.joints[:2])[0])
        assert abs(yaw0) < 8, (fam, yaw0)
        assert np.abs(clip.joints[0, 0, [0, 2]]).max() < 0.15, fam


def test_gaits_roll_onto_the_toe_before_lifting():
    clip = generate_clip("walk", 8, direction="forward", speed="normal")
    c = clip.contacts
    toe_only = c[:, 1] & ~c[:, 0]  # left foot: channels (left_ankle, left_foot)
    assert toe_only.any() and (c[:, 0] <= c[:, 1]).all() and (c[:, 2] <= c[:, 3]).all()
    # during toe-only frames the heel (ankle) rises while the toe stays put
    j = clip.joints
    rest = j[0, J["left_ankle"], 1]
    assert j[toe_only, J["left_ankle"], 1].max() > rest + 0.03
    assert j[toe_only, J["left_ankle"], 1].min() > rest - 1e-4
    assert C.check_foot_skate(j, c)


@pytest.mark.parametrize("family,a,b", [
    ("wave", dict(hand="right"), dict(hand="left")),
    ("kick", dict(leg="left", count=1, height="high"), dict(leg="right", count=1, height="high")),
    ("turn", dict(direction="left", angle=90), dict(direction="right", angle=90)),
    ("side_step", dict(direction="left", count=2), dict(direction="right", count=2)),
    ("hop", dict(leg="left", count=2, direction="forward"), dict(leg="right", count=2, direction="forward")),
])
def test_left_and_right_variants_are_exact_mirror_images(family, a, b):
    from backend.motion.features import mirror_joints

    x, y = generate_clip(family, 5, **a), generate_clip(family, 5, **b)
    assert x.joints.shape == y.joints.shape
    np.testing.assert_allclose(mirror_joints(x.joints), y.joints, atol=1e-5)
    np.testing.assert_array_equal(x.contacts[:, [2, 3, 0, 1]], y.contacts)


def test_motions_survive_the_263d_feature_round_trip():
    from backend.motion.features import features_to_joints, joints_to_features

    for fam in ("walk", "jump_forward", "spin", "sit_down"):
        clip = generate_clip(fam, 6)
        back = features_to_joints(joints_to_features(clip.joints))
        assert np.abs(back - clip.joints[:len(back)]).max() < 0.005, fam


def test_caption_variants_rephrase_the_same_parameters():
    from backend.synthetic import caption_variants

    plain = make_corpus(40, seed=5, split="train")
    rich = make_corpus(40, seed=5, split="train", captions_per_clip=6)
    for a, b in zip(plain, rich):  # variants come from their own stream: the clips are unchanged
        assert np.array_equal(a.joints, b.joints) and a.caption == b.caption and a.family == b.family
        assert b.captions[0] == b.caption and len(set(b.captions)) == len(b.captions) >= 3
        assert not a.captions
    assert [c.captions for c in rich] == [c.captions for c in make_corpus(40, seed=5, split="train",
                                                                          captions_per_clip=6)]
    # the words follow the parameters; the split's templates only ("is moving ... on foot" is held out)
    walk = generate_clip("walk", 7, direction="backward", speed="slow", split="train")
    vs = caption_variants(walk, 12, 0, "train")
    assert all(any(w in v for w in ("backward", "back", "in reverse", "bwd")) for v in vs)
    assert not any("on foot" in v for v in vs)
    assert any("on foot" in v or "walk " in v for v in caption_variants(walk, 12, 0, "test")[1:])
    seq = generate_clip("wave+punch", 3, params_a={"hand": "left"}, split="train")
    assert all("left" in v.split(",")[0] or "left" in v for v in caption_variants(seq, 8, 1))
    assert len(caption_variants(seq, 1, 0)) == 1


@pytest.mark.slow
def test_held_out_phrasings_use_only_words_the_training_captions_use():
    """Held-out templates are new sentences, not new words: a text encoder trained from scratch on the corpus
    has no embedding for a word it never saw, so an unseen word would measure nothing it could learn."""
    train = corpus_stats(make_corpus(2500, seed=0, split="train", captions_per_clip=4))["vocabulary"]
    test = corpus_stats(make_corpus(600, seed=0, split="test"))["vocabulary"]
    assert not set(test) - set(train), sorted(set(test) - set(train))
    held = {t for f in TEMPLATES for t in TEMPLATES[f][N_TRAIN:]}
    assert not held & {t for f in TEMPLATES for t in TEMPLATES[f][:N_TRAIN]}
