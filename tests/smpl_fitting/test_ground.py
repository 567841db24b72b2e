"""Feet on the ground (smpl_fitting.ground): the fit stands on the floor, contacts touch it and stay put, the
legs keep their lengths, and the result is no jerkier than its input. Synthetic input made from the corpus's
walks (short legs, sunk into the floor or floating above it, sliding stance feet), then the starter model's own
generations."""

import numpy as np
import pytest

from smpl_fitting import FitError, fit_motion, ground_metrics as gm, skeleton as sk
from smpl_fitting.ground import (GroundSettings, _arm_ik, _globals, _leg_ik, _pin_hands, foot_contacts, hand_contacts,
                                 hand_weights, rest_heights)
from smpl_fitting.ik import continuous_rotvecs, rest_from_joints, solve_ik
from smpl_fitting.optimize import FOOT_JOINTS, refine
from smpl_fitting.synthetic import smooth_motion

synthetic = pytest.importorskip("backend.synthetic")

FLOOR_TOL = 0.01      # no foot joint more than 1 cm below the floor
CONTACT_TOL = 0.01    # contact toes / ankles on average within 1 cm of their rest height above the floor
SKATE_RATIO = 1.5     # contact skate at most 1.5 x the corpus's


def corrupt(clean, sink=0.03, short=0.06, sway=0.03):
    """Generated-looking joints: legs up to ``short`` shorter (varying over time), feet swaying sideways by
    ``sway`` (stance feet slide ~12 cm/s), the whole body ``sink`` below the floor (negative: floating)."""
    j = np.asarray(clean, float).copy()
    t = np.arange(len(j)) / 20.0
    s = 1.0 - short * (0.5 + 0.5 * np.sin(2 * np.pi * t / 1.3))
    for knee, ankle, toe in ((sk.L_KNEE, sk.L_ANKLE, sk.L_FOOT), (sk.R_KNEE, sk.R_ANKLE, sk.R_FOOT)):
        new_ankle = j[:, knee] + s[:, None] * (j[:, ankle] - j[:, knee])
        j[:, toe] += new_ankle - j[:, ankle]
        j[:, ankle] = new_ankle
    for side, (ankle, toe) in enumerate(((sk.L_ANKLE, sk.L_FOOT), (sk.R_ANKLE, sk.R_FOOT))):
        j[:, [ankle, toe], 0] += (sway * np.sin(2 * np.pi * t + side))[:, None]
    j[..., 1] -= sink
    return j


def heights_of(res):
    return rest_heights(res.rest_joints)


@pytest.mark.parametrize("sink", [0.03, -0.04])
@pytest.mark.parametrize("seed", [100, 101])
def test_short_legged_sunk_sliding_walk_is_grounded(seed, sink):
    clean = synthetic.generate_clip("walk", seed, direction="forward").joints.astype(float)
    joints = corrupt(clean, sink=sink)
    res = fit_motion(joints)
    off = fit_motion(joints, ground_feet=False)
    assert res.ground.applied and off.ground is None
    # input and the old fit: through the floor (or floating); grounded: on it
    if sink > 0:
        assert gm.lowest_foot(joints) < -0.025 and gm.lowest_foot(off.joints) < -0.02
    assert gm.lowest_foot(res.joints) > -FLOOR_TOL
    # contact feet touch the floor: toes at 0, ankles at their rest height (contacts of the input)
    contact = foot_contacts(joints, res.rest_joints)
    assert contact.sum() > 0.3 * contact.size
    fl = gm.floating(res.joints, contact, heights_of(res))
    assert abs(fl["toe_m"]) < CONTACT_TOL and abs(fl["ankle_m"]) < CONTACT_TOL, fl
    assert abs(gm.floating(off.joints, contact, heights_of(res))["all_m"]) > 0.015  # the old fit does not
    # stance feet locked: less skate than the clean corpus walk itself, a fraction of the input's
    skate_fit, skate_in, skate_clean = (gm.contact_skate(x) for x in (res.joints, joints + [0, sink, 0], clean))
    assert skate_fit < SKATE_RATIO * skate_clean and skate_fit < 0.35 * skate_in, (skate_fit, skate_in)
    # bone lengths: the rest skeleton's, on every frame
    lengths = sk.bone_lengths(res.joints)[:, 1:22]
    np.testing.assert_allclose(lengths, np.broadcast_to(sk.bone_lengths(res.rest_joints[None])[0, 1:22],
                                                         lengths.shape), atol=1e-9)
    # smooth: no jerkier than the input; the head follows the clean motion (no bobbing from the corrections)
    assert gm.jerk(res.joints) <= gm.jerk(joints)
    head = res.joints[:, sk.HEAD, 1] - clean[:, sk.HEAD, 1]
    assert np.ptp(head) < 0.015
    plain = fit_motion(joints, ground_feet=False, foot_lock=False)
    head_jerk = [np.abs(np.diff(x[:, sk.HEAD, 1], 3)).mean() for x in (res.joints, plain.joints, off.joints)]
    assert head_jerk[0] <= min(head_jerk[1:])   # the corrections add no up-and-down of their own
    # the knees stay one-way hinges
    assert np.all(res.poses[:, [sk.L_KNEE, sk.R_KNEE], 0] > -0.05)


def test_jump_keeps_its_flight():
    clip = synthetic.generate_clip("jump_in_place", 7)
    clean = clip.joints.astype(float)
    joints = clean - [0.0, 0.02, 0.0]
    res = fit_motion(joints)
    assert gm.lowest_foot(res.joints) > -FLOOR_TOL
    toe = res.joints[:, [sk.L_FOOT, sk.R_FOOT], 1].min(1)
    clean_toe = clean[:, [sk.L_FOOT, sk.R_FOOT], 1].min(1)
    input_toe = joints[:, [sk.L_FOOT, sk.R_FOOT], 1].min(1)
    flight = clean_toe > 0.05
    assert flight.sum() >= 3
    # in the air the feet follow the input's jump (not pulled down to the floor, not flattened); on the floor
    # otherwise
    assert np.abs(toe[flight] - input_toe[flight]).max() < 0.02
    assert toe.max() > 0.9 * input_toe.max()
    down = clean_toe < 0.005
    down[1:-1] &= down[:-2] & down[2:]                       # (not the take-off and landing frames themselves)
    assert np.abs(toe[down]).max() < CONTACT_TOL


def test_pelvis_lowered_when_a_pinned_foot_is_out_of_reach():
    """The input stretches its legs for 15 frames (body 4 cm higher, feet on the floor); the fit keeps the
    median leg length, so the pinned feet are out of reach unless the pelvis comes down (smoothly)."""
    clean = synthetic.generate_clip("wave", 3).joints.astype(float)
    joints = clean.copy()
    t = np.arange(len(joints))
    bump = 0.04 * np.clip(1 - np.abs(t - 30) / 10, 0, 1) ** 0.5 * (np.abs(t - 30) <= 10)
    up = [j for j in range(22) if j not in FOOT_JOINTS]
    joints[:, up, 1] += bump[:, None]
    res = fit_motion(joints)
    contact = foot_contacts(joints, res.rest_joints)
    assert contact[20:41].all()
    toes = res.joints[:, [sk.L_FOOT, sk.R_FOOT], 1]
    assert np.abs(toes).max() < CONTACT_TOL                      # feet stay on the floor throughout
    drop = joints[:, 0, 1] - res.joints[:, 0, 1]
    assert drop[27:34].min() > 0.015                             # the pelvis came down for them
    assert np.abs(np.diff(res.joints[:, 0, 1], 2)).max() < 0.01  # smoothly (< 1 cm/frame^2)
    assert np.all(res.poses[:, [sk.L_KNEE, sk.R_KNEE], 0] > -0.05)


def test_model_contacts_pin_feet_the_joints_miss():
    """Stance feet sliding at ~0.35 m/s are too fast for detection from the joints alone; the generator's
    contact channels (here: the corpus's true contacts) still pin them."""
    clip = synthetic.generate_clip("walk", 102, direction="forward")
    joints = corrupt(clip.joints, sink=0.0, short=0.0, sway=0.07)
    without = fit_motion(joints)
    with_model = fit_motion(joints, contacts=clip.contacts.astype(float))
    assert sum(with_model.ground.contact_frames) > 1.2 * sum(without.ground.contact_frames)
    assert gm.contact_skate(with_model.joints) < 0.7 * gm.contact_skate(without.joints)
    # HumanML3D features hold one row less than the joints: accepted
    fit_motion(joints[:20], contacts=clip.contacts[:19].astype(float))


def _random_fit(rng, frames: int = 30):
    """A smooth random motion's IK fit: (rest joints, the IKResult, global rotations, FK positions)."""
    rest = sk.TEMPLATE_REST_JOINTS + [0.0, 0.92, 0.0]
    poses, trans = smooth_motion(frames, rng)
    ik = solve_ik(sk.forward_kinematics(rest, poses, trans), rest)
    return rest, ik, _globals(ik.local_mats), sk.forward_kinematics(rest, ik.poses, ik.trans)


def _turn_of(new, old):
    """Rotation vectors (T, 3) of new @ old^T: how a joint's local rotation changed."""
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(np.einsum("tij,tjk->tik", new, np.swapaxes(old, -1, -2))).as_rotvec()


def test_leg_ik_reaches_its_targets_and_keeps_the_hinge(rng):
    rest, ik, glob, pos = _random_fit(rng)
    local = ik.local_mats
    hip, knee, ankle, toe = sk.L_HIP, sk.L_KNEE, sk.L_ANKLE, sk.L_FOOT
    # targets: the foot moved by up to 6 cm
    move = rng.uniform(-0.06, 0.06, (30, 3))
    a_t, o_t = pos[:, ankle] + move, pos[:, toe] + move
    leg = np.linalg.norm(rest[knee] - rest[hip]) + np.linalg.norm(rest[ankle] - rest[knee])
    reach = np.linalg.norm(a_t - pos[:, hip], axis=-1) < 0.999 * leg
    assert 10 <= reach.sum() < 30
    new = local.copy()
    new[:, hip], new[:, knee], new[:, ankle] = _leg_ik(rest, glob, local, pos[:, hip], a_t, o_t, hip, knee,
                                                       ankle, toe)
    out = sk.forward_kinematics(rest, continuous_rotvecs(new), ik.trans)
    np.testing.assert_allclose(out[reach, ankle], a_t[reach], atol=1e-7)
    np.testing.assert_allclose(out[reach, toe], o_t[reach], atol=1e-6)   # the foot moved rigidly: exact too
    # out of reach: the leg is straight, pointing at the target
    far = ~reach
    d_out, d_t = out[far, ankle] - out[far, hip], a_t[far] - pos[far, hip]
    np.testing.assert_allclose(np.linalg.norm(d_out, axis=-1), leg, rtol=5e-3)   # (the knee's residual swing)
    cos = np.sum(d_out * d_t, -1) / np.linalg.norm(d_out, axis=-1) / np.linalg.norm(d_t, axis=-1)
    assert cos.min() > 1 - 1e-9
    others = [j for j in range(24) if j not in (knee, ankle, toe)]
    np.testing.assert_allclose(out[:, others], pos[:, others], atol=1e-9)
    # the knee bends about its hinge only (its local rotation changed by a rotation about x), the flexion way
    assert np.abs(_turn_of(new[:, knee], local[:, knee])[:, 1:]).max() < 1e-9
    assert np.all(continuous_rotvecs(new)[:, knee, 0] > -0.05)


def test_arm_ik_reaches_its_targets_and_keeps_the_hand_still(rng):
    rest, ik, glob, pos = _random_fit(rng)
    local = ik.local_mats
    shoulder, elbow, wrist, hand = sk.R_SHOULDER, sk.R_ELBOW, sk.R_WRIST, sk.R_HAND
    target = pos[:, wrist] + rng.uniform(-0.06, 0.06, (30, 3))
    arm = np.linalg.norm(rest[elbow] - rest[shoulder]) + np.linalg.norm(rest[wrist] - rest[elbow])
    reach = np.linalg.norm(target - pos[:, shoulder], axis=-1) < 0.999 * arm
    assert reach.sum() >= 10
    new = local.copy()
    new[:, shoulder], new[:, elbow], new[:, wrist] = _arm_ik(rest, glob, local, pos[:, shoulder], target,
                                                             shoulder, elbow, wrist)
    out = sk.forward_kinematics(rest, continuous_rotvecs(new), ik.trans)
    np.testing.assert_allclose(out[reach, wrist], target[reach], atol=1e-7)
    # the hand keeps its orientation in the world: wrist -> hand is the same vector as before
    np.testing.assert_allclose(out[:, hand] - out[:, wrist], pos[:, hand] - pos[:, wrist], atol=1e-9)
    others = [j for j in range(24) if j not in (elbow, wrist, hand)]
    np.testing.assert_allclose(out[:, others], pos[:, others], atol=1e-9)
    # the elbow bends about its hinge only (y of the shoulder's frame)
    assert np.abs(_turn_of(new[:, elbow], local[:, elbow])[:, [0, 2]]).max() < 1e-9


def test_hand_contacts_are_low_and_slow_wrists():
    t = 42
    j = np.zeros((t, 22, 3))
    j[:, :, 1] = 1.0
    j[:, sk.L_WRIST, 1] = 0.05                                   # on the floor ...
    j[:, sk.L_WRIST, 0] = np.where(np.arange(t) < 20, 0.0, np.arange(t) * 0.05)   # ... still, then 1 m/s
    j[:, sk.R_WRIST, 1] = 0.4                                    # still, but up in the air
    m = hand_contacts(j)
    assert m[:18, 0].all() and not m[22:, 0].any() and not m[:, 1].any()
    up = np.arange(t) % 6 == 0
    j[:, sk.R_WRIST, 1] = np.where(up, 0.5, 0.1)                 # up for one frame in six: a gap that is closed
    assert hand_contacts(j)[1:, 1].all()
    up |= np.arange(t) % 6 == 1
    j[:, sk.R_WRIST, 1] = np.where(up, 0.5, 0.1)                 # up for two: contacts of four frames
    np.testing.assert_array_equal(hand_contacts(j)[:, 1], ~up)
    j[:, sk.R_WRIST, 1] = np.where(np.arange(t) % 4 < 2, 0.5, 0.1)  # down for two frames only: too short
    assert not hand_contacts(j, settings=GroundSettings(min_frames=3))[:, 1].any()


def test_hands_on_the_floor_stay_put(rng):
    """A wrist in contact that wobbles a few cm to and fro (as generated hands on the floor do) is pinned; the
    rest is untouched."""
    rest = sk.TEMPLATE_REST_JOINTS + [0.0, 0.92, 0.0]
    poses, trans = smooth_motion(50, rng)
    poses, trans = np.repeat(poses[:1], 50, 0), np.repeat(trans[:1], 50, 0)
    poses[:, sk.L_SHOULDER] += 0.12 * np.sin(2 * np.pi * np.arange(50) / 10)[:, None] * np.array([0.0, 0.6, 0.8])
    ik = solve_ik(sk.forward_kinematics(rest, poses, trans), rest)
    before = sk.forward_kinematics(rest, ik.poses, ik.trans)
    mask = np.zeros((50, 2), bool)
    mask[10:40, 0] = True
    s = GroundSettings()
    new = _pin_hands(rest, ik.local_mats, ik.trans, mask, True, s)
    out = sk.forward_kinematics(rest, continuous_rotvecs(new), ik.trans)
    w = hand_weights(mask, s.ramp_frames)[:, 0]
    # pinned on every contact frame, eased over the 6 frames before and after it
    assert (w[mask[:, 0]] == 1).all() and 0 < w[4] < w[9] < 1 and w[3] == 0 and 0 < w[45] < w[40] < 1 and w[46] == 0
    full = w > 0.999
    v_in = np.linalg.norm(np.diff(before[:, sk.L_WRIST, [0, 2]], axis=0), axis=-1)[full[1:] & full[:-1]].mean()
    v_out = np.linalg.norm(np.diff(out[:, sk.L_WRIST, [0, 2]], axis=0), axis=-1)[full[1:] & full[:-1]].mean()
    assert v_in > 0.005 and v_out < 0.05 * v_in, (v_in, v_out)
    # its height is the contact's median (the smooth test motion's wrist is above hand_floor_m)
    low = np.median(before[10:40, sk.L_WRIST, 1])
    np.testing.assert_allclose(out[full, sk.L_WRIST, 1], max(low, s.hand_floor_m), atol=1e-6)
    # the other arm, the frames away from the contact and every joint but the left arm's: as they were
    untouched = w < 1e-6
    np.testing.assert_allclose(out[untouched], before[untouched], atol=1e-9)
    left_arm = (sk.L_ELBOW, sk.L_WRIST, sk.L_HAND)
    others = [j for j in range(24) if j not in left_arm]
    np.testing.assert_allclose(out[:, others], before[:, others], atol=1e-9)


def test_wrists_never_go_through_the_floor(rng):
    rest, ik, _, before = _random_fit(rng, 40)
    trans = ik.trans - [0.0, np.median(before[:, sk.R_WRIST, 1]), 0.0]   # the right wrist half below y = 0
    s = GroundSettings()
    new = _pin_hands(rest, ik.local_mats, trans, np.zeros((40, 2), bool), True, s)
    out = sk.forward_kinematics(rest, continuous_rotvecs(new), trans)
    below = sk.forward_kinematics(rest, ik.poses, trans)[:, sk.R_WRIST, 1] < 0
    assert 10 < below.sum() < 30
    # lifted where the arm can reach (the shoulder itself is no lower than the floor + the arm's length here)
    assert out[:, sk.R_WRIST, 1].min() > s.hand_floor_m - 1e-3   # (the smooth lift covers >= 98.8 %)
    assert gm.jerk(out[:, [sk.R_WRIST]]) < 3 * gm.jerk(before[:, [sk.R_WRIST]])


def test_switch_off_is_the_previous_fit():
    clean = synthetic.generate_clip("walk", 104, direction="forward").joints.astype(float)
    joints = corrupt(clean)
    off = fit_motion(joints, ground_feet=False)
    # what fit_motion did before grounding existed: IK, then the refinement with its soft foot-lock term
    rest = rest_from_joints(joints)
    ik = solve_ik(joints, rest)
    local, trans, _, _ = refine(joints, rest, ik.local_mats, ik.trans, foot_lock=True, fps=20.0, iterations=25)
    np.testing.assert_array_equal(off.poses, continuous_rotvecs(local))
    np.testing.assert_array_equal(off.trans, trans)
    assert off.ground is None
    on = fit_motion(joints)
    assert np.abs(on.joints - off.joints).max() > 0.02


def test_input_off_the_floor_is_left_alone(rng):
    """Joints not standing on y = 0 (e.g. pelvis-centred) are not grounded: the fit is the ungrounded one."""
    poses, trans = smooth_motion(40, rng)
    joints = sk.forward_kinematics(sk.TEMPLATE_REST_JOINTS, poses, trans)[:, :22]   # feet near y = -0.9
    res = fit_motion(joints)
    assert not res.ground.applied and "not near the floor" in res.ground.reason
    np.testing.assert_array_equal(res.joints, fit_motion(joints, ground_feet=False, foot_lock=False).joints)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((40, 3)), r"shape \(40, 4\)"),
    (np.zeros((38, 4)), r"shape \(40, 4\)"),
    (np.zeros((40, 4, 1)), r"shape \(40, 4\)"),
    (np.full((40, 4), np.nan), "NaN"),
    ("yes", "numeric array"),
])
def test_bad_contacts_are_a_fit_error(bad, message):
    joints = corrupt(synthetic.generate_clip("walk", 105).joints)[:40]
    with pytest.raises(FitError, match=message):
        fit_motion(joints, contacts=bad)


def test_cli_no_ground_feet(tmp_path):
    from smpl_fitting.__main__ import main
    clip = synthetic.generate_clip("walk", 106, direction="forward")
    joints = corrupt(clip.joints).astype(np.float32)
    features = np.zeros((len(joints), 263), np.float32)
    features[:, 259:263] = clip.contacts
    np.savez(tmp_path / "m.npz", joints=joints, features=features, fps=np.array(20.0))
    assert main(["--in", str(tmp_path / "m.npz"), "--out", str(tmp_path / "on.npz"), "--quiet"]) == 0
    assert main(["--in", str(tmp_path / "m.npz"), "--out", str(tmp_path / "off.npz"), "--quiet",
                 "--no-ground-feet"]) == 0
    with np.load(tmp_path / "on.npz") as on, np.load(tmp_path / "off.npz") as off:
        np.testing.assert_allclose(on["poses"], fit_motion(joints, contacts=clip.contacts).poses, atol=1e-5)
        np.testing.assert_allclose(off["poses"], fit_motion(joints, ground_feet=False).poses, atol=1e-5)
        fk_on = sk.forward_kinematics(on["rest_joints"], on["poses"], on["trans"])
        fk_off = sk.forward_kinematics(off["rest_joints"], off["poses"], off["trans"])
    assert gm.lowest_foot(fk_on) > -FLOOR_TOL > gm.lowest_foot(fk_off)


# ---------------------------------------------------------------------------- the starter model's output
STARTER_PROMPTS = {"a person walks forward": "walk", "a person jogs forward": "jog",
                   "a person jumps in place": "jump_in_place", "a person turns around": "turn"}


@pytest.fixture(scope="module")
def starter():
    torch = pytest.importorskip("torch")
    try:
        from backend.generation.model_folder import load_pipeline
        pipe = load_pipeline(None)
    except Exception as exc:  # noqa: BLE001 - the starter weights are part of the repository
        pytest.fail(f"the starter model does not load: {exc}")
    torch.set_num_threads(1)
    return pipe


@pytest.fixture(scope="module")
def starter_clips(starter):
    pipe = starter
    prompts = list(STARTER_PROMPTS)
    out = []
    for seed in (0, 1):
        # single draws: the generator's raw output is what the fit is tested on, and the "the problem is real" bar
        # below was set on it (the starter's best of four skates less: 0.38 m/s against 3x the corpus's 0.42)
        for s in pipe.generate(prompts, lengths=[80] * len(prompts), seed=seed, candidates=1):
            out.append((s.prompt, np.asarray(s.joints, float), np.asarray(s.features, float)[:, 259:263]))
    return out


@pytest.mark.slow  # starter-model generations
def test_starter_generations_are_grounded(starter_clips):
    corpus = [synthetic.generate_clip(fam, 1000 + i).joints for fam in STARTER_PROMPTS.values() for i in range(3)]
    corpus_skate = gm.mean_defined(gm.contact_skate(c) for c in corpus)
    rows = []
    for prompt, joints, contacts in starter_clips:
        res = fit_motion(joints, contacts=contacts)
        off = fit_motion(joints, ground_feet=False)
        contact = foot_contacts(joints, res.rest_joints, contacts)
        fl = gm.floating(res.joints, contact, heights_of(res))
        assert gm.lowest_foot(res.joints) > -FLOOR_TOL, prompt
        assert abs(fl["toe_m"]) < CONTACT_TOL and abs(fl["ankle_m"]) < CONTACT_TOL, (prompt, fl)
        assert gm.jerk(res.joints) <= gm.jerk(joints), prompt
        rows.append((gm.lowest_foot(joints), gm.lowest_foot(off.joints), gm.contact_skate(joints),
                     gm.contact_skate(res.joints)))
    low_in, low_off, skate_in, skate_fit = np.array(rows, dtype=float).T
    assert np.median(low_in) < -0.01 and np.median(low_off) < -0.01   # the problem is real on this output
    assert np.nanmean(skate_fit) <= SKATE_RATIO * corpus_skate, (np.nanmean(skate_fit), corpus_skate)
    assert np.nanmean(skate_in) > 2 * SKATE_RATIO * corpus_skate


@pytest.mark.slow  # starter-model generations
def test_starter_push_ups_keep_their_hands_on_the_floor(starter):
    """The starter's push-ups put their hands on the floor and let them creep (0.16-0.22 m/s on the contact
    frames); the fit pins them."""
    rows = []
    for seed in (0, 1):
        s = starter.generate(["a person does push-ups"], seed=seed)[0]
        joints = np.asarray(s.joints, float)
        res = fit_motion(joints, contacts=np.asarray(s.features, float)[:, 259:263])
        mask = hand_contacts(joints)
        assert mask.mean() > 0.3 and res.ground.hand_contact_frames == [int(c) for c in mask.sum(0)]
        for k, wrist in enumerate((sk.L_WRIST, sk.R_WRIST)):
            speed = [np.linalg.norm(np.gradient(a[:, wrist, [0, 2]], axis=0), axis=-1)[mask[:, k]].mean() * 20
                     for a in (joints, res.joints)]
            rows.append(speed)
        assert res.joints[:, [sk.L_WRIST, sk.R_WRIST], 1].min() > GroundSettings().hand_floor_m - 1e-3
    slide_in, slide_fit = np.array(rows).T
    assert slide_in.mean() > 0.1                           # the problem is real on this output
    assert slide_fit.mean() < 0.5 * slide_in.mean(), rows
