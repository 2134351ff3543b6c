"""The perception classifier behind the perception metrics of ``ldm_core.metrics`` (digit accuracy, identification in
feature space, kernel inception distance).

``train_perception_net`` trains ``PerceptionCNN``, a classifier for any square image size and any number of classes,
on images the caller supplies -- in this study the guarded unpaired prior images only, never digit69's -- and returns a
frozen ``PerceptionNet`` holding the real images it never trained on (the KID reference set). It plays the role
InceptionV3 plays in FID/KID (Heusel et al. 2017; Bińkowski et al. 2018), whose ImageNet weights cannot be downloaded
here and which has never seen a handwritten digit. It is separate from the perceptual loss's feature nets
(``ldm_core.feature_net``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ldm_core.feature_net import freeze
from ldm_core.io import atomic_torch_save, content_key, read_cached
from ldm_core.optim import optimiser_step

__all__ = ["PERCEPTION_STEPS", "DIGIT_WORDS", "digit_word", "PerceptionCNN", "PerceptionNet", "train_perception_net"]

PERCEPTION_STEPS = 300  # Adam steps of the perception CNN (batch 64): 99.5-100% held-out on MNIST 6 vs 9, ~12 s
PERCEPTION_BATCH = 64  # minibatch size of the perception CNN
PERCEPTION_LR = 2e-3  # Adam learning rate of the perception CNN
PERCEPTION_FEATURES = 64 * 4 * 4  # penultimate features: 64 channels average-pooled to 4x4 (feature_id2 and KID)
PERCEPTION_ARCH = "perception-cnn-v2"  # enters the cache key; change it whenever PerceptionCNN or its training changes
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digit_word(d: int) -> str:
    """The English word of a digit, ``6 -> "six"``; used to name MNIST labels.

    Raises
    ------
    ValueError
        If ``d`` is not an integer in 0..9.
    """
    if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or not 0 <= int(d) <= 9:
        raise ValueError(f"d={d!r} is not a digit; digit_word takes an integer in 0..9, e.g. digit_word(6) -> 'six'.")
    return DIGIT_WORDS[int(d)]


class _one_thread:
    """Run torch on one CPU thread inside the block, restoring the caller's count after.

    The perception CNN is too small to gain from intra-op threads; on a 2-core machine whose cores were
    busy with other jobs, a training step took more than ten times longer with two threads than with one.
    """

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)
        return False


def _class_name_map(class_names, *, arg: str = "class_names") -> dict[int, str]:
    """``{code: name}`` with int codes (YAML / JSON may give ``{"1": "six"}``) and non-empty str names."""
    if not isinstance(class_names, dict) or not class_names:
        raise ValueError(f"{arg} must be a non-empty dict mapping each label code to its class name, "
                         f"e.g. {{6: 'six', 9: 'nine'}}; got {class_names!r}.")
    out = {}
    for code, name in class_names.items():
        try:
            key = int(code)
        except (TypeError, ValueError):
            raise ValueError(f"{arg} has the key {code!r}, which is not an integer label code.") from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"{arg}[{code!r}] = {name!r}; class names must be non-empty strings.")
        out[key] = name
    return out


def _check_images(images, *, arg: str = "images", size: int | None = None) -> np.ndarray:
    """(N, S, S) finite array -> float32; ``size`` fixes S."""
    x = np.asarray(images)
    if x.ndim != 3 or x.shape[1] != x.shape[2] or len(x) == 0 or x.shape[1] < 4:
        want = f"(N, {size}, {size})" if size else "(N, S, S) with N >= 1 and S >= 4"
        raise ValueError(f"{arg} must have shape {want}: N square grayscale images; got shape {x.shape}.")
    if size is not None and x.shape[1] != size:
        raise ValueError(f"{arg} are {x.shape[1]}x{x.shape[2]} images, but this network was trained on "
                         f"{size}x{size} images; resize them or train a network on this size.")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{arg} contain NaN or infinite values.")
    return x


class PerceptionCNN(nn.Module):
    """Small CNN classifier for square grayscale images of any side S >= 4 and K >= 2 classes.

    conv3x3(1->16)-ReLU - maxpool2 - conv3x3(16->32)-ReLU - maxpool2 - conv3x3(32->64)-ReLU - adaptive
    average pool to 4x4 [penultimate features, 1024] - linear(1024->K).

    Notes
    -----
    ``features(x)`` maps images (B, 1, S, S) float32 in [0, 1] to the pooled last-conv activations (B, 1024),
    the input of the linear classifier, as InceptionV3's pool3 features are for FID and KID; ``forward(x)``
    returns logits (B, K). We tried a hidden fully connected layer (64 units) as the penultimate layer: trained on
    six against nine, most of its units died, and its KID ranked uniform noise closer to real digits than blurred
    digits, class-mean images or a constant grey image. The pooled conv features rank real digits (digit69's
    stimuli) closest, then blurred digits and class means, then constant images and noise.
    """

    def __init__(self, n_classes: int):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.head = nn.Linear(PERCEPTION_FEATURES, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv0(x))  # (B, 16, S, S)
        h = F.relu(self.conv1(F.max_pool2d(h, 2)))  # (B, 32, S/2, S/2)
        h = F.relu(self.conv2(F.max_pool2d(h, 2)))  # (B, 64, S/4, S/4)
        return F.adaptive_avg_pool2d(h, 4).flatten(1)  # (B, 64, 4, 4) -> (B, 1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, K)


@dataclass(frozen=True, eq=False)
class PerceptionNet:
    """A frozen classifier whose penultimate features define the perception metrics.

    Attributes
    ----------
    net : PerceptionCNN
        Eval mode, ``requires_grad=False``, on CPU.
    class_names : tuple of str
        Class names in logit order (ascending label code), e.g. ``("six", "nine")``.
    heldout_images : ndarray of shape (M, S, S), float32 in [0, 1]
        The stratified held-out part of the training images: never used to train the net. The KID reference set.
    heldout_accuracy : float in [0, 1]
        Accuracy on ``heldout_images``.
    heldout_labels : ndarray of shape (M,), int64
        Label codes of ``heldout_images`` (the caller's codes).
    n_train : int
        Images it was trained on.
    seed : int
    train_seconds : float
        Wall-clock training time in s; 0.0 when loaded from the cache.
    cache_path : Path or None
        The cache file it was loaded from or saved to.
    """

    net: nn.Module
    class_names: tuple
    heldout_images: np.ndarray = field(repr=False)
    heldout_accuracy: float
    heldout_labels: np.ndarray = field(repr=False)
    n_train: int = 0
    seed: int = 0
    train_seconds: float = 0.0
    cache_path: Path | None = None

    @property
    def image_size(self) -> int:
        """Side S in pixels of the images it takes."""
        return int(self.heldout_images.shape[1])

    @property
    def name(self) -> str:
        """e.g. ``"six-vs-nine CNN (1,575 training images, seed 0)"``."""
        return f"{'-vs-'.join(self.class_names)} CNN ({self.n_train:,} training images, seed {self.seed})"

    def _run(self, images, fn, *, batch_size: int = 512) -> np.ndarray:
        x = _check_images(images, size=self.image_size)
        out = []
        with torch.no_grad(), _one_thread():
            for start in range(0, len(x), batch_size):
                out.append(fn(torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size]))[:, None]))
        return torch.cat(out).numpy()

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate-layer features.

        Parameters
        ----------
        images : ndarray of shape (N, S, S), float in [0, 1]
            S must be the side the net was trained on.

        Returns
        -------
        ndarray of shape (N, F), float64, >= 0 (pooled ReLU activations), F = :data:`PERCEPTION_FEATURES`
        """
        return self._run(images, self.net.features).astype(np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted class names, ndarray of shape (N,) of str (entries of ``class_names``)."""
        idx = self._run(images, lambda t: self.net(t).argmax(dim=1)).astype(np.int64)
        return np.asarray(self.class_names, dtype=object)[idx].astype(str)

    @cached_property
    def heldout_features(self) -> np.ndarray:
        """``features(heldout_images)``, computed once: (M, F) float64."""
        return self.features(self.heldout_images)


def _stratified_heldout(codes: np.ndarray, *, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a held-out part: per class, ``round(fraction * n_c)`` images, at least 1, at most n_c - 1."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(codes):
        idx = np.flatnonzero(codes == c)
        k = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        held.append(rng.permutation(idx)[:k])
    return np.sort(np.concatenate(held))


def _cache_path(cache_dir, x: np.ndarray, codes: np.ndarray, meta: dict, names: dict) -> Path | None:
    """``cache_dir/perception_net_<key>.pt``, the key hashing images, codes, ``meta`` and ``names``; None if no dir."""
    if cache_dir is None:
        return None
    key = content_key(list(x.shape), np.asarray(x, dtype=np.float32), np.asarray(codes, dtype=np.int64),
                      {**meta, "code_names": {str(k): v for k, v in sorted(names.items())}})
    return Path(cache_dir) / f"perception_net_{key}.pt"


def _checked_inputs(images, labels, class_names, heldout_fraction, steps, batch_size) -> tuple:
    """train_perception_net's checks; images (N, S, S), codes (N,), {code: name}, logit-order names, classes (N,)."""
    x = _check_images(images)
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"images must be in [0, 1]; got values in [{x.min():.3g}, {x.max():.3g}] "
                         f"(divide uint8 images by 255).")
    if labels is None:
        raise ValueError("labels is None: the perception net is a classifier and needs one label code per image "
                         "(prior images without labels cannot train it).")
    codes = np.asarray(labels).reshape(-1)
    if len(codes) != len(x):
        raise ValueError(f"labels has {len(codes)} entries for {len(x)} images; give one label per image.")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"labels must be integer label codes; got dtype {codes.dtype}.")
    codes = codes.astype(np.int64)
    names = _class_name_map(class_names)
    missing = sorted(int(c) for c in set(np.unique(codes).tolist()) - set(names))
    if missing:
        raise ValueError(f"class_names has no name for the label code(s) {missing}; it maps {names}.")
    ordered = list(dict.fromkeys(names[int(c)] for c in np.unique(codes)))  # class names in logit order (by code)
    if len(ordered) < 2:
        raise ValueError(f"labels hold fewer than 2 classes ({ordered}); a classifier needs at least 2.")
    y_all = np.array([ordered.index(names[int(c)]) for c in codes], dtype=np.int64)
    counts = np.bincount(y_all, minlength=len(ordered))
    if counts.min() < 2:
        raise ValueError(f"labels: every class needs at least 2 images (one to hold out, one to train on); "
                         f"counts {dict(zip(ordered, counts.tolist()))}.")
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction={heldout_fraction!r} is not allowed; use a value in (0, 1), e.g. 0.2.")
    for arg, v in (("steps", steps), ("batch_size", batch_size)):
        if int(v) != v or v < 1:
            raise ValueError(f"{arg}={v!r} is not allowed; use an integer >= 1.")
    return x, codes, names, ordered, y_all


def _frozen_perception_net(state_dict, held, train_seconds, *, x, codes, y_all, ordered, seed, path) -> PerceptionNet:
    """A PerceptionNet of the weights ``state_dict``, scored on the held-out images ``x[held]``."""
    with torch.random.fork_rng(devices=[]):  # its random initialisation is overwritten; keep the caller's RNG
        net = PerceptionCNN(len(ordered))
    net.load_state_dict(state_dict)
    freeze(net)
    hx = x[held]
    with torch.no_grad(), _one_thread():
        pred = net(torch.from_numpy(np.ascontiguousarray(hx))[:, None]).argmax(dim=1).numpy()
    acc = float((pred == y_all[held]).mean())
    return PerceptionNet(net=net, class_names=tuple(ordered), heldout_images=hx.copy(), heldout_accuracy=acc,
                         heldout_labels=codes[held].copy(), n_train=int(len(x) - len(held)), seed=int(seed),
                         train_seconds=float(train_seconds), cache_path=path)


def _load_cached_net(path: Path | None, meta: dict, build, verbose: bool) -> PerceptionNet | None:
    """The net cached at ``path`` if its ``meta`` matches; None (with a RuntimeWarning if the file is damaged)."""
    def fitting(ckpt: dict) -> PerceptionNet:
        if not isinstance(ckpt, dict) or ckpt.get("meta") != meta:
            raise ValueError("its settings do not match the key it is stored under")
        return build(ckpt["state_dict"], np.asarray(ckpt["heldout_index"], dtype=np.int64), 0.0)

    out = read_cached(path, "perception net", build=fitting, stacklevel=3)  # the caller of train_perception_net
    if out is not None and verbose:
        print(f"loaded {out.name} from {path} (held-out accuracy {out.heldout_accuracy:.4f})")
    return out


def _split_and_train(x, codes, y_all, ordered, seed, heldout_fraction, steps, batch_size, lr) -> tuple:
    """Hold out a stratified part of ``x``, train a PerceptionCNN on the rest; held-out indices, state_dict, seconds."""
    held = _stratified_heldout(codes, fraction=heldout_fraction, seed=seed)
    train_mask = np.ones(len(x), dtype=bool)
    train_mask[held] = False
    x_train = torch.from_numpy(np.ascontiguousarray(x[train_mask]))[:, None]  # (N_train, 1, S, S)
    y_train = torch.from_numpy(y_all[train_mask])
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]), _one_thread():  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        net = PerceptionCNN(len(ordered))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        N = len(y_train)
        perm, pos = torch.randperm(N, generator=gen), 0
        net.train()
        for _ in range(int(steps)):
            if pos + batch_size > N and pos > 0:  # next epoch
                perm, pos = torch.randperm(N, generator=gen), 0
            b = perm[pos:pos + batch_size]
            pos += batch_size
            loss = F.cross_entropy(net(x_train[b]), y_train[b])
            optimiser_step(opt, loss)
    train_seconds = time.perf_counter() - t0
    return held, {k: v.detach().clone() for k, v in net.state_dict().items()}, train_seconds


def train_perception_net(images: np.ndarray, labels: np.ndarray | None, *, class_names: dict[int, str], seed: int = 0,
                         heldout_fraction: float = 0.2, steps: int = PERCEPTION_STEPS,
                         cache_dir: str | os.PathLike | None = None, batch_size: int = PERCEPTION_BATCH,
                         lr: float = PERCEPTION_LR, verbose: bool = False) -> PerceptionNet:
    """Train the perception classifier on labelled images; hold out a stratified part it never sees.

    Parameters
    ----------
    images : ndarray of shape (N, S, S), float in [0, 1]
        In this study: the guarded unpaired prior images only (never digit69's training or test images).
    labels : ndarray of shape (N,), int
        Label code of each image (MNIST: the digit itself).
    class_names : dict of int -> str
        Name of each label code, e.g. ``{6: "six", 9: "nine"}`` (:func:`digit_word`). Codes sharing a name
        form one class. Logits are ordered by ascending code.
    seed : int
        Seeds the held-out split, the initialisation and the batch order; the same seed and data give the
        same weights on CPU. The caller's global torch RNG is left untouched.
    heldout_fraction : float in (0, 1)
        Share of each class held out (at least one image per class, at least one left to train on).
    steps : int, >= 1
        Adam steps of ``batch_size`` images (see :data:`PERCEPTION_STEPS` for the default's accuracy).
    cache_dir : str or PathLike, optional
        Folder of the cache file ``perception_net_<sha256[:20]>.pt``, keyed by the images, labels, class names,
        every setting here and :data:`PERCEPTION_ARCH`; written atomically. A damaged file is reported with a
        ``RuntimeWarning`` naming it and replaced by a fresh training. None trains afresh.
    batch_size, lr : int >= 1, float > 0
        Minibatch size and Adam learning rate.
    verbose : bool
        Print the held-out accuracy and the training time.

    Returns
    -------
    PerceptionNet
        Frozen, with ``heldout_images``, ``heldout_labels`` and ``heldout_accuracy``.

    Raises
    ------
    ValueError
        If ``labels`` is None or of another length than ``images``; fewer than 2 classes; a class with fewer
        than 2 images; a label code with no entry in ``class_names``; ``images`` not (N, S, S) with S >= 4,
        not finite or outside [0, 1]; ``heldout_fraction`` outside (0, 1); ``steps``, ``batch_size`` < 1.
    """
    x, codes, names, ordered, y_all = _checked_inputs(images, labels, class_names, heldout_fraction, steps, batch_size)
    meta = {"arch": PERCEPTION_ARCH, "class_names": ordered, "seed": int(seed),
            "heldout_fraction": float(heldout_fraction), "steps": int(steps), "batch_size": int(batch_size),
            "lr": float(lr)}
    path = _cache_path(cache_dir, x, codes, meta, names)
    build = partial(_frozen_perception_net, x=x, codes=codes, y_all=y_all, ordered=ordered, seed=seed, path=path)
    cached = _load_cached_net(path, meta, build, verbose)
    if cached is not None:
        return cached
    held, state, seconds = _split_and_train(x, codes, y_all, ordered, seed, heldout_fraction, steps, batch_size, lr)
    out = build(state, held, seconds)
    if verbose:
        print(f"{out.name}: held-out accuracy {out.heldout_accuracy:.4f} on {len(held)} images, "
              f"trained in {seconds:.1f} s")
    if path is not None:
        atomic_torch_save({"meta": meta, "state_dict": state, "heldout_index": torch.from_numpy(held)}, path)
    return out
