"""Tests for ldm_core.feature_net (digits CNN training, caching, VGG16 loading, specs) and ldm_core.perception_net."""

import warnings

import numpy as np
import pytest
import torch

from ldm_core import perception_net as PN
from tests.train_helpers import BAR_NAMES, bars
from ldm_core.feature_net import (
    DIGITS_EPOCHS,
    DigitFeatureNet,
    FeatureNet,
    VGG16Features,
    get_feature_net,
    load_sklearn_digits,
    load_vgg16_features,
    sklearn_digit_examples,
    train_digit_feature_net,
)
from ldm_core.losses import PerceptualLoss

torch.set_num_threads(1)


# fixtures

@pytest.fixture(scope="module")
def digits_net(tmp_path_factory):
    """The default digits net, trained once for this module (~5 s)."""
    return get_feature_net("digits", cache_dir=tmp_path_factory.mktemp("cache"), seed=0)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A randomly initialised vgg16 state_dict holding features.0 ... features.14 (~7 MB)."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        features = vgg16(weights=None).features[:16]
    features = features.to_empty(device="cpu")
    torch.manual_seed(0)
    for layer in features:
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    path = tmp_path_factory.mktemp("vgg") / "vgg16_features.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


# digits CNN

def test_sklearn_digits_shape_and_range():
    x, y = load_sklearn_digits(size=28)
    assert x.shape == (1797, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(y.tolist()) == set(range(10))


def test_sklearn_digit_examples():
    images, labels = sklearn_digit_examples((6, 9), n_per_digit=3, size=28)
    assert images.shape == (6, 28, 28) and images.dtype.name == "float32" and 0 <= images.min() <= images.max() <= 1
    assert labels.tolist() == [6, 6, 6, 9, 9, 9]
    x, y = load_sklearn_digits(size=28)
    assert (images[0] == x[(y == 6).nonzero()[0, 0], 0].numpy()).all()  # the first six of the file
    with pytest.raises(ValueError, match=r"digits in 0..9 and n_per_digit >= 1; got digits=\[12\]"):
        sklearn_digit_examples((12,))
    with pytest.raises(ValueError, match="n_per_digit=0"):
        sklearn_digit_examples(n_per_digit=0)


def test_digit_feature_net_shapes():
    maps = DigitFeatureNet()(torch.rand(2, 1, 28, 28))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 28, 28), (2, 32, 14, 14), (2, 64, 7, 7)]
    assert DigitFeatureNet().classify(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_digits_net_trained_frozen_and_named(digits_net):
    assert isinstance(digits_net, FeatureNet)
    assert digits_net.name == "digits-cnn(sklearn 8x8 digits, seed 0)"
    net = digits_net.net
    assert net.heldout_accuracy > 0.93, net.heldout_accuracy
    assert not net.training and all(not p.requires_grad for p in net.parameters())


def test_digits_perceptual_loss(digits_net):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 28, 28, generator=g)
    pred = torch.rand(2, 1, 28, 28, generator=g).requires_grad_(True)
    loss_fn = PerceptualLoss(digits_net.net)
    assert loss_fn(target, target).item() == 0.0
    loss = loss_fn(pred, target)
    loss.backward()
    assert loss.item() > 0 and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in digits_net.net.parameters())


def test_training_deterministic_and_leaves_global_rng():
    state = torch.get_rng_state()
    a = train_digit_feature_net(epochs=1, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_digit_feature_net(epochs=1, seed=3)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_cache_roundtrip_and_mismatch(tmp_path):
    path = tmp_path / "net.pt"
    a = train_digit_feature_net(epochs=1, seed=1, cache_path=path)
    assert path.exists()
    b = train_digit_feature_net(epochs=1, seed=1, cache_path=path)
    assert b.train_seconds == 0.0 and b.heldout_accuracy == a.heldout_accuracy
    for va, vb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(va, vb)
    with pytest.raises(ValueError, match="delete it or pass another cache_path"):
        train_digit_feature_net(epochs=2, seed=1, cache_path=path)
    path.write_bytes(b"damaged")  # a damaged file is trained again, with a warning, and replaced
    with pytest.warns(RuntimeWarning, match="damaged cached digits feature net") as record:
        c = train_digit_feature_net(epochs=1, seed=1, cache_path=path)
    assert record[0].filename == __file__  # the warning points at the call, not into the package
    assert c.train_seconds > 0 and torch.equal(next(iter(c.state_dict().values())), next(iter(a.state_dict().values())))
    assert train_digit_feature_net(epochs=1, seed=1, cache_path=path).train_seconds == 0.0
    torch.save({"meta": {}, "state_dict": {"w": torch.ones(1)}}, path)  # weights of another net: trained again too
    with pytest.warns(RuntimeWarning, match=r"damaged cached digits feature net .*RuntimeError"):
        assert train_digit_feature_net(epochs=1, seed=1, cache_path=path).train_seconds > 0


def test_train_errors():
    with pytest.raises(ValueError, match="epochs=0"):
        train_digit_feature_net(epochs=0)
    with pytest.raises(ValueError, match="heldout_fraction=1.5"):
        train_digit_feature_net(heldout_fraction=1.5)
    assert DIGITS_EPOCHS >= 1


# VGG16

def test_vgg16_missing_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="cannot be downloaded here"):
        load_vgg16_features(missing)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        get_feature_net(f"vgg16:{missing}")


def test_vgg16_bad_file(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="does not hold torchvision vgg16 feature weights"):
        load_vgg16_features(path)


def test_vgg16_loads_and_perceptual(vgg_file):
    fn = get_feature_net(f"vgg16:{vgg_file}")
    assert fn.name == f"vgg16({vgg_file})"
    net = fn.net
    assert isinstance(net, VGG16Features)
    assert not net.training and all(not p.requires_grad for p in net.parameters())
    state = torch.load(vgg_file, weights_only=True)
    assert torch.equal(net.features[14].weight, state["features.14.weight"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 28, 28, generator=g)
    maps = net(x)
    assert [tuple(m.shape) for m in maps] == [(1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14)]
    loss_fn = PerceptualLoss(net)
    assert loss_fn(x, x).item() == 0.0
    assert loss_fn(torch.rand(1, 1, 28, 28, generator=g), x).item() > 0


# specs

@pytest.mark.parametrize("spec", ["vgg", "resnet50", "vgg16:", "Digits"])
def test_unknown_spec(spec):
    with pytest.raises(ValueError, match="'digits' or 'vgg16:"):
        get_feature_net(spec)


# perception classifier

def test_digit_word():
    assert PN.digit_word(6) == "six" and PN.digit_word(np.int64(9)) == "nine" and PN.digit_word(0) == "zero"
    for bad in (10, -1, 6.0, True, "6"):
        with pytest.raises(ValueError, match=r"is not a digit; digit_word takes an integer in 0..9"):
            PN.digit_word(bad)


def test_perception_cnn_shapes_any_size_and_classes():
    for S, K in ((4, 2), (16, 3), (28, 2)):
        net = PN.PerceptionCNN(K)
        x = torch.rand(5, 1, S, S)
        assert net.features(x).shape == (5, PN.PERCEPTION_FEATURES) and net(x).shape == (5, K)


def test_perception_net_heldout_split_accuracy_and_outputs(bar_net):
    x, y = bars()
    net = bar_net
    assert net.class_names == ("vertical", "horizontal")  # logit order: ascending code
    assert net.heldout_images.shape == (16, 16, 16) and net.heldout_images.dtype == np.float32
    assert sorted(np.unique(net.heldout_labels, return_counts=True)[1].tolist()) == [8, 8]  # stratified, 20%
    assert net.n_train == 64 and net.image_size == 16
    # held-out images are real training-set images, and none of them was in the training part
    flat = x.reshape(len(x), -1)
    held_rows = [int(np.flatnonzero((flat == h.reshape(-1)).all(axis=1))[0]) for h in net.heldout_images]
    assert len(set(held_rows)) == 16 and (y[held_rows] == net.heldout_labels).all()
    assert net.heldout_accuracy == 1.0
    pred = net.predict(net.heldout_images)
    assert pred.shape == (16,) and set(pred) <= set(net.class_names)
    expected = np.array([BAR_NAMES[c] for c in net.heldout_labels])
    assert (pred == expected).all()
    f = net.features(x[:5])
    assert f.shape == (5, PN.PERCEPTION_FEATURES) and f.dtype == np.float64 and (f >= 0).all()
    assert np.array_equal(net.heldout_features, net.features(net.heldout_images))
    assert not net.net.training and all(not p.requires_grad for p in net.net.parameters())
    assert net.name == "vertical-vs-horizontal CNN (64 training images, seed 0)"


def test_perception_net_deterministic_and_leaves_global_rng(bar_net):
    x, y = bars()
    state = torch.get_rng_state()
    again = PN.train_perception_net(x, y, class_names=BAR_NAMES, steps=40, batch_size=32, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(again.features(x), bar_net.features(x))
    assert np.array_equal(again.heldout_images, bar_net.heldout_images)
    other = PN.train_perception_net(x, y, class_names=BAR_NAMES, steps=40, batch_size=32, seed=1)
    assert not np.array_equal(other.features(x), bar_net.features(x))


def test_perception_net_cache_loads_and_damaged_file_retrains(tmp_path, monkeypatch, bar_net):
    x, y = bars()
    kw = dict(class_names=BAR_NAMES, steps=40, batch_size=32, seed=0, cache_dir=tmp_path)
    first = PN.train_perception_net(x, y, **kw)
    files = list(tmp_path.glob("perception_net_*.pt"))
    assert len(files) == 1 and first.cache_path == files[0] and first.train_seconds > 0
    assert np.array_equal(first.features(x), bar_net.features(x))

    # a second call loads: the optimiser must not run
    def no_training(*a, **k):
        raise AssertionError("trained although the cache file exists")

    with monkeypatch.context() as m:
        m.setattr(PN.torch.optim, "Adam", no_training)
        loaded = PN.train_perception_net(x, y, **kw)
    assert loaded.train_seconds == 0.0 and loaded.heldout_accuracy == first.heldout_accuracy
    assert np.array_equal(loaded.features(x), first.features(x))
    assert np.array_equal(loaded.heldout_images, first.heldout_images)

    # other data, seed or settings -> another file
    PN.train_perception_net(x[::-1].copy(), y[::-1].copy(), **kw)
    PN.train_perception_net(x, y, **{**kw, "steps": 41})
    assert len(list(tmp_path.glob("perception_net_*.pt"))) == 3

    # a damaged file: warned about (naming it), retrained, replaced
    files[0].write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match=rf"damaged cached perception net .*{files[0].name}") as record:
        fixed = PN.train_perception_net(x, y, **kw)
    assert record[0].filename == __file__  # it points at the call
    assert fixed.train_seconds > 0 and np.array_equal(fixed.features(x), first.features(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replaced file loads cleanly
        assert PN.train_perception_net(x, y, **kw).train_seconds == 0.0


def test_perception_net_runs_on_one_thread_and_restores_the_count(bar_net):
    before = torch.get_num_threads()
    seen = []
    hook = bar_net.net.conv0.register_forward_hook(lambda *a: seen.append(torch.get_num_threads()))
    try:
        torch.set_num_threads(2)
        bar_net.features(bar_net.heldout_images[:2])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        hook.remove()
        torch.set_num_threads(before)


def test_perception_net_features_errors(bar_net):
    with pytest.raises(ValueError, match=r"are 28x28 images, but this network was trained on 16x16"):
        bar_net.features(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match=r"images must have shape \(N, 16, 16\)"):
        bar_net.predict(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        bar_net.features(np.full((1, 16, 16), np.nan))


def test_train_perception_net_errors():
    x, y = bars(n_per_class=4)
    train = PN.train_perception_net
    with pytest.raises(ValueError, match="labels is None"):
        train(x, None, class_names=BAR_NAMES)
    with pytest.raises(ValueError, match="labels has 7 entries for 8 images"):
        train(x, y[:7], class_names=BAR_NAMES)
    with pytest.raises(ValueError, match="labels must be integer label codes"):
        train(x, y.astype(float), class_names=BAR_NAMES)
    with pytest.raises(ValueError, match=r"labels hold fewer than 2 classes \(\['vertical'\]\)"):
        train(x[:4], y[:4], class_names=BAR_NAMES)
    with pytest.raises(ValueError, match=r"labels hold fewer than 2 classes"):
        train(x, y, class_names={3: "bar", 7: "bar"})  # two codes, one name: one class
    with pytest.raises(ValueError, match=r"every class needs at least 2 images"):
        train(x[3:], y[3:], class_names=BAR_NAMES)
    with pytest.raises(ValueError, match=r"class_names has no name for the label code\(s\) \[7\]"):
        train(x, y, class_names={3: "vertical"})
    with pytest.raises(ValueError, match="class_names must be a non-empty dict"):
        train(x, y, class_names={})
    with pytest.raises(ValueError, match="class_names has the key 'a'"):
        train(x, y, class_names={"a": "vertical", 7: "horizontal"})
    with pytest.raises(ValueError, match=r"class_names\[3\] = ''"):
        train(x, y, class_names={3: "", 7: "horizontal"})
    with pytest.raises(ValueError, match=r"images must have shape \(N, S, S\)"):
        train(x[:, :, :8], y, class_names=BAR_NAMES)
    with pytest.raises(ValueError, match=r"images must have shape \(N, S, S\)"):
        train(x[:, :3, :3], y, class_names=BAR_NAMES)
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\]"):
        train(x * 255, y, class_names=BAR_NAMES)
    with pytest.raises(ValueError, match="heldout_fraction=1.0"):
        train(x, y, class_names=BAR_NAMES, heldout_fraction=1.0)
    with pytest.raises(ValueError, match="steps=0"):
        train(x, y, class_names=BAR_NAMES, steps=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        train(x, y, class_names=BAR_NAMES, batch_size=0)


def test_string_keys_of_class_names_are_codes():
    x, y = bars(n_per_class=5)
    net = PN.train_perception_net(x, y, class_names={"3": "vertical", "7": "horizontal"}, steps=2)
    assert net.class_names == ("vertical", "horizontal") and len(net.heldout_images) == 2
