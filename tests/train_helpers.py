"""Shared helpers of the training tests (test_train, test_checkpoint, test_losses, test_experiment, ...).

Tiny configurations and data that train in a second on one CPU thread; not a test module itself.
"""
import math

import numpy as np
import torch
from torch import nn

from ldm_core.config import TrainConfig, get_preset
from ldm_core.train import fit

N, V, S = 8, 32, 28  # trials, voxels, image side

# the experiment tests' tiny model and recipe
TINY = dict(encoder_hidden=(16,), encoder_dim=16, vae="original", unet_channels=(8, 16), unet_attention=False,
            n_train_steps=50)
TRAIN = dict(stages="progressive", epochs=1, vae_epochs=1, align_epochs=1, batch_size=8, device="cpu")


def blobs(n: int = N, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """fMRI (n, V) float32 z-scored-like, images (n, S, S) float32 in [0, 1]: one Gaussian blob each."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(8, 20, (n, 2))
    yy, xx = np.mgrid[:S, :S]
    images = np.exp(-((yy - centre[:, :1, None]) ** 2 + (xx - centre[:, 1:, None]) ** 2) / 20.0)
    fmri = rng.standard_normal((n, V)) + np.repeat(centre / 10.0, V // 2, axis=1)
    fmri = (fmri - fmri.mean(0)) / fmri.std(0)
    return fmri.astype(np.float32), images.astype(np.float32)


def tiny_cfg(preset: str = "fixed", **overrides):
    base = dict(encoder_hidden=(16,), encoder_dim=16, n_train_steps=50)
    if preset == "fixed":
        base.update(vae="original", unet_channels=(8, 16), unet_attention=False)
    base.update(overrides)
    return get_preset(preset, **base)


def train_cfg(**overrides) -> TrainConfig:
    base = dict(epochs=1, vae_epochs=1, align_epochs=1, batch_size=4, progress=False, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


def run(stages="progressive", *, ldm=None, **overrides):
    """fit on 6 training and 2 validation trials of ``blobs()``."""
    fmri, images = blobs()
    ldm = ldm or tiny_cfg("original" if stages == "original" else "fixed")
    return fit(fmri[:6], images[:6], fmri_val=fmri[6:], images_val=images[6:], ldm_cfg=ldm,
               train_cfg=train_cfg(stages=stages, **overrides))


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def histories_equal(a: dict, b: dict) -> bool:
    """Equal up to NaN == NaN, ignoring the wall-clock column."""
    a, b = ({k: v for k, v in h.items() if k != "epoch_time_s"} for h in (a, b))
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
                                       for x, y in zip(a[k], b[k])) for k in a)


class TinyFeatureNet(nn.Module):
    """Stand-in perceptual feature net (two conv maps), so tests skip training the digits CNN."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        f = torch.relu(self.conv(x))
        return [f, torch.nn.functional.avg_pool2d(f, 2)]


def small_study_data(folder):
    """20 training trials (16 fitting, 4 validation) and 4 test trials of 28x28 synthetic digits, 24 voxels."""
    from ldm_core.data import write_digit69_mat
    from tests.synthetic_data import make_synthetic_digit69
    from ldm_core.splits import prepare_data

    torch.set_num_threads(1)
    arr = make_synthetic_digit69(n_train=20, n_test=4, n_voxels=24, image_size=28)
    write_digit69_mat(folder / "digit69_28x28.mat", arr)
    return prepare_data(str(folder), val_fraction=0.2, verbose=0)


BAR_NAMES = {3: "vertical", 7: "horizontal"}


def bars(n_per_class=40, size=16, seed=0):
    """Two classes of (size x size) images in [0, 1]: a 2-pixel vertical bar (code 3) or horizontal bar (code 7)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for code in (3, 7):
        for _ in range(n_per_class):
            x = 0.1 * rng.random((size, size))
            p = rng.integers(2, size - 3)
            if code == 3:
                x[:, p:p + 2] = 1.0
            else:
                x[p:p + 2, :] = 1.0
            images.append(x)
            labels.append(code)
    return np.array(images, dtype=np.float32), np.array(labels)
