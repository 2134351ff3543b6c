"""Tests of ldm_core.prior_images: finding and validating the unpaired MNIST images, and the leakage guard."""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ldm_core import data as D
from ldm_core import prior_images as P
from ldm_core.data import DataFileError, DataNotFoundError, load_digit69, train_val_split
from ldm_core.prior_images import PriorImages, drop_near_duplicates, load_prior_images, max_shifted_correlation


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


# --- loading the npz ---------------------------------------------------------------------------------


def test_load_npz_by_path_filters_digits(tmp_path):
    arrays = _digits_arrays()
    p = _write_npz(tmp_path / "mnist_6_9.npz", arrays)
    prior = load_prior_images(tmp_path, verbose=0)
    assert prior.images.shape == (10, 28, 28) and prior.images.dtype == np.float32
    assert prior.labels.dtype == np.int64 and prior.counts() == {6: 5, 9: 5} and prior.n_images == 10
    np.testing.assert_allclose(prior.images[0], arrays["images"][0] / 255.0, atol=1e-7)  # upright, as stored
    assert prior.source == "mnist_6_9.npz" and prior.path == p
    assert prior.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert "5 sixes, 5 nines" in prior.description and "MIT licence" in prior.description
    assert "differs from the published" in prior.description
    assert load_prior_images(p, digits=(3,), verbose=0).counts() == {3: 5}


def test_provenance_has_no_absolute_paths(tmp_path):
    _write_npz(tmp_path / "mnist_6_9.npz", _digits_arrays())
    prior = load_prior_images(tmp_path, verbose=0)
    prov = prior.provenance()
    assert prov["file"] == "mnist_6_9.npz" and prov["count_per_digit"] == {6: 5, 9: 5}
    assert prov["source"] == "mnist_6_9.npz" and prov["sha256"] == prior.sha256 and "MIT" in prov["licence"]
    text = json.dumps(prov) + prior.description
    assert str(tmp_path) not in text and os.sep + "tmp" not in text


def test_npz_found_through_env_var(tmp_path, monkeypatch, capsys):
    _write_npz(tmp_path / "mnist_6_9.npz", _digits_arrays())
    monkeypatch.setenv("LDM_DATA_DIR", str(tmp_path))
    assert load_prior_images().path == tmp_path / "mnist_6_9.npz"
    assert capsys.readouterr().out == "prior images: using mnist_6_9.npz (LDM_DATA_DIR)\n"  # no folder printed


def test_env_var_without_npz_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"LDM_DATA_DIR is set to .*mnist_6_9\.npz not found.*source='torchvision'"):
        load_prior_images(verbose=0)


def test_explicit_path_without_npz_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No data file at .*mnist_6_9\.npz \(from the data_dir argument\)"):
        load_prior_images(tmp_path, verbose=0)


def test_cache_hit_is_checksum_verified(tmp_path, monkeypatch):
    cache = D._default_cache_dir()
    cache.mkdir(parents=True)
    p = _write_npz(cache / "mnist_6_9.npz", _digits_arrays())
    with pytest.raises(DataNotFoundError, match=r"mnist_6_9\.npz \(cache\): checksum mismatch, ignored"):
        load_prior_images(source="npz", verbose=0)  # not the published file
    monkeypatch.setattr(P, "PRIOR_SHA256", hashlib.sha256(p.read_bytes()).hexdigest())
    assert load_prior_images(source="npz", verbose=0).path == p


def test_npz_nowhere_forced(monkeypatch):
    with pytest.raises(OSError, match=r"(?s)Could not find or fetch mnist_6_9\.npz.*LDM_DATA_DIR: not set.*"
                                      r"no public URL.*source='torchvision'"):
        load_prior_images(source="npz", verbose=0)


def test_binarised_npz_is_used_as_0_1(tmp_path):
    arrays = _digits_arrays()
    arrays["images"] = (arrays["images"] > 127).astype(np.uint8)
    prior = load_prior_images(_write_npz(tmp_path / "b.npz", arrays), verbose=0)
    assert set(np.unique(prior.images).tolist()) == {0.0, 1.0} and "binarised" in prior.description


def test_float_npz_in_unit_range(tmp_path):
    arrays = _digits_arrays()
    arrays["images"] = arrays["images"] / 255.0
    prior = load_prior_images(_write_npz(tmp_path / "f.npz", arrays), verbose=0)
    assert prior.images.max() <= 1.0 and prior.images.max() > 0.9


# --- validation of the npz ---------------------------------------------------------------------------


def _bad(tmp_path, **changes):
    arrays = _digits_arrays()
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return _write_npz(tmp_path / "bad.npz", arrays)


def test_not_an_npz(tmp_path):
    p = tmp_path / "mnist_6_9.npz"
    p.write_text("not a zip")
    with pytest.raises(DataFileError, match=r"mnist_6_9\.npz: not a readable \.npz file"):
        load_prior_images(p, verbose=0)


@pytest.mark.parametrize("key", ["images", "labels"])
def test_npz_missing_key(tmp_path, key):
    with pytest.raises(DataFileError, match=rf"bad\.npz, key '{key}': missing key; the file has"):
        load_prior_images(_bad(tmp_path, **{key: None}), verbose=0)


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
def test_npz_validation(tmp_path, changes, match):
    with pytest.raises(DataFileError, match=match):
        load_prior_images(_bad(tmp_path, **changes), verbose=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(source="web"), r"unknown source 'web'; allowed \['auto', 'npz', 'torchvision'\]"),
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
    root = D._default_cache_dir() / "mnist"
    assert fake_mnist.calls == [(str(root), True, True)]
    assert prior.source == "torchvision MNIST train" and prior.counts() == {6: 3, 9: 3}
    assert set(prior.labels.tolist()) == {6, 9} and prior.images.shape == (6, 28, 28)
    assert prior.images.dtype == np.float32 and prior.images.max() <= 1.0
    manifest = "".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n" for n in P.TORCHVISION_FILES)
    assert prior.sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    assert prior.path == root / "MNIST" / "raw"
    prov = prior.provenance()
    assert prov["file"].startswith("MNIST/raw/") and str(root) not in json.dumps(prov) + prior.description
    assert "CC BY-SA 3.0" in prov["licence"] and "3 sixes, 3 nines" in prior.description


def test_torchvision_forced_with_root_and_download_flag(fake_mnist, tmp_path, capsys):
    _write_npz(tmp_path / "mnist_6_9.npz", _digits_arrays())  # ignored when torchvision is forced
    prior = load_prior_images(tmp_path, source="torchvision", digits=(0, 1, 2), download=False)
    assert fake_mnist.calls == [(str(tmp_path), True, False)] and prior.counts() == {0: 3, 1: 3, 2: 3}
    assert capsys.readouterr().out == "prior images: using torchvision MNIST train (MNIST/raw under the path argument)\n"


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
    prior = load_prior_images(real_data_dir, verbose=0)
    assert prior.sha256 == P.PRIOR_SHA256 and prior.counts() == {6: 1014, 9: 978}
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

    from ldm_core.prior_images import PriorImages, stratified_subset

    labels = np.array([6] * 30 + [9] * 20)
    prior = PriorImages(images=np.zeros((50, 4, 4), np.float32), labels=labels, source="mnist_6_9.npz",
                        path=__import__("pathlib").Path("x.npz"), sha256="0")
    sub = stratified_subset(prior, 10, seed=0)
    assert sub.n_images == 10 and sub.counts() == {6: 6, 9: 4}
    assert stratified_subset(prior, 0).images.shape == (0, 4, 4)
    assert stratified_subset(prior, 50) is prior
    with pytest.raises(ValueError, match=r"n_images must be an int in \[0, 50\]"):
        stratified_subset(prior, 51)
