"""core/foot_lock.py without Blender: contacts, weights, pins and the two-bone leg IK."""

import numpy as np
import pytest

from remomask_addon.core import foot_lock as fl
from remomask_addon.core import smpl_rig


def test_two_bone_ik_reaches_reachable_targets_and_keeps_lengths():
    rng = np.random.default_rng(0)
    F = 200
    A = rng.normal(size=(F, 3))
    u = rng.normal(size=(F, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = rng.normal(size=(F, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    B = A + 0.45 * u
    C = B + 0.40 * v
    # targets within the reach (0.1 .. 0.8 from the hip), in random directions
    d = rng.uniform(0.1, 0.8, size=F)
    w = rng.normal(size=(F, 3))
    target = A + w / np.linalg.norm(w, axis=1, keepdims=True) * d[:, None]
    dA, dB = fl.two_bone_ik(A, B, C, target, hinge_fallback=np.tile([1.0, 0.0, 0.0], (F, 1)))
    B2 = A + np.einsum("fij,fj->fi", dA, B - A)
    C2 = A + np.einsum("fij,fj->fi", dA, B - A + np.einsum("fij,fj->fi", dB, C - B))
    np.testing.assert_allclose(C2, target, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(B2 - A, axis=1), 0.45, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(C2 - B2, axis=1), 0.40, atol=1e-12)
    for R in (dA, dB):
        np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)


def test_two_bone_ik_out_of_reach_points_the_leg_at_the_target():
    A = np.zeros((1, 3))
    B = np.array([[0.0, 0.0, -0.45]])
    C = np.array([[0.1, 0.0, -0.8]])
    target = np.array([[0.0, 2.0, -1.0]])                       # far beyond the leg's 0.81
    dA, dB = fl.two_bone_ik(A, B, C, target, hinge_fallback=np.array([[1.0, 0.0, 0.0]]))
    C2 = (A + dA[0] @ (B - A + (dB[0] @ (C - B)[0]))[0])[0]
    d = np.linalg.norm(C2)
    assert d == pytest.approx(fl.REACH * (0.45 + np.hypot(0.1, 0.35)), abs=1e-9)
    np.testing.assert_allclose(C2 / d, target[0] / np.linalg.norm(target[0]), atol=1e-9)


def test_rotation_between():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    R = fl.rotation_between(a, b)
    got = np.einsum("fij,fj->fi", R, a)
    np.testing.assert_allclose(got / np.linalg.norm(got, axis=1, keepdims=True),
                               b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-9)
    # opposite vectors: a half turn
    R = fl.rotation_between(np.array([[1.0, 0, 0]]), np.array([[-2.0, 0, 0]]))
    np.testing.assert_allclose(R[0] @ [1.0, 0, 0], [-1.0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(fl.rotation_between(np.zeros((1, 3)), b[:1])[0], np.eye(3))


def test_contacts_are_low_slow_and_cleaned():
    F, fps = 40, 20.0
    p = np.zeros((F, 1, 3))
    p[:, 0, 0] = np.where(np.arange(F) < 20, 0.0, (np.arange(F) - 20) * 0.1)   # still, then 2 m/s
    p[:, 0, 2] = 0.05
    p[5, 0, 2] = 0.2                                                            # one frame up: a gap closed
    c = fl.detect_contacts(p, [0.05], 0.0, fps=fps)[:, 0]
    assert c[:20].all() and not c[21:].any()
    # a contact of two frames is dropped
    m = np.zeros(10, bool)
    m[3:5] = True
    assert not fl.clean_mask(m).any()


def test_weights_hold_contacts_fully_and_ramp_outside():
    m = np.zeros(30, bool)
    m[10:20] = True
    w = fl.contact_weights(m, fps=20.0, ramp_s=0.1)             # 2 frames of ramp
    assert (w[10:20] == 1.0).all()
    np.testing.assert_allclose(w[7:10], [0.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(w[20:23], [2 / 3, 1 / 3, 0.0])
    assert (w[:7] == 0).all() and (w[23:] == 0).all()


def test_pins_hold_one_place_per_contact():
    F = 30
    path = np.stack([np.linspace(0, 3, F), np.linspace(1, 2, F), np.linspace(0.1, 0.2, F)], -1)
    m = np.zeros(F, bool)
    m[5:10] = True
    m[20:25] = True
    pins = fl.pin_positions(path, m)
    np.testing.assert_allclose(pins[5:10, :2], np.broadcast_to(path[5:10, :2].mean(0), (5, 2)))
    np.testing.assert_allclose(pins[20:25, :2], np.broadcast_to(path[20:25, :2].mean(0), (5, 2)))
    np.testing.assert_array_equal(pins[:, 2], path[:, 2])
    np.testing.assert_allclose(pins[12, :2], pins[5, :2])        # nearest contact
    assert np.isnan(fl.pin_positions(path, np.zeros(F, bool))).all()


def test_lock_legs_pins_a_sliding_leg():
    """A straight-ish leg whose ankle slides 30 cm during a contact: after lock_legs the ankle stays put."""
    F, fps = 20, 20.0
    names = ["thigh", "shin", "foot", "toe"]
    index = {n: i for i, n in enumerate(names)}
    P = np.broadcast_to(np.eye(4), (F, 4, 4, 4)).copy()
    slide = np.linspace(0, 0.3, F)
    bend = smpl_rig.axis_angle_to_matrix(np.array([0.3, 0.0, 0.0]))
    for f in range(F):
        P[f, 0, :3, 3] = [0.0, 0.0, 0.9]
        P[f, 1, :3, 3] = [0.0, 0.0, 0.45]
        P[f, 2, :3, 3] = [0.0, slide[f] * 0.1, 0.05]
        P[f, 3, :3, 3] = [0.0, slide[f] * 0.1 - 0.1, 0.0]
        P[f, 1, :3, :3] = bend
    P[:, 2, :3, 3] += np.stack([slide, np.zeros(F), np.zeros(F)], -1)
    P[:, 3, :3, 3] += np.stack([slide, np.zeros(F), np.zeros(F)], -1)
    rot = {n: np.broadcast_to(np.eye(3), (F, 3, 3)).copy() for n in names[:3]}
    contacts = np.ones((F, 1), bool)
    out, drop, ankles, toes = fl.lock_legs(P, rot, index, [fl.Leg(*names)], contacts, contacts, fps=fps)
    assert np.ptp(ankles[:, 0, :2], axis=0).max() < 1e-6
    assert np.ptp(toes[:, 0, :2], axis=0).max() < 0.01
    assert (drop >= 0).all() and set(out) == set(rot)
