import hashlib
import urllib.error

import numpy as np
import pytest

from ldm_core import data as D
from ldm_core import fetch, splits
from ldm_core.data import DataFileError, fetch_digit69, load_digit69, write_digit69_mat
from ldm_core.splits import FmriNormalizer, train_val_split
from tests.synthetic_data import make_synthetic_digit69


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


def test_non_integer_labels(tmp_path, synthetic_arrays):
    lab = synthetic_arrays["labelTrn"].astype(np.float64)
    lab[0] = 1.5
    synthetic_arrays["labelTrn"] = lab
    with pytest.raises(DataFileError, match=r"labelTrn': label codes must be whole numbers, got \[1\.5\]"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_whole_number_float_labels_are_codes(tmp_path, synthetic_arrays):
    synthetic_arrays["labelTrn"] = synthetic_arrays["labelTrn"].astype(np.float64)
    d = load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)
    assert d.labels_train.dtype == np.int64 and set(d.labels_train.tolist()) == {1, 2}


def test_test_class_absent_from_training(tmp_path, synthetic_arrays):
    synthetic_arrays["labelTest"][0] = 7
    with pytest.raises(DataFileError, match=r"labelTest': label code\(s\) \[7\] never occur in labelTrn"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_one_training_class(tmp_path, synthetic_arrays):
    synthetic_arrays["labelTrn"][:] = 2
    synthetic_arrays["labelTest"][:] = 2
    with pytest.raises(DataFileError, match=r"bad\.mat, key 'labelTrn': only one class \(code 2\) in 20 training"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


@pytest.mark.parametrize("split,keys", [("training", ("fmriTrn", "stimTrn", "labelTrn")),
                                        ("test", ("fmriTest", "stimTest", "labelTest"))])
def test_empty_split(tmp_path, synthetic_arrays, split, keys):
    for k in keys:
        synthetic_arrays[k] = synthetic_arrays[k][:0]
    with pytest.raises(DataFileError, match=rf"bad\.mat, key '{keys[0]}': 0 {split} trials"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_zero_voxels(tmp_path, synthetic_arrays):
    for k in ("fmriTrn", "fmriTest"):
        synthetic_arrays[k] = synthetic_arrays[k][:, :0]
    with pytest.raises(DataFileError, match=r"fmriTrn': 0 voxels"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


@pytest.mark.parametrize("key", ["fmriTrn", "fmriTest", "stimTrn", "labelTest"])
def test_complex_arrays(tmp_path, synthetic_arrays, key):
    synthetic_arrays[key] = synthetic_arrays[key] + 1j
    with pytest.raises(DataFileError, match=rf"bad\.mat, key '{key}': complex values"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


# --- pixel scales -----------------------------------------------------------------------------------


def test_binarised_uint8_stimuli_are_used_as_0_1(tmp_path, synthetic_arrays):
    for k in ("stimTrn", "stimTest"):
        synthetic_arrays[k] = (synthetic_arrays[k] > 127).astype(np.uint8)  # 0/1, not 0/255
    d = load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)
    assert set(np.unique(d.images_train).tolist()) == {0.0, 1.0}  # not 0 and 1/255
    assert "binarised" in d.description and "not divided by 255" in d.description
    assert "binarised" not in load_digit69(_write(tmp_path, make_synthetic_digit69(), "ok.mat"), verbose=0).description


def test_float_stimuli_in_unit_range_stay(tmp_path, synthetic_arrays):
    expected = load_digit69(_write(tmp_path, synthetic_arrays, "u8.mat"), verbose=0).images_train
    synthetic_arrays["stimTrn"] = synthetic_arrays["stimTrn"] / 255.0
    synthetic_arrays["stimTest"] = synthetic_arrays["stimTest"].astype(np.float64)  # whole-number 0..255 floats
    d = load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)
    np.testing.assert_allclose(d.images_train, expected, atol=1e-6)
    assert d.images_test.max() <= 1.0 and d.images_test.max() > 0.9


@pytest.mark.parametrize("values,match", [
    (np.array([0.0, 2.5]), r"stimTrn': float pixel values span \[0, 2\.5\].*ambiguous"),
    (np.array([-0.5, 0.5]), r"stimTrn': float pixel values span \[-0\.5, 1\]"),
    (np.array([0, 300], dtype=np.int16), r"stimTrn': integer pixel values span \[0, 300\]"),
    (np.array([-1, 200], dtype=np.int16), r"stimTrn': integer pixel values span \[-1, 255\]"),
])
def test_ambiguous_pixel_scales_are_refused(tmp_path, synthetic_arrays, values, match):
    stim = synthetic_arrays["stimTrn"].astype(values.dtype)
    if values.dtype.kind == "f":
        stim /= 255.0  # floats in [0, 1] but for the two bad values
    stim[0, :2] = values
    synthetic_arrays["stimTrn"] = stim
    with pytest.raises(DataFileError, match=match):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_mixed_binarised_and_8bit_stimuli(tmp_path, synthetic_arrays):
    synthetic_arrays["stimTest"] = (synthetic_arrays["stimTest"] > 127).astype(np.uint8)
    with pytest.raises(DataFileError, match=r"stimTest': pixel scales differ: stimTrn is 8-bit, stimTest is binary"):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


# --- class codes and names --------------------------------------------------------------------------


def test_digit69_codes_keep_six_and_nine(synthetic_mat):
    d = load_digit69(synthetic_mat, verbose=0)
    assert d.class_names == {1: "six", 2: "nine"} == D.LABEL_NAMES and d.class_codes == [1, 2]
    assert "six (code 1: 10 train, 3 test), nine (code 2: 10 train, 3 test)" in d.description


def test_other_codes_get_generic_names(tmp_path):
    arrays = make_synthetic_digit69(codes=(7, 0, 5, 3))
    d = load_digit69(_write(tmp_path, arrays), verbose=0)
    assert d.class_names == {0: "class 0", 3: "class 3", 5: "class 5", 7: "class 7"}
    assert list(d.class_names) == [0, 3, 5, 7]


def test_negative_and_large_codes(tmp_path):
    arrays = make_synthetic_digit69(codes=(-1, 1000))
    assert arrays["labelTrn"].dtype == np.int64
    d = load_digit69(_write(tmp_path, arrays), verbose=0)
    assert d.class_names == {-1: "class -1", 1000: "class 1000"}


def test_names_from_a_cell_array(tmp_path):
    arrays = make_synthetic_digit69(codes=(5, 0, 3), label_names=("five", "zero", "three"))
    assert arrays["labelNames"].tolist() == ["zero", "three", "five"]  # ascending codes
    d = load_digit69(_write(tmp_path, arrays), verbose=0)
    assert d.class_names == {0: "zero", 3: "three", 5: "five"}
    assert "zero (code 0: 7 train, 2 test)" in d.description


def test_names_from_a_char_matrix(tmp_path, synthetic_arrays):
    synthetic_arrays["labelNames"] = ["6", "nine"]  # savemat writes a list of strings as a padded char matrix
    d = load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)
    assert d.class_names == {1: "6", 2: "nine"}


@pytest.mark.parametrize("names,match", [
    (np.array(["a", "b", "c"], dtype=object), r"labelNames': 3 name\(s\) \['a', 'b', 'c'\] for 2 label code\(s\)"),
    (np.array(["a", "a"], dtype=object), r"labelNames': names must be non-empty and distinct"),
    (np.array(["a", ""], dtype=object), r"labelNames': names must be non-empty and distinct"),
    (np.array([1.0, 2.0]), r"labelNames': expected a cell array of strings or a char matrix, got dtype float64"),
    (np.array([np.array([1.0, 2.0]), "b"], dtype=object), r"labelNames': expected one string per cell"),
])
def test_bad_label_names(tmp_path, synthetic_arrays, names, match):
    synthetic_arrays["labelNames"] = names
    with pytest.raises(DataFileError, match=match):
        load_digit69(_write(tmp_path, synthetic_arrays), verbose=0)


def test_synthetic_generator_refuses_bad_classes():
    with pytest.raises(ValueError, match="codes must be at least two distinct integers"):
        make_synthetic_digit69(codes=(1, 1))
    with pytest.raises(ValueError, match="label_names has 1 names for 2 codes"):
        make_synthetic_digit69(label_names=("six",))


def test_synthetic_default_is_unchanged():
    """The defaults still give digit69's codes, alternating, uint8, and no names key (existing tests rely on it)."""
    a = make_synthetic_digit69()
    assert sorted(a) == sorted(D.KEYS)
    assert a["labelTrn"].dtype == np.uint8 and a["labelTrn"][:4, 0].tolist() == [1, 2, 1, 2]
    assert a["stimTrn"].shape == (20, 144) and a["fmriTest"].shape == (6, 40)


def test_four_class_file_runs_through_split_floors_metrics_and_plots(tmp_path):
    """Another voxel count, other trial counts, four classes with codes 0, 3, 5, 7: the chain runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ldm_core.study import plots
    from ldm_core.baselines import noise_floors
    from ldm_core.study.diagnostics import class_decoding
    from ldm_core.metrics import evaluate

    arrays = make_synthetic_digit69(n_train=40, n_test=8, n_voxels=23, image_size=12, codes=(0, 3, 5, 7),
                                    label_names=("zero", "three", "five", "seven"))
    d = load_digit69(_write(tmp_path, arrays, "four.mat"), verbose=0)
    assert d.fmri_train.shape == (40, 23) and d.images_test.shape == (8, 12, 12)
    assert d.class_names == {0: "zero", 3: "three", 5: "five", 7: "seven"}
    tr, va = train_val_split(d.labels_train, val_fraction=0.2, seed=0)
    for c in (0, 3, 5, 7):  # stratified: 10 trials per class, 2 to validation
        assert (d.labels_train[va] == c).sum() == 2 and (d.labels_train[tr] == c).sum() == 8
    floors = noise_floors(d.images_train[tr], d.labels_train[tr], d.labels_test)
    ref = floors["class_mean_reference"]
    for i, c in enumerate(d.labels_test):  # each test image gets its own class's mean
        np.testing.assert_allclose(ref[i], d.images_train[tr][d.labels_train[tr] == c].mean(0), atol=1e-6)
    res = evaluate(ref, d.images_test, d.labels_test, n_boot=50, n_perm=20)
    assert res["n_images"] == 8 and res["pixel_r"]["mean"] > 0.9
    z = FmriNormalizer().fit_transform(d.fmri_train)
    dec = class_decoding(z, d.labels_train, n_folds=5, n_perm=5, C=1.0)
    assert dec["chance"] == pytest.approx(0.25) and dec["accuracy"] > 0.5
    fig = plots.image_grid({"target": d.images_test}, labels=d.labels_test, class_names=d.class_names)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["zero", "three", "five", "seven"]
    plt.close(fig)
    fig = plots.image_grid({"target": d.images_test}, labels=d.labels_test)  # default: digit69's names
    assert [ax.get_title() for ax in fig.axes[:2]] == ["0", "3"]
    plt.close(fig)


def test_class_decoding_chance_with_negative_codes(rng):
    from ldm_core.study.diagnostics import class_decoding

    labels = np.array([-1] * 12 + [4] * 6 + [9] * 6)
    fmri = rng.normal(size=(24, 5)) + labels[:, None]
    assert class_decoding(fmri, labels, n_folds=3, n_perm=2)["chance"] == pytest.approx(0.5)


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


def _offline(*a, **k):
    raise urllib.error.URLError("network is unreachable")


def test_offline_message_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.urllib.request, "urlopen", _offline)
    with pytest.raises(OSError) as e:
        fetch_digit69(verbose=0)
    msg = str(e.value)
    assert isinstance(e.value, D.DataNotFoundError) and len(e.value.tried) == 3
    assert "LDM_DATA_DIR: not set" in msg and "(cache): no such file" in msg
    assert "network is unreachable" in msg and "place the file by hand" in msg and D.DATA_SHA256 in msg
    cache = fetch._default_cache_dir()
    assert not (cache.exists() and list(cache.glob("*.part")))


def test_download_disabled_is_said(monkeypatch):
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("network used")))
    with pytest.raises(OSError, match=r"download: disabled \(download=False\)"):
        fetch_digit69(download=False, verbose=0)


@pytest.mark.parametrize("make_folder", [True, False])
def test_env_var_set_but_file_missing_is_an_error(tmp_path, monkeypatch, synthetic_arrays, make_folder):
    """No silent fall-back to the cache, even when the cache holds a verified copy."""
    folder = tmp_path / "data"
    if make_folder:
        folder.mkdir()
    cache = fetch._default_cache_dir()
    cache.mkdir(parents=True)
    cached = write_digit69_mat(cache / D.FILENAME, synthetic_arrays)
    sha = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert fetch_digit69(sha256=sha, verbose=0) == cached  # the cache works when the variable is unset ...
    monkeypatch.setenv("LDM_DATA_DIR", str(folder))
    state = "holds no such file" if make_folder else "does not exist"
    with pytest.raises(FileNotFoundError, match=rf"LDM_DATA_DIR is set to .*data, but that folder {state}: "
                                                rf"digit69_28x28\.mat not found"):
        fetch_digit69(sha256=sha, verbose=0)  # ... but not when it points elsewhere


def test_cache_with_wrong_checksum_is_ignored(monkeypatch, synthetic_arrays):
    cache = fetch._default_cache_dir()
    cache.mkdir(parents=True)
    write_digit69_mat(cache / D.FILENAME, synthetic_arrays)
    with pytest.raises(OSError, match=r"\(cache\): checksum mismatch, ignored"):
        fetch_digit69(download=False, verbose=0)


def test_find_data_file_generic(tmp_path, monkeypatch, capsys):
    (tmp_path / "other.npz").write_bytes(b"x")
    assert fetch.find_data_file("other.npz", tmp_path, verbose=0) == tmp_path / "other.npz"
    assert fetch.find_data_file("other.npz", tmp_path / "other.npz", verbose=0) == tmp_path / "other.npz"
    with pytest.raises(FileNotFoundError, match=r"No data file at .*missing\.npz \(from the data_dir argument\)\. "
                                                r"Put other\.npz there.* Try this\."):
        fetch.find_data_file("other.npz", tmp_path / "missing.npz", hint="Try this.")
    monkeypatch.setenv("LDM_DATA_DIR", str(tmp_path))
    assert fetch.find_data_file("other.npz", label="prior") == tmp_path / "other.npz"
    assert "prior: using" in capsys.readouterr().out
    monkeypatch.delenv("LDM_DATA_DIR")
    with pytest.raises(D.DataNotFoundError, match=r"download: nothing\.npz has no public URL[\s\S]*copy nothing\.npz"):
        fetch.find_data_file("nothing.npz")
    cache = fetch._default_cache_dir()
    cache.mkdir(parents=True)
    (cache / "nothing.npz").write_bytes(b"y")  # no checksum given: a cache hit is used as it is
    assert fetch.find_data_file("nothing.npz", verbose=0) == cache / "nothing.npz"


def test_find_data_file_needs_a_checksum_to_download():
    with pytest.raises(ValueError, match=r"a download from https://example\.org/f needs sha256"):
        fetch.find_data_file("f.mat", url="https://example.org/f")


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
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda *a, **k: _FakeResponse(b"corrupted"))
    with pytest.raises(OSError, match="Checksum verification failed"):
        fetch_digit69(verbose=0)
    cache = fetch._default_cache_dir()
    assert not (cache / D.FILENAME).exists() and not list(cache.glob("*.part"))


def test_download_with_good_checksum_is_cached(monkeypatch, synthetic_arrays, tmp_path):
    monkeypatch.delenv("LDM_DATA_DIR", raising=False)
    payload = write_digit69_mat(tmp_path / "src.mat", synthetic_arrays).read_bytes()
    sha = hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda *a, **k: _FakeResponse(payload))
    path = fetch_digit69(sha256=sha, verbose=0)
    assert path == fetch._default_cache_dir() / D.FILENAME and path.read_bytes() == payload
    # a second call uses the cache without the network
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("network used")))
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


# --- class names given by the caller (the chapters' class_names parameter) -------------------------


def test_class_names_override_the_defaults(tmp_path):
    arrays = make_synthetic_digit69(codes=(21, 22, 23))
    p = _write(tmp_path, arrays)
    assert load_digit69(p, verbose=0).class_names == {21: "class 21", 22: "class 22", 23: "class 23"}
    d = load_digit69(p, class_names={21: "ring", "22": " square ", 23: "triangle"}, verbose=0)  # papermill: "22"
    assert d.class_names == {21: "ring", 22: "square", 23: "triangle"}
    assert "ring (code 21:" in d.description and "class 21" not in d.description
    partial = load_digit69(p, class_names={"23": "triangle"}, verbose=0)  # only some codes: the rest keep defaults
    assert partial.class_names == {21: "class 21", 22: "class 22", 23: "triangle"}
    assert load_digit69(p, class_names={}, verbose=0).class_names == load_digit69(p, verbose=0).class_names


def test_class_names_over_the_files_label_names(tmp_path):
    arrays = make_synthetic_digit69(codes=(1, 2), label_names=("six", "nine"))
    d = load_digit69(_write(tmp_path, arrays), class_names={"2": "upside-down six"}, verbose=0)
    assert d.class_names == {1: "six", 2: "upside-down six"}


@pytest.mark.parametrize("given,match", [
    ({5: "five"}, r"class_names: code 5 does not occur in bad\.mat, whose label codes are \[1, 2\]"),
    ({"x": "a"}, r"class_names: key 'x' is not an integer label code; the label codes of bad\.mat are \[1, 2\]"),
    ({"1.5": "a"}, r"class_names: key '1\.5' is not an integer label code"),
    ({1.5: "a"}, r"class_names: key 1\.5 is not an integer label code"),
    ({True: "a"}, r"class_names: key True is not an integer label code"),
    ({1: ""}, r"class_names: the name of code 1 must be non-empty text, got ''"),
    ({1: "  "}, r"class_names: the name of code 1 must be non-empty text"),
    ({1: 6}, r"class_names: the name of code 1 must be non-empty text, got 6"),
    ({1: "nine"}, r"class_names: every class needs its own name, but \['nine'\] name\(s\) several codes"),
    (["six", "nine"], r"class_names must be a mapping of label code -> class name, got list"),
])
def test_bad_class_names_name_the_parameter(tmp_path, synthetic_arrays, given, match):
    with pytest.raises(ValueError, match=match):
        load_digit69(_write(tmp_path, synthetic_arrays), class_names=given, verbose=0)


def test_description_names_digit69_only_for_digit69(tmp_path, synthetic_arrays):
    d = load_digit69(_write(tmp_path, synthetic_arrays, "other.mat"), verbose=0)
    assert d.description.startswith("Data from other.mat: 20 training and 6 test trials, 40 voxels, 12x12 images")


# --- test stimuli repeated in training --------------------------------------------------------------


def test_test_in_training_counts_exact_and_near_copies_by_hand(rng):
    train = rng.random((5, 6, 6))
    near = train[3] + 0.001 * rng.standard_normal((6, 6))  # r > 0.99 with training image 3
    far = rng.random((6, 6))  # unrelated: r near 0 with everything
    scaled = 0.5 * train[0] + 0.2  # r = 1 with image 0 (Pearson ignores gain and offset): a near copy too
    test = np.stack([far, train[1], near, scaled])
    rep = splits.test_in_training(train, test)
    assert rep["count"] == 3 and rep["repeated"] == [1, 2, 3] and rep["n_test"] == 4 and rep["threshold"] == 0.99
    assert rep["index"][1:] == [1, 3, 0]
    assert rep["max_r"][1] == 1.0 and rep["max_r"][3] == pytest.approx(1.0) and 0.99 < rep["max_r"][2] < 1.0
    r_far = [np.corrcoef(far.ravel(), t.ravel())[0, 1] for t in train]  # independent check of the best r
    assert rep["max_r"][0] == pytest.approx(max(r_far)) and rep["index"][0] == int(np.argmax(r_far))
    assert splits.test_in_training(train, test, threshold=1.0)["count"] == 0  # "exceeds": r = 1 is not > 1
    assert splits.test_in_training(train, test[:1])["count"] == 0


def test_test_in_training_counts_identical_constant_images():
    train = np.stack([np.zeros((4, 4)), np.eye(4)])
    test = np.stack([np.zeros((4, 4)), np.full((4, 4), 0.5)])  # a blank image shown in training; a grey one was not
    rep = splits.test_in_training(train, test)
    assert rep["count"] == 1 and rep["repeated"] == [0] and rep["index"][0] == 0 and rep["max_r"] == [1.0, 0.0]


def test_test_in_training_of_digit69_is_zero(real_data_dir):
    d = load_digit69(real_data_dir, verbose=0)
    rep = splits.test_in_training(d.images_train, d.images_test)
    assert rep["count"] == 0 and max(rep["max_r"]) < 0.99  # the issue: 0 for digit69


def test_test_in_training_finds_what_the_schema_dataset_plants(tmp_path):
    from tests.schema_dataset import write_schema_dataset

    info = write_schema_dataset(tmp_path / "shapes.mat", n_repeated=5, seed=3)
    d = load_digit69(info["path"], verbose=0)
    rep = splits.test_in_training(d.images_train, d.images_test)
    assert rep["count"] == 5 and rep["repeated"] == info["repeated_test"]
    for i in rep["repeated"]:  # the match is the planted source, or a drawing of the same shape at another brightness
        assert rep["max_r"][i] == pytest.approx(1.0) and np.array_equal(d.images_test[i],
                                                                         d.images_train[info["source_train"][i]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(threshold=0), r"threshold must be a Pearson r in \(0, 1\], got 0"),
    (dict(threshold=1.5), r"threshold must be a Pearson r in \(0, 1\], got 1\.5"),
    (dict(threshold="0.99"), r"threshold must be a Pearson r in \(0, 1\], got '0\.99'"),
    (dict(images_test=np.zeros((2, 5, 5))), r"images_train are \(6, 6\) but images_test are \(5, 5\)"),
    (dict(images_test=np.zeros((0, 6, 6))), r"images_test must be a non-empty array of images \(N, S, S\)"),
    (dict(images_train=np.zeros((3, 36))), r"images_train must be a non-empty array of images \(N, S, S\)"),
    (dict(images_train=np.full((3, 6, 6), np.nan)), r"images_train must be .* of finite numbers"),
])
def test_test_in_training_refuses_bad_input(kwargs, match):
    args = {"images_train": np.zeros((3, 6, 6)), "images_test": np.zeros((2, 6, 6)), **kwargs}
    with pytest.raises(ValueError, match=match):
        splits.test_in_training(args.pop("images_train"), args.pop("images_test"), **args)


def test_counts_of_the_file(tmp_path):
    arrays = make_synthetic_digit69(n_train=14, n_test=5, n_voxels=9, image_size=8)
    d = load_digit69(_write(tmp_path, arrays), verbose=0)
    assert (d.n_train, d.n_test, d.n_voxels, d.image_size) == (14, 5, 9, 8)
