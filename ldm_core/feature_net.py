"""Frozen feature networks for the perceptual loss in ``ldm_core.losses``.

Two choices, picked by ``get_feature_net(spec)``:

- ``"digits"``: ``DigitFeatureNet``, a three-conv CNN we train here as a
  10-class classifier on scikit-learn's bundled 8x8 handwritten digits
  (``sklearn.datasets.load_digits``; 1797 images from UCI "Optical
  Recognition of Handwritten Digits", Alpaydin & Kaynak 1998), upsampled to
  28x28. Those images ship with scikit-learn, so this needs no download, and
  they are NOT digit69's images (train or test): the perceptual features never
  see the evaluation split. Training takes seconds on one CPU core and is
  deterministic given the seed.
- ``"vgg16:/path/to/file.pth"``: torchvision's VGG16 (Simonyan & Zisserman
  2015) up to relu3_3, the usual perceptual-loss network (Johnson et al. 2016),
  loaded from an ImageNet state_dict the user supplies. Pretrained weights
  cannot be downloaded here, so there is no default file.

Both map images (B, 1, S, S) float32 in [0, 1] to a list of feature maps and
are returned frozen (``requires_grad=False``, eval mode).

Why we wrote this: ``torchvision.models.vgg16`` gives the architecture, but
not a [0, 1] grayscale front end nor a list of intermediate maps; and no kept
library offers a digit-trained perceptual network.

A second, separate network serves the perception metrics: ``ldm_core.perception_net``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ldm_core.io import atomic_torch_save, read_cached
from ldm_core.optim import optimiser_step

__all__ = [
    "DIGITS_EPOCHS",
    "VGG16_LAYERS",
    "freeze",
    "DigitFeatureNet",
    "load_sklearn_digits",
    "train_digit_feature_net",
    "VGG16Features",
    "load_vgg16_features",
    "FeatureNet",
    "get_feature_net",
    "sklearn_digit_examples",
]

DIGITS_EPOCHS = 12  # training epochs of the digits CNN: 97-99% held-out accuracy (seeds 0-2), ~5 s on one CPU core
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision ImageNet normalisation, per RGB channel
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision vgg16().features index -> layer name, for the ReLUs we return (up to relu3_3)
VGG16_LAYERS = {3: "relu1_2", 8: "relu2_2", 15: "relu3_3"}


# helpers

def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter, drop stale ``.grad``, switch to eval; returns ``module``."""
    for p in module.parameters():
        p.requires_grad_(False)
        p.grad = None
    return module.eval()


# digits CNN

class DigitFeatureNet(nn.Module):
    """Small CNN for 28x28 digits, used as a perceptual feature extractor.

    conv3x3(1->16)-ReLU [f0] - maxpool2 - conv3x3(16->32)-ReLU [f1] - maxpool2 -
    conv3x3(32->64)-ReLU [f2] - adaptive average pool to 4x4 - linear(1024->10).

    Notes
    -----
    ``forward(x)`` takes images (B, 1, S, S) float32 in [0, 1], ink = 1,
    background = 0, and returns the feature maps ``[f0, f1, f2]`` of shapes
    (B, 16, S, S), (B, 32, S/2, S/2), (B, 64, S/4, S/4) (floor division).
    ``classify(x)`` returns class logits (B, 10). ``heldout_accuracy`` is the
    accuracy on the held-out 20% of scikit-learn's digits after training
    (NaN before); it is a buffer, so it travels with the state_dict.
    """

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.head = nn.Linear(64 * 4 * 4, 10)
        self.register_buffer("_heldout_accuracy", torch.tensor(float("nan"), dtype=torch.float64))

    @property
    def heldout_accuracy(self) -> float:
        """Accuracy in [0, 1] on the held-out part of scikit-learn's digits (NaN if untrained)."""
        return float(self._heldout_accuracy)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f0 = F.relu(self.conv0(x))  # (B, 16, S, S)
        f1 = F.relu(self.conv1(F.max_pool2d(f0, 2)))  # (B, 32, S/2, S/2)
        f2 = F.relu(self.conv2(F.max_pool2d(f1, 2)))  # (B, 64, S/4, S/4)
        return [f0, f1, f2]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        f2 = self.forward(x)[-1]
        pooled = F.adaptive_avg_pool2d(f2, 4).flatten(1)  # (B, 64, 4, 4) -> (B, 1024)
        return self.head(pooled)  # (B, 10)


def load_sklearn_digits(*, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits, upsampled to ``size`` x ``size``.

    Parameters
    ----------
    size : int
        Output side in pixels (bilinear upsampling, ``align_corners=False``).

    Returns
    -------
    images : Tensor of shape (1797, 1, size, size), float32 in [0, 1]
        Pixel values 0..16 divided by 16; ink = 1.
    labels : LongTensor of shape (1797,), in 0..9
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    y = torch.from_numpy(digits.target.astype(np.int64))
    return x, y


def _load_cached_digit_net(cache_path, meta: dict, verbose: bool) -> DigitFeatureNet | None:
    """The frozen digits net saved at ``cache_path``, after checking it was made with the settings ``meta``; None
    when there is none (no path or file) or the file is damaged or does not fit (then warned about, and the net
    trained again)."""
    def saved(ckpt: dict) -> tuple[dict, DigitFeatureNet]:
        net = DigitFeatureNet()
        net.load_state_dict(ckpt["state_dict"])
        return ckpt["meta"], net

    cached = read_cached(cache_path, "digits feature net", build=saved, stacklevel=3)  # train_digit_feature_net's caller
    if cached is None:
        return None
    if cached[0] != meta:
        raise ValueError(f"cache file {cache_path} was made with settings {cached[0]}, not {meta}; "
                         f"delete it or pass another cache_path.")
    net = cached[1]
    net.train_seconds = 0.0
    if verbose:
        print(f"loaded digits feature net from {cache_path} (held-out acc {net.heldout_accuracy:.4f})")
    return freeze(net)


def _fit_digit_classifier(x_train, y_train, *, epochs, seed, batch_size, lr, verbose) -> tuple[DigitFeatureNet, float]:
    """A DigitFeatureNet trained as a classifier on ``x_train``, ``y_train``, and the training time in s."""
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        net = DigitFeatureNet()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        N = len(y_train)
        net.train()
        for epoch in range(int(epochs)):
            perm = torch.randperm(N, generator=gen)
            total = 0.0
            for start in range(0, N, batch_size):
                b = perm[start:start + batch_size]
                loss = F.cross_entropy(net.classify(x_train[b]), y_train[b])
                optimiser_step(opt, loss)
                total += loss.item() * len(b)
            if verbose:
                print(f"digits feature net: epoch {epoch + 1}/{epochs}, train loss {total / N:.4f}")
    return net, time.perf_counter() - t0


def train_digit_feature_net(*, epochs: int = DIGITS_EPOCHS, seed: int = 0, cache_path: str | os.PathLike | None = None,
                            verbose: bool = False, batch_size: int = 32, lr: float = 2e-3,
                            heldout_fraction: float = 0.2) -> DigitFeatureNet:
    """Train ``DigitFeatureNet`` as a classifier on scikit-learn's 8x8 digits.

    Parameters
    ----------
    epochs : int, >= 1
        Passes over the training part (1437 images at the default split).
    seed : int
        Seeds the stratified split, the initialisation and the batch order; the same seed gives the same
        weights on CPU.
    cache_path : str or PathLike, optional
        If the file exists, load the net from it (after checking it was made with the same settings);
        otherwise train and save it there with ``torch.save``.
    verbose : bool
        Print the loss per epoch and the held-out accuracy.
    batch_size, lr : int, float
        Minibatch size and Adam learning rate.
    heldout_fraction : float in (0, 1)
        Fraction of the 1797 images held out (stratified) to measure accuracy.

    Returns
    -------
    net : DigitFeatureNet
        Frozen, on CPU, with ``heldout_accuracy`` and ``train_seconds`` (wall-clock training time in s; 0.0
        when loaded from the cache) set.

    Raises
    ------
    ValueError
        On ``epochs < 1``, a ``heldout_fraction`` outside (0, 1), or a cache file made with other settings.
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs={epochs!r} is not allowed; use an integer >= 1, e.g. {DIGITS_EPOCHS}.")
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction={heldout_fraction!r} is not allowed; use a value in (0, 1), e.g. 0.2.")
    meta = {"epochs": int(epochs), "seed": int(seed), "batch_size": int(batch_size),
            "lr": float(lr), "heldout_fraction": float(heldout_fraction)}
    if (cached := _load_cached_digit_net(cache_path, meta, verbose)) is not None:
        return cached
    from sklearn.model_selection import train_test_split

    x, y = load_sklearn_digits(size=28)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=heldout_fraction, random_state=seed,
                                           stratify=y.numpy())
    x_test, y_test = x[idx_test], y[idx_test]
    net, train_seconds = _fit_digit_classifier(x[idx_train], y[idx_train], epochs=epochs, seed=seed,
                                               batch_size=batch_size, lr=lr, verbose=verbose)
    net.eval()  # held-out accuracy
    with torch.no_grad():
        acc = (net.classify(x_test).argmax(dim=1) == y_test).double().mean()
    net._heldout_accuracy.copy_(acc)
    net.train_seconds = train_seconds
    if verbose:
        print(f"digits feature net: held-out accuracy {float(acc):.4f} on {len(y_test)} images, "
              f"trained in {train_seconds:.1f} s")
    if cache_path is not None:
        atomic_torch_save({"meta": meta, "state_dict": net.state_dict()}, Path(cache_path))
    return freeze(net)


# VGG16

class VGG16Features(nn.Module):
    """VGG16 ``features`` up to relu3_3 with a [0, 1] grayscale front end.

    Parameters
    ----------
    features : nn.Sequential
        ``torchvision.models.vgg16().features[:16]`` with loaded weights.
    resize : int or None
        Side in pixels to resize inputs to (bilinear) before VGG; None keeps
        the input size.

    Notes
    -----
    ``forward(x)`` takes images (B, 1, S, S) float32 in [0, 1], resizes them to
    ``resize`` (default 56), repeats the gray channel to RGB, applies ImageNet
    mean/std normalisation and returns ``[relu1_2, relu2_2, relu3_3]`` of shapes
    (B, 64, R, R), (B, 128, R/2, R/2), (B, 256, R/4, R/4). We upsample 28 -> 56
    because ImageNet-trained VGG filters expect strokes several pixels wide and
    because at 28 the relu3_3 maps are only 7x7; at 56 they are 14x14, still
    cheap.
    """

    def __init__(self, features: nn.Sequential, *, resize: int | None = 56):
        super().__init__()
        self.features = features
        self.resize = resize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))  # (1, 3, 1, 1)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))  # (1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.resize is not None and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        x = (x.expand(-1, 3, -1, -1) - self.mean) / self.std  # (B, 1, R, R) -> (B, 3, R, R)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_LAYERS:
                out.append(x)
        return out


def load_vgg16_features(weights_path: str | os.PathLike, *, resize: int | None = 56) -> VGG16Features:
    """VGG16 up to relu3_3 from a local ImageNet state_dict file.

    Parameters
    ----------
    weights_path : str or PathLike
        A file saved with ``torch.save(state_dict)`` holding at least the keys
        ``features.{0,2,5,7,10,12,14}.{weight,bias}`` of
        ``torchvision.models.vgg16`` (e.g. torchvision's
        ``vgg16-397923af.pth``, fetched elsewhere and copied here).
    resize : int or None
        Input side in pixels fed to VGG, see ``VGG16Features``.

    Returns
    -------
    net : VGG16Features
        Frozen (``requires_grad=False``, eval mode), on CPU.

    Raises
    ------
    FileNotFoundError
        If ``weights_path`` does not exist.
    ValueError
        If the file lacks VGG16 feature weights or their shapes differ.
    """
    from torchvision.models import vgg16

    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"VGG16 weights file {str(path)!r} does not exist. Pretrained ImageNet weights cannot be "
            f"downloaded here: copy a torchvision vgg16 state_dict (e.g. vgg16-397923af.pth) to this "
            f"path, or use the spec 'digits' for the self-trained digit network."
        )
    with torch.device("meta"):  # build the architecture without initialising 138M parameters
        features = vgg16(weights=None).features[:16]
    features = features.to_empty(device="cpu")

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    sub = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    sub = {k: v for k, v in sub.items() if int(k.split(".")[0]) < 16}
    try:
        features.load_state_dict(sub, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"{str(path)!r} does not hold torchvision vgg16 feature weights up to relu3_3 "
            f"(keys features.0 ... features.14): {err}"
        ) from None
    return freeze(VGG16Features(features, resize=resize))


# spec -> network

class FeatureNet(NamedTuple):
    """A frozen feature network and the name to record in results.

    net : nn.Module
        Maps images (B, 1, S, S) in [0, 1] to a list of feature maps.
    name : str
        e.g. ``"digits-cnn(sklearn 8x8 digits, seed 0)"`` or ``"vgg16(/path/file.pth)"``.
    """

    net: nn.Module
    name: str


def get_feature_net(spec: str, *, cache_dir: str | os.PathLike | None = None, seed: int = 0) -> FeatureNet:
    """Build the frozen feature network named by ``spec``.

    Parameters
    ----------
    spec : str
        ``"digits"``: ``DigitFeatureNet`` trained on scikit-learn's digits
        (``DIGITS_EPOCHS`` epochs, this ``seed``). ``"vgg16:<path>"``: VGG16
        from the local state_dict file at ``<path>``.
    cache_dir : str or PathLike, optional
        Folder for the trained digits net (``digits_cnn_seed{seed}_ep{epochs}.pt``);
        None trains it afresh each call. Unused for VGG16.
    seed : int
        Seed of the digits net.

    Returns
    -------
    FeatureNet
        ``(net, name)``; ``net`` frozen, in eval mode.

    Raises
    ------
    ValueError
        On any other spec, or an empty VGG16 path.
    FileNotFoundError
        If the VGG16 file does not exist.
    """
    allowed = "'digits' or 'vgg16:/path/to/vgg16_state_dict.pth'"
    if spec == "digits":
        cache_path = None
        if cache_dir is not None:
            cache_path = Path(cache_dir) / f"digits_cnn_seed{seed}_ep{DIGITS_EPOCHS}.pt"
        net = train_digit_feature_net(epochs=DIGITS_EPOCHS, seed=seed, cache_path=cache_path)
        return FeatureNet(net=net, name=f"digits-cnn(sklearn 8x8 digits, seed {seed})")
    if isinstance(spec, str) and spec.startswith("vgg16:"):
        path = spec[len("vgg16:"):]
        if not path:
            raise ValueError(f"feature net spec {spec!r} has no file path; use {allowed}.")
        return FeatureNet(net=load_vgg16_features(path), name=f"vgg16({path})")
    raise ValueError(f"unknown feature net spec {spec!r}; allowed: {allowed}.")


# examples for the page

def sklearn_digit_examples(digits=(6, 9), *, n_per_digit: int = 5, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_per_digit`` images of each of ``digits`` in scikit-learn's 8x8 set, as the digits net sees them.

    Parameters
    ----------
    digits : sequence of int in 0..9
        Classes to show, in this order.
    n_per_digit : int, >= 1
        Images per class (its first ones in the file).
    size : int
        Side in pixels after upsampling (:func:`load_sklearn_digits`).

    Returns
    -------
    images : ndarray of shape (len(digits) * n_per_digit, size, size), float32 in [0, 1]
    labels : ndarray of shape (len(digits) * n_per_digit,), int, the digit of each image

    Raises
    ------
    ValueError
        If a digit is not in 0..9 or ``n_per_digit`` < 1.
    """
    bad = [d for d in digits if d not in range(10)]
    if bad or n_per_digit < 1:
        raise ValueError(f"sklearn_digit_examples needs digits in 0..9 and n_per_digit >= 1; got digits={list(digits)}, "
                         f"n_per_digit={n_per_digit}")
    x, y = load_sklearn_digits(size=size)
    idx = np.concatenate([np.flatnonzero(y.numpy() == d)[:n_per_digit] for d in digits])
    return x[idx, 0].numpy(), y.numpy()[idx]
