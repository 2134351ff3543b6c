"""Tests for ldm_core.feature_net: digits CNN training, caching, VGG16 loading, specs."""

import pytest
import torch

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
