"""Shared fixtures. Unit tests never touch the network or the user's cache (nilearn's habit)."""
import os

import numpy as np
import pytest

from ldm_core.data import make_synthetic_digit69, write_digit69_mat

# The real data folder, captured before any test edits the environment (notebook tests use it).
REAL_DATA_DIR = os.environ.get("LDM_DATA_DIR", "")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Point the download cache at an empty temporary folder for every test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def synthetic_arrays():
    return make_synthetic_digit69()


@pytest.fixture
def synthetic_mat(tmp_path, synthetic_arrays):
    return write_digit69_mat(tmp_path / "digit69_28x28.mat", synthetic_arrays)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
