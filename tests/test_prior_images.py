"""Tests of ldm_core.prior_images: finding and validating the unpaired MNIST images, and the leakage guard."""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ldm_core import fetch
from ldm_core import prior_images as P
from ldm_core.data import DataFileError, DataNotFoundError, load_digit69
from ldm_core.splits import train_val_split
from ldm_core.leakage import drop_near_duplicates, max_shifted_correlation
from ldm_core.prior_images import PriorImages, load_prior_images


# --- helpers -----------------------------------------------------------------------------------------


def _digits_arrays(n_per_digit=5, digits=(6, 9, 3), S=28, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.asarray(digits, dtype=np.uint8), n_per_digit)
    images = rng.integers(0, 256, size=(len(labels), S, S), dtype=np.uint8)
    return {"images": images, "labels": labels}


def _write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


def _naive_max_r(images, references, max_shift):
    """Independent check: pad-and-crop shifts, one reference and shift at a time; constant -> r = 0."""
    N, S, _ = images.shape
    X = images.reshape(N, -1).astype(np.float64)
    X = X - X.mean(1, keepdims=True)
    nx = np.linalg.norm(X, axis=1)
    best = np.full(N, -np.inf)
    k = max_shift
    for ref in references:
        padded = np.pad(ref.astype(np.float64), k)  # zero fill
        for dy in range(-k, k + 1):
            for dx in range(-k, k + 1):
                y = padded[k - dy: k - dy + S, k - dx: k - dx + S].reshape(-1)  # y[i, j] = ref[i - dy, j - dx]
                y = y - y.mean()
                ny = np.linalg.norm(y)
                with np.errstate(invalid="ignore", divide="ignore"):
                    r = np.where((nx > 1e-12) & (ny > 1e-12), X @ y / (nx * ny), 0.0)
                best = np.maximum(best, r)
    return best


def _shift(img, dy, dx):
    """Move img by (dy, dx) with zero fill (out[y, x] = img[y - dy, x - dx]), built with np.roll and a mask."""
    out = np.roll(img, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy] = 0
    elif dy < 0:
        out[dy:] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


def _blobs(n, rng, S=28):
    """Sparse smooth random 'digits' in [0, 1] (about 18% of pixels lit) with an empty 3-pixel border."""
    x = gaussian_filter(rng.random((n, S, S)), sigma=(0, 1.5, 1.5))
    x = (x - x.min(axis=(1, 2), keepdims=True)) / np.ptp(x, axis=(1, 2), keepdims=True)
    x = np.clip((x - 0.55) / 0.45, 0, 1)  # dark background, bright strokes
    x[:, :3], x[:, -3:], x[:, :, :3], x[:, :, -3:] = 0, 0, 0, 0
    return x


def _prior(images, labels=None):
    labels = np.full(len(images), 6, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    return PriorImages(images=np.asarray(images, dtype=np.float32), labels=labels, source=P.NPZ_SOURCE,
                       path=Path("mnist_6_9.npz"), sha256="0" * 64, description="Synthetic.")


# --- loading the MNIST npz (auto / npz: LDM_DATA_DIR, then the verified cache) -------------------------


def _mnist_env(tmp_path, monkeypatch, arrays=None):
    """Write arrays as mnist_6_9.npz into a folder and point LDM_DATA_DIR at it."""
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    p = _write_npz(folder / "mnist_6_9.npz", _digits_arrays() if arrays is None else arrays)
    monkeypatch.setenv("LDM_DATA_DIR", str(folder))
    return p


def test_auto_reads_the_npz_from_ldm_data_dir_and_keeps_six_and_nine(tmp_path, monkeypatch, capsys):
    arrays = _digits_arrays()
    p = _mnist_env(tmp_path, monkeypatch, arrays)
    prior = load_prior_images()
    assert capsys.readouterr().out == "prior images: using mnist_6_9.npz (LDM_DATA_DIR)\n"  # no folder printed
    assert prior.images.shape == (10, 28, 28) and prior.images.dtype == np.float32
    assert prior.labels.dtype == np.int64 and prior.counts() == {6: 5, 9: 5} and prior.n_images == 10
    assert prior.class_names == {6: "six", 9: "nine"}
    np.testing.assert_allclose(prior.images[0], arrays["images"][0] / 255.0, atol=1e-7)  # upright, as stored
    assert prior.source == "mnist_6_9.npz" and prior.path == p
    assert prior.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert "5 sixes, 5 nines" in prior.description and "MIT licence" in prior.description
    assert "differs from the published" in prior.description
    three = load_prior_images("npz", digits=(3,), verbose=0)
    assert three.counts() == {3: 5} and three.class_names == {3: "three"}


def test_provenance_has_no_absolute_paths(tmp_path, monkeypatch):
    _mnist_env(tmp_path, monkeypatch)
    prior = load_prior_images(verbose=0)
    prov = prior.provenance()
    assert prov["file"] == "mnist_6_9.npz" and prov["count_per_digit"] == {6: 5, 9: 5}
    assert prov["source"] == "mnist_6_9.npz" and prov["sha256"] == prior.sha256 and "MIT" in prov["licence"]
    assert prov["class_names"] == {6: "six", 9: "nine"}
    text = json.dumps(prov) + prior.description
    assert str(tmp_path) not in text and os.sep + "tmp" not in text


def test_env_var_without_npz_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"LDM_DATA_DIR is set to .*mnist_6_9\.npz not found.*source='torchvision'"):
        load_prior_images(verbose=0)


def test_cache_hit_is_checksum_verified(tmp_path, monkeypatch):
    cache = fetch._default_cache_dir()
    cache.mkdir(parents=True)
    p = _write_npz(cache / "mnist_6_9.npz", _digits_arrays())
    with pytest.raises(DataNotFoundError, match=r"mnist_6_9\.npz \(cache\): checksum mismatch, ignored"):
        load_prior_images("npz", verbose=0)  # not the published file
    monkeypatch.setattr(P, "PRIOR_SHA256", hashlib.sha256(p.read_bytes()).hexdigest())
    assert load_prior_images("npz", verbose=0).path == p


def test_npz_nowhere_forced(monkeypatch):
    with pytest.raises(OSError, match=r"(?s)Could not find or fetch mnist_6_9\.npz.*LDM_DATA_DIR: not set.*"
                                      r"no public URL.*source='torchvision'.*path of an image \.npz"):
        load_prior_images(source="npz", verbose=0)


def test_binarised_npz_is_used_as_0_1(tmp_path, monkeypatch):
    arrays = _digits_arrays()
    arrays["images"] = (arrays["images"] > 127).astype(np.uint8)
    _mnist_env(tmp_path, monkeypatch, arrays)
    prior = load_prior_images(verbose=0)
    assert set(np.unique(prior.images).tolist()) == {0.0, 1.0} and "binarised" in prior.description


def test_float_npz_in_unit_range(tmp_path):
    arrays = _digits_arrays()
    arrays["images"] = arrays["images"] / 255.0
    prior = load_prior_images(_write_npz(tmp_path / "f.npz", arrays), verbose=0)
    assert prior.images.max() <= 1.0 and prior.images.max() > 0.9
    np.testing.assert_allclose(prior.images, (arrays["images"]).astype(np.float32))


# --- any image .npz named by its path (prior_source) ------------------------------------------------


def _shapes_npz(tmp_path, *, labels=True, names=None, n=6, S=20, dtype=np.uint8):
    rng = np.random.default_rng(0)
    arrays = {"images": rng.integers(0, 256, size=(n, S, S)).astype(dtype)}
    if labels:
        arrays["labels"] = np.array([21, 22, 23] * (n // 3), dtype=np.int64)
    if names is not None:
        arrays["label_names"] = np.array(names)
    return _write_npz(tmp_path / "shapes.npz", arrays), arrays


def test_any_labelled_image_npz_by_path(tmp_path, capsys):
    p, arrays = _shapes_npz(tmp_path)
    prior = load_prior_images(p)
    assert capsys.readouterr().out == "prior images: using shapes.npz (source argument)\n"
    assert prior.source == P.FILE_SOURCE == "image file" and prior.path == p and prior.n_images == 6
    assert prior.counts() == {21: 2, 22: 2, 23: 2} and prior.class_names == {21: "class 21", 22: "class 22",
                                                                           23: "class 23"}
    np.testing.assert_allclose(prior.images, arrays["images"] / 255.0, atol=1e-7)  # every image, in order, upright
    assert "6 images from shapes.npz (2 class 21, 2 class 22, 2 class 23), 20x20" in prior.description
    assert "MNIST" not in prior.description and prior.provenance()["licence"] == P.FILE_LICENCE
    assert prior.provenance()["file"] == "shapes.npz"
    sub = load_prior_images(p, digits=(22,), verbose=0)  # digits: the label codes to keep
    assert sub.counts() == {22: 2} and sub.class_names == {22: "class 22"}


def test_image_npz_label_names(tmp_path):
    p, _ = _shapes_npz(tmp_path, names=["ring", "square", "triangle"])
    assert load_prior_images(p, verbose=0).class_names == {21: "ring", 22: "square", 23: "triangle"}


def test_unlabelled_image_npz(tmp_path):
    p, arrays = _shapes_npz(tmp_path, labels=False, dtype=np.float64)
    arrays["images"] = arrays["images"] / 255.0
    _write_npz(p, arrays)
    prior = load_prior_images(p, verbose=0)
    assert prior.class_names is None and prior.labels.tolist() == [P.UNLABELLED] * 6 and prior.n_images == 6
    assert "6 unlabelled images" in prior.description
    with pytest.raises(DataFileError, match=r"shapes\.npz, key 'labels': digits=\(21,\) asks for some classes, but "
                                            r"the file has no labels"):
        load_prior_images(p, digits=(21,), verbose=0)


def test_a_copy_of_the_published_npz_by_path_reads_as_mnist(tmp_path, monkeypatch):
    p = _write_npz(tmp_path / "my_copy.npz", _digits_arrays())
    monkeypatch.setattr(P, "PRIOR_SHA256", hashlib.sha256(p.read_bytes()).hexdigest())
    prior = load_prior_images(str(p), verbose=0)
    assert prior.source == P.NPZ_SOURCE and prior.counts() == {6: 5, 9: 5}  # digit filter (6, 9), digit words
    assert prior.class_names == {6: "six", 9: "nine"}


def test_the_paired_mat_is_refused_as_a_prior_with_the_fix_named(synthetic_mat):
    """Issue 18: chapter 07 handed data_dir (a .mat) to the prior loader. Named by mistake, it says what goes where."""
    with pytest.raises(DataFileError, match=r"digit69_28x28\.mat: not a readable \.npz file .*the paired \.mat file "
                                            r"goes to data_dir"):
        load_prior_images(synthetic_mat, verbose=0)


def test_bad_source_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"prior images source 'missing\.npz' does not exist: give the path of "
                                                r"an image \.npz file"):
        load_prior_images(tmp_path / "missing.npz", verbose=0)
    with pytest.raises(FileNotFoundError, match=r"prior images source '.*' is a folder"):
        load_prior_images(tmp_path, verbose=0)


@pytest.mark.parametrize("changes,match", [
    (dict(images=None), r"shapes\.npz, key 'images': missing key; the file has \['labels'\]\. An image \.npz for "
                        r"the prior needs 'images'"),
    (dict(images=np.zeros((6, 400), np.uint8)), r"key 'images': expected square images of shape \(N, S, S\)"),
    (dict(images=np.zeros((0, 20, 20), np.uint8), labels=np.zeros(0)), r"key 'images': holds 0 images"),
    (dict(images=np.full((6, 20, 20), 300, np.int16)), r"key 'images': integer pixel values span \[300, 300\]"),
    (dict(images=np.full((6, 20, 20), np.nan)), r"key 'images': contains 2400 NaN or infinite"),
    (dict(labels=np.array([21] * 5)), r"key 'labels': expected shape \(6,\), one label per image, got \(5,\)"),
    (dict(labels=np.array([21.5] * 6)), r"key 'labels': labels must be whole-number class codes, got \[21\.5\]"),
    (dict(labels=np.array(["a"] * 6)), r"key 'labels': expected a real numeric array, got dtype <U1"),
    (dict(label_names=np.array(["a", "b"])), r"key 'label_names': 2 name\(s\) \['a', 'b'\] for 3 label code\(s\)"),
    (dict(label_names=np.array(["a", "a", "b"])), r"key 'label_names': names must be non-empty and distinct"),
    (dict(label_names=np.array([1, 2, 3])), r"key 'label_names': expected a 1-D array of strings"),
    (dict(labels=None, label_names=np.array(["a"])), r"key 'label_names': given without 'labels'"),
])
def test_image_npz_validation(tmp_path, changes, match):
    p, arrays = _shapes_npz(tmp_path)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    _write_npz(p, arrays)
    with pytest.raises(DataFileError, match=match):
        load_prior_images(p, verbose=0)


def test_image_npz_asked_for_absent_labels(tmp_path):
    p, _ = _shapes_npz(tmp_path)
    with pytest.raises(DataFileError, match=r"key 'labels': no images of label\(s\) \[5\]; it holds labels "
                                            r"\[21, 22, 23\]"):
        load_prior_images(p, digits=(5, 21), verbose=0)


# --- resizing to the stimuli's size ------------------------------------------------------------------


def test_size_resizes_only_when_it_differs(tmp_path, monkeypatch):
    _mnist_env(tmp_path, monkeypatch)
    same = load_prior_images(verbose=0)
    kept = load_prior_images(size=28, verbose=0)
    assert np.array_equal(kept.images, same.images) and kept.description == same.description  # bit for bit
    small = load_prior_images(size=20, verbose=0)
    assert small.images.shape == (10, 20, 20) and small.images.dtype == np.float32
    assert 0 <= small.images.min() and small.images.max() <= 1 and np.array_equal(small.labels, same.labels)
    assert "Resized from 28x28 to 20x20, the stimuli's size (scikit-image resize, bilinear, anti-aliased)." in \
        small.description
    from skimage.transform import resize  # what it promises: skimage's anti-aliased bilinear resize

    want = np.clip(resize(same.images.astype(np.float32), (10, 20, 20), order=1, anti_aliasing=True,
                          mode="reflect", preserve_range=True), 0, 1)
    np.testing.assert_allclose(small.images, want, atol=1e-6)
    flat = np.full((6, 28, 28), 0.5, dtype=np.float32)  # a flat image stays flat after resizing
    np.testing.assert_allclose(P._resized(_prior(flat), 14).images, 0.5, atol=1e-6)


@pytest.mark.parametrize("size", [3, 0, 2.5, True, "20"])
def test_bad_size(size):
    with pytest.raises(ValueError, match=r"size must be None \(keep the images' size\) or an int >= 4"):
        load_prior_images(size=size, verbose=0)


# --- validation of the MNIST npz ----------------------------------------------------------------------


def _bad(tmp_path, monkeypatch, **changes):
    arrays = _digits_arrays()
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return _mnist_env(tmp_path, monkeypatch, arrays)


def test_not_an_npz(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "mnist_6_9.npz").write_text("not a zip")
    monkeypatch.setenv("LDM_DATA_DIR", str(folder))
    with pytest.raises(DataFileError, match=r"mnist_6_9\.npz: not a readable \.npz file"):
        load_prior_images(verbose=0)


@pytest.mark.parametrize("key", ["images", "labels"])
def test_npz_missing_key(tmp_path, monkeypatch, key):
    _bad(tmp_path, monkeypatch, **{key: None})
    with pytest.raises(DataFileError, match=rf"mnist_6_9\.npz, key '{key}': missing key; the file has"):
        load_prior_images(verbose=0)


def _images(dtype=np.uint8, shape=(15, 28, 28), fill=None):
    x = np.zeros(shape, dtype=dtype)
    if fill is not None:
        x.flat[0] = fill
    return x


@pytest.mark.parametrize("changes,match", [
    (dict(images=_images(shape=(15, 784))), r"key 'images': expected square images of shape \(N, S, S\), got \(15, 784\)"),
    (dict(images=_images(shape=(15, 28, 27))), r"key 'images': expected square images"),
    (dict(images=_images(shape=(0, 28, 28)), labels=np.zeros(0, np.uint8)), r"key 'images': holds 0 images"),
    (dict(labels=np.full(14, 6, np.uint8)), r"key 'labels': expected shape \(15,\), one digit per image, got \(14,\)"),
    (dict(labels=np.array([6] * 14 + [10], np.uint8)), r"key 'labels': labels must be the digits 0\.\.9 themselves, got \[10\]"),
    (dict(labels=np.array([6.0] * 14 + [6.5])), r"key 'labels': labels must be the digits 0\.\.9 themselves, got \[6\.5\]"),
    (dict(labels=np.full(15, 6, np.uint8)), r"key 'labels': no images of digit\(s\) \[9\]; it holds digits \[6\]"),
    (dict(images=_images(np.float64, fill=np.nan)), r"key 'images': contains 1 NaN or infinite"),
    (dict(images=_images(np.complex128)), r"key 'images': expected a real numeric array, got dtype complex128"),
    (dict(labels=np.array(["6"] * 15)), r"key 'labels': expected a real numeric array, got dtype <U1"),
    (dict(images=_images(np.int16, fill=300)), r"key 'images': integer pixel values span \[0, 300\]"),
    (dict(images=_images(np.float64, fill=1.5)), r"key 'images': float pixel values span \[0, 1\.5\]"),
])
def test_npz_validation(tmp_path, monkeypatch, changes, match):
    _bad(tmp_path, monkeypatch, **changes)
    with pytest.raises(DataFileError, match=match):
        load_prior_images(verbose=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(source="web"), r"unknown source 'web'; allowed \['auto', 'npz', 'torchvision'\] or the path of an image "
                         r"\.npz file"),
    (dict(source=""), r"unknown source ''"),
    (dict(source=3), r"source must be 'auto', 'npz', 'torchvision' or the path of an image \.npz, got 3"),
    (dict(digits=(6, 10)), r"digits must be distinct digits 0\.\.9"),
    (dict(digits=()), r"digits must be distinct digits 0\.\.9, at least one"),
    (dict(digits=(6, 6)), r"digits must be distinct"),
    (dict(digits=6), r"digits must be a sequence of digits"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_prior_images(verbose=0, **kwargs)


# --- torchvision (mocked: never the network) ---------------------------------------------------------


class _FakeMNIST:
    """Stands in for torchvision.datasets.MNIST: 3 images of every digit, raw files written like torchvision's."""

    calls: list = []
    fail = None

    def __init__(self, root, train=True, download=False):
        import torch

        type(self).calls.append((root, train, download))
        if type(self).fail:
            raise RuntimeError(type(self).fail)
        self.raw_folder = os.path.join(root, "MNIST", "raw")
        os.makedirs(self.raw_folder, exist_ok=True)
        for name in P.TORCHVISION_FILES:
            with open(os.path.join(self.raw_folder, name), "wb") as f:
                f.write(name.encode())
        rng = np.random.default_rng(1)
        self.data = torch.from_numpy(rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8))
        self.targets = torch.arange(30) % 10


@pytest.fixture
def fake_mnist(monkeypatch):
    import torchvision.datasets

    _FakeMNIST.calls, _FakeMNIST.fail = [], None
    monkeypatch.setattr(torchvision.datasets, "MNIST", _FakeMNIST)
    return _FakeMNIST


def test_auto_falls_back_to_torchvision(fake_mnist):
    prior = load_prior_images(verbose=0)
    root = fetch._default_cache_dir() / "mnist"
    assert fake_mnist.calls == [(str(root), True, True)]
    assert prior.source == "torchvision MNIST train" and prior.counts() == {6: 3, 9: 3}
    assert set(prior.labels.tolist()) == {6, 9} and prior.images.shape == (6, 28, 28)
    assert prior.images.dtype == np.float32 and prior.images.max() <= 1.0
    assert prior.class_names == {6: "six", 9: "nine"}
    manifest = "".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n" for n in P.TORCHVISION_FILES)
    assert prior.sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    assert prior.path == root / "MNIST" / "raw"
    prov = prior.provenance()
    assert prov["file"].startswith("MNIST/raw/") and str(root) not in json.dumps(prov) + prior.description
    assert "CC BY-SA 3.0" in prov["licence"] and "3 sixes, 3 nines" in prior.description
    assert load_prior_images(size=14, verbose=0).images.shape == (6, 14, 14)


def test_torchvision_forced_with_root_and_download_flag(fake_mnist, tmp_path, monkeypatch, capsys):
    _mnist_env(tmp_path, monkeypatch)  # ignored when torchvision is forced
    prior = load_prior_images("torchvision", root=tmp_path, digits=(0, 1, 2), download=False)
    assert fake_mnist.calls == [(str(tmp_path), True, False)] and prior.counts() == {0: 3, 1: 3, 2: 3}
    assert prior.class_names == {0: "zero", 1: "one", 2: "two"}
    assert capsys.readouterr().out == \
        "prior images: using torchvision MNIST train (MNIST/raw under the root argument)\n"


def test_torchvision_failure_lists_everything_tried(fake_mnist):
    fake_mnist.fail = "Error downloading train-images-idx3-ubyte.gz:\nTried https://mirror, got: offline"
    with pytest.raises(OSError, match=r"(?s)Could not find mnist_6_9\.npz nor load torchvision's MNIST\. Tried:.*"
                                      r"LDM_DATA_DIR: not set.*\(cache\): no such file.*no public URL.*"
                                      r"torchvision MNIST train at .*mnist \(download=True\): RuntimeError: Error "
                                      r"downloading.*offline.*set LDM_DATA_DIR"):
        load_prior_images(verbose=0)
    with pytest.raises(OSError, match=r"Could not load the prior images from torchvision\. Tried:"):
        load_prior_images(source="torchvision", verbose=0)


def test_real_torchvision_offline_error_without_download():
    """The real torchvision with download=False: no network, and the message says what was tried."""
    with pytest.raises(OSError, match=r"(?s)Tried:.*\(cache\): no such file.*download=False\): RuntimeError: "
                                      r"Dataset not found"):
        load_prior_images(download=False, verbose=0)


def test_torchvision_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now raises ImportError
    with pytest.raises(OSError, match=r"torchvision is not installed"):
        load_prior_images(source="torchvision", verbose=0)


# --- the leakage guard -------------------------------------------------------------------------------


@pytest.fixture
def guard_case():
    """5 references; a prior of exact, 1-px shifted, 2-px shifted and noisy copies, plus unrelated images."""
    rng = np.random.default_rng(0)
    refs = _blobs(5, rng)
    copies = [refs[0], refs[1],  # exact
              _shift(refs[2], 1, 0), _shift(refs[3], -1, 1),  # 1 pixel
              _shift(refs[4], 2, -2), _shift(refs[0], 0, 2),  # 2 pixels
              np.clip(refs[1] + 0.03 * rng.standard_normal((28, 28)), 0, 1),  # small additive noise
              np.clip(_shift(refs[2], 1, 1) + 0.03 * rng.standard_normal((28, 28)), 0, 1)]
    copy_ref = [0, 1, 2, 3, 4, 0, 1, 2]
    candidates = _blobs(60, rng)
    unrelated = candidates[_naive_max_r(candidates, refs, 2) < 0.8][:20]  # clearly not copies
    assert len(unrelated) == 20
    images = np.concatenate([np.stack(copies), unrelated, np.zeros((1, 28, 28))])  # + a blank image (r = 0)
    order = rng.permutation(len(images))  # copies scattered among the others
    labels = np.where(np.arange(len(images)) % 2 == 0, 6, 9)
    prior = _prior(images[order], labels[order])
    is_copy = order < len(copies)
    matched = np.array([copy_ref[o] if o < len(copies) else -1 for o in order])
    return prior, refs.astype(np.float32), is_copy, matched


def test_guard_drops_every_copy_and_keeps_unrelated(guard_case):
    prior, refs, is_copy, matched = guard_case
    kept, report = drop_near_duplicates(prior, refs, threshold=0.9, max_shift=2)
    dropped = np.array([d["index"] for d in report["dropped"]])
    assert set(dropped.tolist()) == set(np.flatnonzero(is_copy).tolist())  # every copy, nothing else
    for d in report["dropped"]:
        assert d["reference"] == matched[d["index"]] and 0.9 < d["r"] <= 1.0 + 1e-9
    assert (report["n_before"], report["n_dropped"], report["n_after"]) == (29, 8, 21)
    assert report["threshold"] == 0.9 and report["max_shift"] == 2 and report["n_references"] == 5
    assert kept.n_images == 21 and np.array_equal(kept.images, prior.images[~is_copy])
    assert np.array_equal(kept.labels, prior.labels[~is_copy])
    # the promise: every survivor's maximum shifted correlation with every reference is <= threshold
    survivors_r = _naive_max_r(kept.images, refs, 2)
    assert survivors_r.max() <= 0.9 and report["max_r_kept"] == pytest.approx(survivors_r.max())


def test_guard_shift_of_copies_is_found(guard_case):
    prior, refs, is_copy, _ = guard_case
    _, report = drop_near_duplicates(prior, refs, max_shift=2)
    exact = [d for d in report["dropped"] if d["r"] > 1 - 1e-9]
    assert {tuple(d["shift"]) for d in exact} == {(0, 0), (1, 0), (-1, 1), (2, -2), (0, 2)}
    _, no_shift = drop_near_duplicates(prior, refs, max_shift=0)  # without shifts the 2-px copies get through
    assert no_shift["n_dropped"] < report["n_dropped"]


def test_vectorised_matches_naive(guard_case):
    prior, refs, _, _ = guard_case
    for k in (0, 1, 2, 3):
        r, ref, shift = max_shifted_correlation(prior.images, refs, max_shift=k)
        np.testing.assert_allclose(r, _naive_max_r(prior.images, refs, k), atol=1e-9)
        assert ref.shape == (prior.n_images,) and shift.shape == (prior.n_images, 2) and np.abs(shift).max() <= k


def test_guard_records_itself(guard_case):
    prior, refs, _, _ = guard_case
    kept, report = drop_near_duplicates(prior, refs, threshold=0.8, references_label="test stimuli")
    assert "Near-duplicate guard: dropped" in kept.description and "test stimuli" in kept.description
    assert f"{kept.n_images} remain" in kept.description
    g = kept.provenance()["near_duplicate_guards"]
    assert g == [{"references": "test stimuli", "n_references": 5, "threshold": 0.8, "max_shift": 2,
                  "n_before": 29, "n_dropped": report["n_dropped"], "n_after": kept.n_images}]
    assert report["dropped_per_digit"][6] + report["dropped_per_digit"][9] == report["n_dropped"] >= 8
    again, _ = drop_near_duplicates(kept, refs, threshold=0.8)
    assert len(again.guards) == 2 and again.n_images == kept.n_images  # idempotent


@pytest.mark.parametrize("threshold", [0.95, 1.0, float("nan"), -1.5, "0.9"])
def test_guard_refuses_loose_or_bad_thresholds(guard_case, threshold):
    prior, refs, _, _ = guard_case
    with pytest.raises(ValueError, match=r"threshold must be 0\.9 or stricter"):
        drop_near_duplicates(prior, refs, threshold=threshold)


@pytest.mark.parametrize("make_refs,match", [
    (lambda r: r[0], r"references must have shape \(M, S, S\) with M >= 1, got \(28, 28\)"),
    (lambda r: r[:0], r"references must have shape \(M, S, S\) with M >= 1, got \(0, 28, 28\)"),
    (lambda r: r[:, :27, :27], r"references are 27x27 but the prior images are 28x28"),
    (lambda r: r * 255, r"references must be finite floats in \[0, 1\]"),
    (lambda r: (r * 255).astype(np.uint8), r"references must be finite floats in \[0, 1\].*uint8"),
    (lambda r: np.where(r > 0.5, np.nan, r), r"references must be finite floats in \[0, 1\]"),
])
def test_guard_refuses_bad_references(guard_case, make_refs, match):
    prior, refs, _, _ = guard_case
    with pytest.raises(ValueError, match=match):
        drop_near_duplicates(prior, make_refs(refs))


@pytest.mark.parametrize("max_shift", [-1, 28, 1.5, True])
def test_guard_refuses_bad_max_shift(guard_case, max_shift):
    prior, refs, _, _ = guard_case
    with pytest.raises(ValueError, match=r"max_shift must be an integer in \[0, 27\]"):
        drop_near_duplicates(prior, refs, max_shift=max_shift)


def test_guard_refuses_bad_prior_images(guard_case):
    _, refs, _, _ = guard_case
    with pytest.raises(ValueError, match=r"prior images must have shape \(N, S, S\)"):
        max_shifted_correlation(np.zeros((3, 784)), refs)


# --- the real files ----------------------------------------------------------------------------------


def test_real_prior_guarded_against_digit69_test_and_validation(real_data_dir, record_property, capsys):
    d = load_digit69(real_data_dir, verbose=0)
    prior = load_prior_images(real_data_dir / "mnist_6_9.npz", verbose=0)
    assert prior.sha256 == P.PRIOR_SHA256 and prior.counts() == {6: 1014, 9: 978}
    assert prior.source == P.NPZ_SOURCE and prior.class_names == {6: "six", 9: "nine"}
    _, val_idx = train_val_split(d.labels_train, val_fraction=0.2, seed=0)
    refs = np.concatenate([d.images_test, d.images_train[val_idx]])  # (28, 28, 28)
    exact_test = np.flatnonzero(_naive_max_r(prior.images, d.images_test, 0) > 1 - 1e-6)
    assert len(exact_test) == 2  # PROVENANCE.md: 2 of the 10 test stimuli appear exactly
    kept, report = drop_near_duplicates(prior, refs, threshold=0.9, max_shift=2,
                                        references_label="digit69 test + validation stimuli")
    dropped = {x["index"] for x in report["dropped"]}
    assert set(exact_test.tolist()) <= dropped
    assert _naive_max_r(kept.images, d.images_test, 2).max() <= 0.9  # no test stimulus survives
    assert _naive_max_r(kept.images, refs, 2).max() <= 0.9
    assert report["n_dropped"] >= 8  # at least the 8 images with r > 0.9 with a test stimulus
    record_property("n_dropped", report["n_dropped"])
    with capsys.disabled():
        print(f"\n[prior guard] dropped {report['n_dropped']} of {report['n_before']} prior images "
              f"(per digit {report['dropped_per_digit']}) against {len(refs)} test + validation stimuli")


def test_stratified_subset_sizes_and_strata():
    import numpy as np

    from ldm_core.splits import stratified_subset

    labels = np.array([6] * 30 + [9] * 20)
    prior = PriorImages(images=np.zeros((50, 4, 4), np.float32), labels=labels, source="mnist_6_9.npz",
                        path=__import__("pathlib").Path("x.npz"), sha256="0")
    sub = stratified_subset(prior, 10, seed=0)
    assert sub.n_images == 10 and sub.counts() == {6: 6, 9: 4}
    assert stratified_subset(prior, 0).images.shape == (0, 4, 4)
    assert stratified_subset(prior, 50) is prior
    with pytest.raises(ValueError, match=r"n_images must be an int in \[0, 50\]"):
        stratified_subset(prior, 51)


def test_real_guarded_prior_is_bitwise_the_published_one(real_data_dir, monkeypatch):
    """The kept set of chapter 07 on digit69 (its checksum is part of the prior cache keys) is the one of the
    published run: found through LDM_DATA_DIR ("auto") or by its path, 1969 images, these exact bytes."""
    from ldm_core.splits import prepare_data

    d = prepare_data(str(real_data_dir), verbose=0)
    refs = np.concatenate([d.images_val, d.images_test])
    monkeypatch.setenv("LDM_DATA_DIR", str(real_data_dir))
    for source in ("auto", str(real_data_dir / "mnist_6_9.npz")):
        kept, _ = drop_near_duplicates(load_prior_images(source, size=d.image_size, verbose=0), refs,
                                       threshold=0.9, max_shift=2)
        assert kept.images.shape == (1969, 28, 28)
        assert hashlib.sha256(kept.images.tobytes()).hexdigest() == \
            "d84a2850c3d5f7ee82c935510a8c3c2fcfdb6bd62a75b458bacafe5bf8831bf3"
        assert hashlib.sha256(kept.labels.tobytes()).hexdigest() == \
            "24230881bbdf7952b6ca007f47b700515cacd64eaa2f9205eef9f3610e2bfd99"
