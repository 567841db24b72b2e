"""Shared fixtures for the SMPL fitting tests: a synthetic SMPL-format model file, built once per session."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def smpl_dir(tmp_path_factory):
    from smpl_fitting.synthetic import write_synthetic_smpl_model

    folder = tmp_path_factory.mktemp("smpl_models")
    write_synthetic_smpl_model(folder)
    return folder


@pytest.fixture(scope="session")
def smpl_body(smpl_dir):
    pytest.importorskip("smplx")
    from smpl_fitting.body_model import SMPLBody

    return SMPLBody(smpl_dir)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
