"""Search by example finds the very take: the pose re-ranking of backend/library/rerank.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.library.embed import MotionEmbedder
from backend.library.index import build_index
from backend.library.rerank import descriptor, dtw_distances, pose_distances
from backend.library.search import load_index, search_like
from backend.motion.features import mirror_joints
from backend.motion.motion_file import save_motion
from backend.motion.timing import resample
from backend.synthetic import generate_clip

FAMILIES = ("walk", "squat", "wave", "jump_in_place", "spin")
SEEDS = range(1, 22)  # 5 families x 21 takes = 105 clips: many similar takes of each family


def _retime(j: np.ndarray, factor: float) -> np.ndarray:
    """The clip played ``factor`` times slower (its frames read as if taken at 20 / factor fps)."""
    return resample(j, 20.0 / factor, 20.0).astype(np.float32)


def _turn_and_move(j: np.ndarray, angle: float, offset) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)
    return (j @ rot.T + np.asarray(offset, np.float32)).astype(np.float32)


@pytest.fixture(scope="module")
def embedder():
    torch.set_num_threads(1)
    from backend.generation.model_folder import load_pipeline

    return MotionEmbedder.from_pipeline(load_pipeline(None))


@pytest.fixture(scope="module")
def takes():
    return {f"{f}_{s:02d}": generate_clip(f, s).joints for f in FAMILIES for s in SEEDS}


@pytest.fixture(scope="module")
def many_takes(tmp_path_factory, embedder, takes):
    root = tmp_path_factory.mktemp("takes")
    for i, (name, j) in enumerate(sorted(takes.items())):
        if i % 3 == 0:
            save_motion(root / f"{name}.npz", joints=j)
        else:
            np.save(root / f"{name}.npy", j)
    return load_index(build_index(embedder, root).index_dir, embedder)


def test_the_pose_distance_ignores_mirror_position_facing_and_speed(takes):
    j = takes["walk_03"]
    same = [mirror_joints(j), _turn_and_move(j, 2.0, (3.0, 0.0, -1.5)), _retime(j, 1.25), _retime(j, 0.8)]
    others = [takes[f"walk_{s:02d}"] for s in (4, 5, 6)] + [takes["squat_03"], takes["spin_03"]]
    d = pose_distances(j, same + others)
    assert np.all(d[:2] < 1e-3), d            # mirrored, turned and moved: the same poses
    assert np.all(d[2:4] < 0.012), d          # re-timed (linear resampling smooths the poses a little)
    assert np.all(d[4:] > 2 * d[:4].max()), d  # other takes, of its family or not, are farther
    assert d[-2:].min() > 0.03, d             # another family much farther


def test_dtw_warps_time_but_not_poses():
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.normal(size=(40, 69)), axis=0).astype(np.float32) * 0.01
    slow = np.repeat(a, 2, axis=0)[:60]     # the first 30 frames played twice slower
    shifted = a + 0.1                         # the same timing, every value 10 cm off
    d = dtw_distances(a, [a, slow, shifted, np.zeros((0, 69), np.float32)])
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert d[1] == pytest.approx(0.0, abs=1e-6)   # open end: the slow copy covers a's first 30 frames
    # warping may pair frames better than the diagonal, never worse; a 10 cm offset stays far from a copy
    assert 0.03 < d[2] <= 0.1 * np.sqrt(69 / 22) + 1e-6
    assert d[3] == np.inf
    assert descriptor(np.zeros((5, 22, 3))).shape == (3, 69)


@pytest.mark.slow  # out of make test-fast (its 90 s budget); CI runs it
def test_a_mirrored_or_retimed_copy_finds_the_very_take_first(embedder, many_takes, takes, tmp_path):
    assert len(many_takes) >= 100
    names = sorted(takes)[::5]  # 21 takes, every family
    first = {"mirrored": [], "retimed": []}
    for name in names:
        j = takes[name]
        for kind, q in (("mirrored", mirror_joints(j)), ("retimed", _retime(j, 1.25))):
            path = tmp_path / f"{kind}_{name}.npy"
            np.save(path, q)
            hits = search_like(embedder, many_takes, str(path), k=5)
            first[kind].append(hits[0]["file"].split(".")[0] == name)
            assert hits[0]["pose_distance"] < 0.012 and hits[0]["score"] > hits[1]["score"]
            assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    for kind, f in first.items():
        assert np.mean(f) >= 0.9, (kind, [n for n, ok in zip(names, f) if not ok])


def test_an_ordinary_example_still_finds_its_family(embedder, many_takes, tmp_path):
    precision = []
    for f in FAMILIES:
        for seed in (101, 102):  # takes that are not in the library
            path = tmp_path / f"{f}_{seed}.npy"
            np.save(path, generate_clip(f, seed).joints)
            hits = search_like(embedder, many_takes, str(path), k=5)
            assert all(h["pose_distance"] is not None and 0 < h["pose_distance"] for h in hits)
            precision.append(np.mean([h["file"].startswith(f + "_") for h in hits]))
    assert np.mean(precision) >= 0.9, precision


def test_a_library_file_gone_since_indexing_is_ranked_by_its_embedding(embedder, takes, tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    for name in ("walk_01", "walk_02", "squat_01", "wave_01"):
        np.save(root / f"{name}.npy", takes[name])
    lib = load_index(build_index(embedder, root).index_dir, embedder)
    (root / "walk_02.npy").unlink()
    q = tmp_path / "q.npy"
    np.save(q, mirror_joints(takes["walk_01"]))
    hits = search_like(embedder, lib, str(q), k=4)
    assert hits[0]["file"] == "walk_01.npy" and hits[0]["pose_distance"] < 1e-3
    gone = [h for h in hits if h["file"] == "walk_02.npy"]
    assert len(gone) == 1 and gone[0]["pose_distance"] is None
    assert 0.0 < gone[0]["score"] - gone[0]["embedding_score"] < 2.0
