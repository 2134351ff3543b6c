"""Shared fixtures. Unit tests never touch the network, the user's cache or home folder (nilearn's habit)."""
import os
from pathlib import Path


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, so a container's CPU set counts, not the host's cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per usable CPU, the count the thread share below divides."""
    return usable_cpus()


def _share_the_cores_between_xdist_workers() -> None:
    """Under pytest-xdist (pyproject's addopts), each worker and every notebook kernel it starts get their share of the
    usable CPUs, set before numpy and torch load: more threads than cores spin against each other in torch's OpenMP,
    and two workers at two threads each ran the suite slower than one process. An OMP_NUM_THREADS already set is
    kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(max(1, usable_cpus() // workers))


_share_the_cores_between_xdist_workers()

import numpy as np  # noqa: E402  (after the thread counts are set)
import pytest  # noqa: E402

from ldm_core.data import write_digit69_mat  # noqa: E402
from tests.synthetic_data import make_synthetic_digit69  # noqa: E402

# The real data folder, captured before any test edits the environment (notebook tests use it). CI
# (.ci/run) sets LDM_DATA_DIR to ../shared/data; tests that need the real files use `real_data_dir`.
REAL_DATA_DIR = os.environ.get("LDM_DATA_DIR", "")


def pytest_collection_modifyitems(items):
    """The notebook tests first (stable: each module keeps its order): pytest-xdist hands the long notebook modules out
    before the unit tests, which fill in after, instead of a long module starting last."""
    items.sort(key=lambda item: item.get_closest_marker("notebook") is None)


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path_factory, monkeypatch):
    """An empty download cache and no LDM_DATA_DIR for every test; a temporary HOME for unit tests.

    Notebook tests keep the real HOME (their kernels read Jupyter's folders there) and set LDM_DATA_DIR
    from REAL_DATA_DIR themselves.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("LDM_DATA_DIR", raising=False)
    if request.node.get_closest_marker("notebook") is None:
        monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def real_data(monkeypatch):
    """LDM_DATA_DIR set to the real data folder for a notebook test (its kernels read it); skips without it."""
    if not REAL_DATA_DIR:
        pytest.skip("notebook tests need the real data: set LDM_DATA_DIR (.ci/run does)")
    monkeypatch.setenv("LDM_DATA_DIR", REAL_DATA_DIR)


@pytest.fixture
def real_data_dir():
    """The folder with the real data files (from LDM_DATA_DIR at start-up); skips the test if it is not there."""
    folder = Path(REAL_DATA_DIR) if REAL_DATA_DIR else None
    needed = ("digit69_28x28.mat", "mnist_6_9.npz")
    if folder is None or not all((folder / f).is_file() for f in needed):
        pytest.skip(f"real data not reachable: set LDM_DATA_DIR to the folder holding {', '.join(needed)} "
                    "(.ci/run does)")
    return folder


@pytest.fixture
def synthetic_arrays():
    return make_synthetic_digit69()


@pytest.fixture
def synthetic_mat(tmp_path, synthetic_arrays):
    return write_digit69_mat(tmp_path / "digit69_28x28.mat", synthetic_arrays)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def bar_net():
    """A real PerceptionNet trained once per session on two classes of 16x16 bar images (tests.train_helpers.bars;
    vertical: code 3, horizontal: code 7), shared by the feature-net and metrics tests."""
    from ldm_core.perception_net import train_perception_net
    from tests.train_helpers import BAR_NAMES, bars

    x, y = bars()
    return train_perception_net(x, y, class_names=BAR_NAMES, steps=40, batch_size=32, seed=0)
