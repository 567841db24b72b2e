"""Normalizer and HumanML3D-style mean/std fitting."""

import numpy as np
import pytest

from backend.motion.features import joints_to_features
from backend.motion.normalize import STD_GROUPS, Normalizer, NormalizerError, fit_normalizer
from backend.motion.procedural import walking_motion


def _feats():
    return [joints_to_features(walking_motion(40 + 10 * i, turn_degrees=40 * i, seed=i)) for i in range(3)]


def test_fit_matches_group_averaging():
    feats = _feats()
    pooled = np.concatenate(feats).astype(np.float64)
    n = fit_normalizer(feats)
    np.testing.assert_allclose(n.mean, pooled.mean(0), rtol=1e-5, atol=1e-6)
    raw = pooled.std(0)
    bounds = [(0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263)]
    assert [(s.start, s.stop) for s, _ in STD_GROUPS] == bounds
    for a, b in bounds:
        np.testing.assert_allclose(n.std[a:b], raw[a:b].mean(), rtol=1e-5)
    # feat_bias scales the root groups and the foot contacts only
    n5 = fit_normalizer(feats, feat_bias=5.0)
    ratio = n.std / n5.std
    np.testing.assert_allclose(ratio[:4], 5.0, rtol=1e-5)
    np.testing.assert_allclose(ratio[4:259], 1.0, rtol=1e-5)
    np.testing.assert_allclose(ratio[259:], 5.0, rtol=1e-5)


def test_fit_skips_nan_and_rejects_empty():
    feats = _feats()
    bad = feats[0].copy()
    bad[3, 10] = np.nan
    a = fit_normalizer(feats[1:])
    b = fit_normalizer([bad] + feats[1:])
    np.testing.assert_allclose(a.mean, b.mean)
    with pytest.raises(ValueError, match="no usable frames"):
        fit_normalizer([bad])
    with pytest.raises(ValueError, match="shape"):
        fit_normalizer([np.zeros((4, 262))])


def test_round_trip_numpy_and_torch():
    feats = _feats()
    n = fit_normalizer(feats)
    x = feats[0]
    z = n.normalize(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    assert abs(np.concatenate([n.normalize(f) for f in feats])[:, 4:67].mean()) < 1e-3
    np.testing.assert_allclose(n.denormalize(z), x, atol=1e-5)
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x).double()[None]
    zt = n.normalize(t)
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float64 and zt.shape == (1,) + x.shape
    np.testing.assert_allclose(zt[0].numpy(), z, atol=1e-5)
    np.testing.assert_allclose(n.denormalize(zt).numpy()[0], x, atol=1e-5)
    with pytest.raises(ValueError, match="263"):
        n.normalize(np.zeros((3, 10)))


def test_save_load_and_errors(tmp_path):
    n = fit_normalizer(_feats())
    n.save(tmp_path)
    m = Normalizer.load(tmp_path)
    np.testing.assert_array_equal(m.mean, n.mean)
    np.testing.assert_array_equal(m.std, n.std)
    # HumanML3D's capitalised names are accepted too
    other = tmp_path / "hml"
    other.mkdir()
    np.save(other / "Mean.npy", n.mean)
    np.save(other / "Std.npy", n.std)
    np.testing.assert_array_equal(Normalizer.load(other).std, n.std)

    with pytest.raises(FileNotFoundError, match="not found"):
        Normalizer.load(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="mean.npy"):
        Normalizer.load(empty)
    np.save(empty / "mean.npy", n.mean)
    with pytest.raises(FileNotFoundError, match="std.npy"):
        Normalizer.load(empty)
    np.save(empty / "std.npy", n.std[:100])
    with pytest.raises(NormalizerError, match="equal-length"):
        Normalizer.load(empty)
    s = n.std.copy()
    s[5] = 0
    np.save(empty / "std.npy", s)
    with pytest.raises(NormalizerError, match="> 0"):
        Normalizer.load(empty)
    s[5] = np.nan
    np.save(empty / "std.npy", s)
    with pytest.raises(NormalizerError, match="NaN"):
        Normalizer.load(empty)
    (empty / "std.npy").write_bytes(b"not an npy file")
    with pytest.raises(NormalizerError, match="cannot read"):
        Normalizer.load(empty)
    np.save(empty / "std.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(NormalizerError, match="cannot read"):
        Normalizer.load(empty)
