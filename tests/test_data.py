import hashlib
import urllib.error

import numpy as np
import pytest
import scipy.io

from ldm_core import data as D
from ldm_core.data import (DataFileError, FmriNormalizer, fetch_digit69, load_digit69, make_synthetic_digit69,
                           train_val_split, write_digit69_mat)


# --- loading and orientation -------------------------------------------------------------------------


def test_load_synthetic_shapes_and_ranges(synthetic_mat):
    d = load_digit69(synthetic_mat, verbose=0)
    assert d.fmri_train.shape == (20, 40) and d.fmri_test.shape == (6, 40)
    assert d.images_train.shape == (20, 12, 12) and d.images_train.dtype == np.float32
    assert 0.0 <= d.images_train.min() and d.images_train.max() <= 1.0
    assert set(np.unique(d.labels_train)) == {1, 2}
    assert d.n_voxels == 40 and d.image_size == 12
    assert d.sha256 == hashlib.sha256(synthetic_mat.read_bytes()).hexdigest()


def test_orientation_is_upright(synthetic_mat):
    """Class 1 has a bright block in the top-left that is taller than wide: only a transposed load shows it."""
    d = load_digit69(synthetic_mat, verbose=0)
    six = d.images_train[d.labels_train == 1].mean(axis=0)
    h = 6
    assert six[:h, : h - 1].mean() > 0.9  # top-left block, rows 0..5, cols 0..4
    assert six[h - 1, 0] > 0.9 and six[0, h - 1] < 0.5  # taller than wide: (5, 0) bright, (0, 5) dark


def test_orientation_of_a_known_column_major_image(tmp_path):
    """A single bright pixel at MATLAB (row 1, col 3) must land at [1, 3] after loading."""
    arrays = make_synthetic_digit69(n_train=4, n_test=2, image_size=6)
    img = np.zeros((6, 6), dtype=np.uint8)
    img[1, 3] = 255
    arrays["stimTrn"][0] = img.flatten(order="F")  # MATLAB stores column-major
    d = load_digit69(write_digit69_mat(tmp_path / "x.mat", arrays), verbose=0)
    assert d.images_train[0, 1, 3] == 1.0 and d.images_train[0, 3, 1] == 0.0


def test_other_sizes_work(tmp_path):
    arrays = make_synthetic_digit69(n_train=14, n_test=4, n_voxels=17, image_size=10)
    d = load_digit69(write_digit69_mat(tmp_path / "y.mat", arrays), verbose=0)
    assert d.fmri_train.shape == (14, 17) and d.images_test.shape == (4, 10, 10)


# --- validation errors -----------------------------------------------------------------------------


def _write(tmp_path, arrays, name="bad.mat"):
    return write_digit69_mat(tmp_path / name, arrays)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere"):
        load_digit69(tmp_path / "nothere" / "digit69_28x28.mat", verbose=0)


def test_not_a_mat_file(tmp_path):
    p = tmp_path / "digit69_28x28.mat"
    p.write_text("this is not matlab")
    with pytest.raises(DataFileError, match=r"not a readable MATLAB \.mat file"):
        load_digit69(p, verbose=0)


def test_missing_key(tmp_path, synthetic_arrays):
    del synthetic_arrays["labelTest"]
    with pytest.raises(DataFileError, match=r"key 'labelTest': missing key"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_wrong_shape(tmp_path, synthetic_arrays):
    synthetic_arrays["fmriTrn"] = synthetic_arrays["fmriTrn"].reshape(20, 40, 1)
    with pytest.raises(DataFileError, match=r"key 'fmriTrn': expected a 2-D array"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_voxel_counts_differ(tmp_path, synthetic_arrays):
    synthetic_arrays["fmriTest"] = synthetic_arrays["fmriTest"][:, :39]
    with pytest.raises(DataFileError, match=r"fmriTest': 39 voxels but fmriTrn has 40"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


@pytest.mark.parametrize("key", ["stimTrn", "labelTrn"])
def test_counts_differ_from_fmri(tmp_path, synthetic_arrays, key):
    synthetic_arrays[key] = synthetic_arrays[key][:-1]
    with pytest.raises(DataFileError, match=rf"{key}': 19 train trials but fmriTrn has 20"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf(tmp_path, synthetic_arrays, bad):
    synthetic_arrays["fmriTest"][2, 3] = bad
    with pytest.raises(DataFileError, match=r"fmriTest': contains 1 NaN or infinite"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_non_square_images(tmp_path, synthetic_arrays):
    for k in ("stimTrn", "stimTest"):
        synthetic_arrays[k] = synthetic_arrays[k][:, :140]
    with pytest.raises(DataFileError, match="140 pixels per image is not a square"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_unknown_labels(tmp_path, synthetic_arrays):
    synthetic_arrays["labelTrn"][0] = 7
    with pytest.raises(DataFileError, match=r"unknown label code\(s\) \[7\]"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


# --- path resolution and fetching ------------------------------------------------------------------


def test_env_var_is_used(tmp_path, synthetic_arrays, monkeypatch):
    write_digit69_mat(tmp_path / D.FILENAME, synthetic_arrays)
    monkeypatch.setenv("LDM_DATA_DIR", str(tmp_path))
    assert fetch_digit69(verbose=0) == tmp_path / D.FILENAME


def test_explicit_argument_wins_over_env(tmp_path, synthetic_arrays, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    write_digit69_mat(a / D.FILENAME, synthetic_arrays)
    write_digit69_mat(b / D.FILENAME, synthetic_arrays)
    monkeypatch.setenv("LDM_DATA_DIR", str(b))
    assert fetch_digit69(a, verbose=0) == a / D.FILENAME


def test_offline_message_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_DATA_DIR", str(tmp_path / "empty"))

    def offline(*a, **k):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(D.urllib.request, "urlopen", offline)
    with pytest.raises(OSError) as e:
        fetch_digit69(verbose=0)
    msg = str(e.value)
    assert "LDM_DATA_DIR" in msg and "network is unreachable" in msg and "place the file by hand" in msg
    assert not list((tmp_path).rglob("*.part"))


class _FakeResponse:
    def __init__(self, payload):
        import io
        self._buf = io.BytesIO(payload)

    def read(self, *a):
        return self._buf.read(*a)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_download_checksum_mismatch_writes_nothing(monkeypatch):
    monkeypatch.delenv("LDM_DATA_DIR", raising=False)
    monkeypatch.setattr(D.urllib.request, "urlopen", lambda *a, **k: _FakeResponse(b"corrupted"))
    with pytest.raises(OSError, match="Checksum verification failed"):
        fetch_digit69(verbose=0)
    cache = D._default_cache_dir()
    assert not (cache / D.FILENAME).exists() and not list(cache.glob("*.part"))


def test_download_with_good_checksum_is_cached(monkeypatch, synthetic_arrays, tmp_path):
    monkeypatch.delenv("LDM_DATA_DIR", raising=False)
    payload = write_digit69_mat(tmp_path / "src.mat", synthetic_arrays).read_bytes()
    sha = hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(D.urllib.request, "urlopen", lambda *a, **k: _FakeResponse(payload))
    path = fetch_digit69(sha256=sha, verbose=0)
    assert path == D._default_cache_dir() / D.FILENAME and path.read_bytes() == payload
    # a second call uses the cache without the network
    monkeypatch.setattr(D.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("network used")))
    assert fetch_digit69(sha256=sha, verbose=0) == path


# --- split and normalisation -----------------------------------------------------------------------


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.array([1] * 45 + [2] * 45)
    tr, va = train_val_split(labels, val_fraction=0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 90
    assert (labels[va] == 1).sum() == 9 and (labels[va] == 2).sum() == 9
    tr2, va2 = train_val_split(labels, val_fraction=0.2, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, train_val_split(labels, val_fraction=0.2, seed=4)[1])


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction must be in"):
        train_val_split(np.array([1, 2, 1, 2]), val_fraction=1.5)


def test_normalizer_fitted_on_train_only(rng):
    train, test = rng.normal(3, 2, size=(30, 8)), rng.normal(size=(5, 8))
    n1 = FmriNormalizer().fit(train)
    z = n1.transform(train)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-5)
    before = (n1.mean_.copy(), n1.std_.copy())
    z_test_a = n1.transform(test)
    z_test_b = n1.transform(test * 100 + 7)  # changing the test fMRI ...
    np.testing.assert_array_equal(n1.mean_, before[0])  # ... changes no fitted quantity
    np.testing.assert_array_equal(n1.std_, before[1])
    assert not np.allclose(z_test_a, z_test_b)
    np.testing.assert_array_equal(n1.transform(train), z)


def test_normalizer_constant_voxel_and_errors(rng):
    x = rng.normal(size=(10, 3))
    x[:, 1] = 4.0
    z = FmriNormalizer().fit_transform(x)
    assert np.all(z[:, 1] == 0)
    with pytest.raises(RuntimeError, match="before fit"):
        FmriNormalizer().transform(x)
    with pytest.raises(ValueError, match=r"expected fMRI of shape \(N, 3\)"):
        FmriNormalizer().fit(x).transform(x[:, :2])
