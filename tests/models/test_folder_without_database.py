"""A project model folder without ``database/`` still loads and generates, without retrieval, and says so."""

import shutil

import numpy as np
import torch

from backend.generation.model_folder import load_pipeline
from backend.generation.project_weights import STARTER_DIR


def test_project_folder_without_database_generates_unretrieved(tmp_path):
    torch.set_num_threads(1)
    d = tmp_path / "model"
    shutil.copytree(STARTER_DIR, d, ignore=shutil.ignore_patterns("database"))
    assert not (d / "database").exists()
    pipe = load_pipeline(d, "cpu")
    assert pipe.retriever is None
    assert "no database" in pipe.retrieval_note
    (s,) = pipe.generate(["a person walks forward"], lengths=[40], seed=0)
    j = np.asarray(s.joints)
    assert j.shape == (40, 22, 3) and np.isfinite(j).all()
    assert np.ptp(j[:, 0, 2]) + np.ptp(j[:, 0, 0]) > 0.05  # the root moves: a motion, not a frozen pose
