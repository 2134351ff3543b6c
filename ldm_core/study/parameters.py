"""The parameters of every chapter: name, type, allowed values, default and meaning, checked before any work.

Each chapter notebook declares its parameters in the cell tagged ``parameters`` (papermill reads that cell for
``--help-notebook`` and injects overrides after it); :data:`CHAPTER_PARAMS` holds the same names with their
rules, and :func:`validate` checks a run's values against them, naming the parameter, the rule and the value,
before anything is loaded or trained. A unit test keeps each notebook's parameters cell and every
``params/*.yaml`` in step with this table, so a misspelled key or a bad value in a params file fails in
seconds, not after minutes of training.

We wrote this small checker instead of adopting a schema library (pydantic, jsonschema) because the rules are
few, the messages must speak papermill's language (``-p`` passes text, lists need ``-y`` or ``-f``), and
neither library is a dependency of the project.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Param", "ParameterError", "CHAPTER_PARAMS", "RUN_PARAMS", "validate", "describe", "defaults",
           "requirements", "parameters_cell"]

METRICS = ("psnr", "ssim", "pixel_r")
ALL_METRICS = ("psnr", "ssim", "pixel_r", "mse", "id2", "id2_within", "id10")


class ParameterError(ValueError):
    """A chapter parameter is unknown or has a bad value (the message names it, the rule and the value)."""


# ----------------------------------------------------------------------------- rules


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Param:
    """One parameter: its kind, its range or choices, its default and one line of meaning.

    kind : {"int", "float", "str", "bool", "list", "dict", "path"}
        "path" is a string naming a file or folder; the empty string means "not given".
    low, high : float, optional
        Inclusive bounds of an int or float (``low_open`` / ``high_open`` make them strict).
    choices : tuple, optional
        Allowed values of a str, or of each item of a list.
    item : Param, optional
        Rule of each item of a list.
    min_len, max_len : int
        Length bounds of a list.
    check : callable, optional
        ``check(value) -> None or str``: further rule; the string says what is wrong.
    """

    kind: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    item: "Param | None" = None
    min_len: int = 0
    max_len: int | None = None
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    def rule(self) -> str:
        """The rule in words, e.g. "an int >= 1" or "a list of 1 or more numbers in (0, 1)"."""
        if self.kind in ("int", "float"):
            noun = "an int" if self.kind == "int" else "a number"
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
            return noun + (" " + " and ".join(bounds) if bounds else "")
        if self.kind == "str":
            return f"one of {list(self.choices)}" if self.choices else "a string"
        if self.kind == "path":
            return "a path (string; empty for the default)"
        if self.kind == "bool":
            return "True or False"
        if self.kind == "list":
            size = f"{self.min_len} or more" if self.max_len is None else (
                f"exactly {self.min_len}" if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}")
            inner = self.item.rule() if self.item else "values"
            return f"a list of {size} items, each {inner}"
        if self.kind == "dict":
            return "a mapping (dict)"
        raise AssertionError(self.kind)

    def problem(self, value: Any) -> str | None:
        """None when ``value`` follows the rule, else what is wrong with it."""
        k = self.kind
        if k == "int" and not _is_int(value):
            return "is not an int"
        if k == "float" and not _is_number(value):
            return "is not a finite number"
        if k in ("str", "path") and not isinstance(value, str):
            return "is not a string"
        if k == "bool" and not isinstance(value, bool):
            return "is not True or False"
        if k == "list" and not isinstance(value, (list, tuple)):
            return "is not a list"
        if k == "dict" and not isinstance(value, dict):
            return "is not a mapping"
        if k in ("int", "float"):
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                return "is out of range"
            if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
                return "is out of range"
        if k == "str" and self.choices and value not in self.choices:
            return "is not an allowed value"
        if k == "list":
            if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
                return f"has {len(value)} items"
            if self.item is not None:
                for i, v in enumerate(value):
                    p = self.item.problem(v)
                    if p:
                        return f"item {i} ({v!r}) {p}"
        if self.check is not None:
            return self.check(value)
        return None


def Int(default: int, doc: str, *, low=None, high=None, **kw) -> Param:
    return Param("int", default, doc, low=low, high=high, **kw)


def Float(default: float, doc: str, *, low=None, high=None, **kw) -> Param:
    return Param("float", default, doc, low=low, high=high, **kw)


def Str(default: str, doc: str, *, choices=None, **kw) -> Param:
    return Param("str", default, doc, choices=tuple(choices) if choices else None, **kw)


def Bool(default: bool, doc: str) -> Param:
    return Param("bool", default, doc)


def Path(default: str, doc: str) -> Param:
    return Param("path", default, doc)


def List(default: list, doc: str, item: Param, *, min_len: int = 1, max_len: int | None = None, **kw) -> Param:
    return Param("list", list(default), doc, item=item, min_len=min_len, max_len=max_len, **kw)


def Dict(default: dict, doc: str, *, check=None) -> Param:
    return Param("dict", dict(default), doc, check=check)


def _item(kind: str, **kw) -> Param:
    return Param(kind, None, "", **kw)


# ----------------------------------------------------------------------------- checks of structured values


def _unique(values) -> str | None:
    return None if len(set(map(repr, values))) == len(values) else "has repeated values"


def _widths(values) -> str | None:
    bad = [v for v in values if v % 8]
    return f"has widths {bad} not divisible by 8 (GroupNorm with 8 groups)" if bad else None


def _metric_targets(d: dict) -> str | None:
    bad = sorted(set(d) - set(ALL_METRICS))
    if bad:
        return f"names unknown metric(s) {bad}; allowed {list(ALL_METRICS)}"
    nonnum = [k for k, v in d.items() if not _is_number(v)]
    return f"has non-numeric target(s) for {nonnum}" if nonnum else None


SAMPLING_KEYS = ("n_samples", "guidance", "steps", "sampler")


def _candidates(d: dict) -> str | None:
    if not d:
        return "is empty: give at least one candidate"
    for name, changes in d.items():
        if not isinstance(changes, dict):
            return f"entry {name!r} is not a mapping of changes"
        n = changes.get("n_samples", 1)
        if not _is_int(n) or n < 1:
            return f"entry {name!r} has n_samples={n!r}; need an int >= 1"
    return None


# ----------------------------------------------------------------------------- shared blocks

# Where a run writes and reads (set by the study runner; see ldm_core.study.chapter). Every chapter has them.
RUN_PARAMS = {
    "results_root": Path("", "folder to write <chapter>/metrics.json into; empty: a scratch folder runs/<chapter>/<time>-<hash>/ (results/ only when publishing)"),
    "inputs_root": Path("", "folder holding earlier chapters' results; empty: results_root if set, else the published results/"),
    "cache_root": Path("", "folder of the run cache (trained models, keyed by settings); empty: <project>/cache"),
    "publish": Bool(False, "write into the published results/ (the study runner sets it; needs profile)"),
    "profile": Str("", "params profile this run claims to use, checked when publishing", choices=("", "full", "quick")),
    "publish_unprofiled": Bool(False, "allow publishing values that differ from the profile's (recorded in provenance)"),
    "workers": Int(0, "train this chapter's runs on a local Dask cluster of this many workers (0: in this process)", low=0),
    "scheduler": Str("", "address of a running Dask scheduler to send the runs to (empty: none)"),
}

def _class_names(d: dict) -> str | None:
    """Keys are label codes (papermill passes them as text: "21"), values non-empty names."""
    bad = [k for k in d if isinstance(k, bool) or not (isinstance(k, int) or (isinstance(k, str)
                                                                               and k.strip().lstrip("-").isdigit()))]
    if bad:
        return f"has key(s) {bad} that are not integer label codes"
    empty = [k for k, v in d.items() if not isinstance(v, str) or not v.strip()]
    return f"has empty or non-text name(s) for code(s) {empty}" if empty else None


DATA = {
    "data_dir": Path("", "folder (or file) holding digit69_28x28.mat; empty: LDM_DATA_DIR, then the download cache"),
    "class_names": Dict({}, "label code -> class name; empty: the file's labelNames, six/nine for digit69's codes 1/2, "
                        "else 'class <code>'", check=_class_names),
    "val_fraction": Float(0.2, "share of training trials held out for selection, stratified by digit", low=0, high=1,
                          low_open=True, high_open=True),
    "split_seed": Int(0, "seed of the validation split", low=0),
}

STATS = {
    "n_boot": Int(2000, "bootstrap resamples for 95% CIs over images", low=100),
    "n_perm": Int(1000, "permutations for identification p-values of each test run (0 skips)", low=0),
}

RECIPE = {
    "n_seeds": Int(3, "training seeds of the final comparison (sweeps use seed 0)", low=1),
    "lr": Float(5e-4, "AdamW learning rate of the align and diffusion stages", low=0, low_open=True),
    "epochs": Int(150, "diffusion-stage epochs", low=1),
    "vae_epochs": Int(100, "VAE pretraining epochs", low=1),
    "align_epochs": Int(100, "epochs aligning the fMRI encoder to VAE latents", low=1),
    "batch_size": Int(8, "trials per optimiser step, every stage", low=1),
    "unet_channels": List([32, 64], "U-Net widths per resolution level, each divisible by 8", _item("int", low=8),
                          check=_widths),
    "prediction": Str("x0", "what the U-Net predicts", choices=("x0", "eps")),
    "steps": Int(50, "DDIM steps at reconstruction", low=1, high=1000),
    "n_samples": Int(1, "samples averaged per trial at reconstruction", low=1),
}

SELECT = {"select_metric": Str("ssim", "validation metric that ranks variants", choices=METRICS)}


def _pick(block: dict, *names: str, **changes) -> dict:
    """``block`` restricted to ``names`` (all when none), with some defaults or docs replaced."""
    out = {n: block[n] for n in (names or block)}
    for n, kw in changes.items():
        p = out[n]
        out[n] = Param(**{**{f: getattr(p, f) for f in p.__dataclass_fields__}, **kw})
    return out


# ----------------------------------------------------------------------------- the chapters

CHAPTER_PARAMS: dict[str, dict[str, Param]] = {}
REQUIRES: dict[str, tuple[str, ...]] = {}


def _chapter(name: str, params: dict, *, requires: tuple[str, ...] = ()) -> None:
    CHAPTER_PARAMS[name] = {**params, **RUN_PARAMS}
    REQUIRES[name] = requires


_chapter("00_data_and_metrics", {
    "data_dir": DATA["data_dir"],
    "class_names": DATA["class_names"],
    "seed": Int(0, "seed of the validation split, the uniform-noise floor, CV folds, bootstraps and permutations", low=0),
    "val_fraction": DATA["val_fraction"],
    "cv_folds": Int(5, "K of the K-fold CV that picks ridge alpha / PLS components inside the training trials", low=2),
    **STATS,
})

_chapter("01_diagnostics", {
    **DATA,
    "n_seeds": Int(3, "training seeds per model", low=1),
    "epochs": Int(50, "training epochs of every model in this chapter (the report trained 50)", low=1),
    "batch_size": Int(4, "trials per step (the report used 4)", low=1),
    "lr": Float(1e-4, "AdamW learning rate of every model in this chapter", low=0, low_open=True),
    "vae_epochs": Int(100, "VAE pretraining epochs where the VAE decoder is trained", low=1),
    "unet_channels": RECIPE["unet_channels"],
    "steps": Int(50, "reverse steps at reconstruction (the original sampled 50)", low=1, high=1000),
    "longer_epochs": Int(200, "epochs of the fully fixed model trained longer (one seed), more than epochs", low=2),
    "probe_timesteps": List([20, 100, 250, 500, 750, 999], "timesteps at which the fully fixed model's x0 estimate "
                            "is probed on validation latents", _item("int", low=0, high=999), check=_unique),
    **STATS,
    "n_perm_decoding": Int(1000, "permutations for the class-decoding p-value", low=0),
}, requires=("00_data_and_metrics",))

_chapter("02_unet_fix", {
    **DATA, **RECIPE,
    "lr_grid": List([1e-5, 1e-4, 5e-4, 1e-3], "learning rates of the sensitivity sweep (seed 0, validation only)",
                    _item("float", low=0, low_open=True), check=_unique),
    "original_epochs": Int(50, "epochs of the original model (the report trained 50)", low=1),
    **STATS,
}, requires=("00_data_and_metrics",))

_chapter("03_loss_function", {
    **DATA, **RECIPE,
    "w_perceptual": Float(0.1, "weight of the perceptual term (report: 0.1)", low=0, low_open=True),
    "w_ssim": Float(0.01, "weight of the 1 - SSIM term (report: 0.01)", low=0, low_open=True),
    "w_adv": Float(0.01, "weight of the adversarial (generator) term added to the report's mix", low=0, low_open=True),
    "adv_kind": Str("hinge", "form of the adversarial loss", choices=("hinge", "nonsaturating")),
    "img_loss_t_frac": Float(0.5, "image terms use batch rows whose t lies in this first fraction of the steps",
                             low=0, high=1, low_open=True),
    "perceptual_net": Str("digits", "feature network: digits (self-trained CNN) or vgg16:/path/to/state_dict.pth",
                          check=lambda v: None if v == "digits" or v.startswith("vgg16:") else
                          "must be 'digits' or 'vgg16:<path of a local VGG16 state_dict>'"),
    **SELECT, **STATS,
}, requires=("00_data_and_metrics", "02_unet_fix"))  # 02: its validation-best learning rate, named on the page

_chapter("04_fmri_encoder", {
    **DATA, **RECIPE,
    "weight_decay": Float(1.0, "AdamW weight decay of the weight-decay variant, every stage", low=0, low_open=True),
    "encoder_tokens": Int(16, "voxel groups (tokens) of the attention encoder", low=1),
    "brain_aware_dropout": Float(0.1, "dropout inside the attention encoder's transformer layers", low=0, high=1,
                                 high_open=True),
    **SELECT, **STATS,
}, requires=("00_data_and_metrics",))

_chapter("05_conditioning_vae", {
    **DATA, **RECIPE,
    "conditionings": List(["add", "cross_attn"], "conditionings compared with the base film, each at every block",
                          _item("str", choices=("add", "cross_attn")), check=_unique),
    "cfg_dropout": Float(0.1, "probability of replacing a training trial's fMRI by the null token", low=0, high=1,
                         high_open=True),
    "guidance_grid": List([1.0, 1.5, 2.0, 3.0], "guidance scales tried on validation; must include 1 (no guidance)",
                          _item("float", low=0),
                          check=lambda v: None if 1.0 in v else "must include 1.0 (no guidance)"),
    "vae_kl_weight": Float(1e-3, "KL weight of the base VAE, per latent element", low=0),
    "kl_grid": List([1e-2], "other KL weights compared with the base one, each a separate VAE", _item("float", low=0),
                    check=_unique),
    **SELECT, **STATS,
}, requires=("00_data_and_metrics",))

_chapter("06_augmentation_multiscale", {
    **DATA, **RECIPE,
    "fmri_noise_grid": List([0.1, 0.3, 1.0], "std of noise added to z-scored training fMRI (training-std units)",
                            _item("float", low=0, low_open=True), check=_unique),
    "voxel_dropout_grid": List([0.2], "probability of zeroing each voxel of a training trial",
                               _item("float", low=0, high=1, low_open=True, high_open=True), check=_unique),
    "augment_degrees": Float(10.0, "max rotation of the VAE image jitter, in degrees", low=0),
    "augment_translate": Float(0.1, "max shift of the VAE image jitter per axis, as a fraction of the side", low=0,
                               high=0.5),
    "w_coarse": Float(0.5, "weight of the multi-scale head's half-resolution loss", low=0, low_open=True),
    **SELECT, **STATS,
}, requires=("00_data_and_metrics",))


_chapter("07_image_prior", {
    **DATA,
    "prior_source": Str("auto", "unpaired images, found on their own (never via data_dir): auto (mnist_6_9.npz in "
                        "LDM_DATA_DIR or the cache, else torchvision MNIST), npz, torchvision, or the path of any "
                        "image .npz (key images, optional labels)",
                        check=lambda v: None if v in ("auto", "npz", "torchvision") or v.endswith(".npz")
                        else "is neither auto, npz, torchvision nor the path of a .npz file"),
    "leak_threshold": Float(0.9, "drop prior images whose shifted pixel r with a test or validation stimulus exceeds this",
                            low=0.5, high=0.9),
    "leak_max_shift": Int(2, "largest shift (pixels, each direction) the leakage guard tries", low=0, high=4),
    "leak_sensitivity": List([0.8, 0.95], "other guard thresholds at which the selected model is retrained and scored "
                             "(exploratory; seed 0, fitting trials)", _item("float", low=0.5, high=1, high_open=True),
                             min_len=0, check=_unique),
    "prior_holdout_fraction": Float(0.05, "share of the unpaired images held out from a probe VAE to test whether the "
                                    "prior fits the stimuli", low=0, high=0.5, low_open=True),
    "fit_probe_steps": Int(0, "optimiser steps of the probe VAE of that test; 0: the prior's vae_steps", low=0),
    "fit_margin_db": Float(3.0, "the prior does not fit when the stimuli's round-trip PSNR is below unseen prior "
                           "images' by more than this (whole 95% CI, dB)", low=0),
    "fit_margin_ssim": Float(0.1, "the prior does not fit either when their round-trip SSIM is below by more than this "
                             "(whole 95% CI)", low=0),
    "latent_dim": Int(16, "numbers per image in the prior's VAE latent", low=2),
    "kl_weight": Float(1.0, "beta of the VAE's per-image ELBO (0: a plain autoencoder)", low=0),
    "vae_steps": Int(1000, "VAE optimiser steps (batch 64)", low=1),
    "diffusion_steps": Int(8000, "latent-diffusion optimiser steps (batch 256)", low=1),
    "short_diffusion_steps": Int(500, "the small budget at which eps and x0 prediction are compared", low=1),
    "prediction": Str("x0", "what the prior's denoiser predicts", choices=("x0", "eps")),
    "n_voxels": Int(800, "voxels (best encoding R²) the fMRI -> latent map reads in the screen; 0: all", low=0),
    "n_voxels_grid": List([200, 400, 800, 1600, 0], "voxel counts screened on validation (0: all)", _item("int", low=0),
                          check=_unique),
    "map_kinds": List(["ridge", "pls", "mlp"], "fMRI -> latent maps screened on validation",
                      _item("str", choices=("ridge", "pls", "mlp")), check=_unique),
    "strengths": List([0.2, 0.3, 0.5], "refinement strengths screened (fraction of the diffusion steps)",
                      _item("float", low=0, high=1, low_open=True, high_open=True), check=_unique),
    "noise_scales": List([0.5, 1.0], "multipliers of the calibrated observation noise screened",
                         _item("float", low=0, low_open=True), check=_unique),
    "guidance_grid": List([1.0, 2.0], "guidance scales screened for the chosen decoding; must include 1",
                          _item("float", low=0), check=lambda v: None if 1.0 in v else "must include 1.0"),
    "n_samples": Int(16, "samples per trial averaged by the refinement and from-noise decoders", low=2),
    "decode_steps": Int(100, "DDIM steps over the whole schedule at decoding", low=1, high=1000),
    "prior_sizes": List([0, 300, 1000], "unpaired-image counts of the prior-size curve (all available are added)",
                        _item("int", low=0), check=_unique),
    "n_seeds": Int(5, "seeds of the final model (each its own pretraining); screens use seed 0", low=1),
    "spatial_vae_epochs": Int(60, "epochs of the spatial 8x8x8 VAE behind the latent-ridge baseline (as in chapter 08)",
                              low=1),
    **SELECT,
    "targets": Dict({"psnr": 17.0, "ssim": 0.75, "pixel_r": 0.88, "id2": 1.0, "id2_within": 0.95},
                    "the project's targets for the best model (test, seeds pooled): metric -> minimum",
                    check=_metric_targets),
    **STATS,
}, requires=("00_data_and_metrics",))

_chapter("08_benchmarks", {
    **DATA,
    "n_seeds": Int(5, "training seeds of the selected spatial LDM on the test trials; screens use seed 0", low=1),
    "lr": Float(5e-4, "AdamW learning rate of the align and diffusion stages (main recipe)", low=0, low_open=True),
    "epochs": Int(100, "diffusion-stage epochs (main recipe)", low=1),
    "vae_epochs": Int(60, "VAE pretraining epochs (main recipe)", low=1),
    "align_epochs": Int(60, "epochs aligning the fMRI encoder to VAE latents (main recipe)", low=1),
    "batch_size": Int(16, "trials per optimiser step, every stage (main recipe)", low=1),
    "unet_channels": RECIPE["unet_channels"],
    "candidates": Dict({"x0": {"prediction": "x0"}, "x0, mean of 8 samples": {"prediction": "x0", "n_samples": 8},
                        "eps": {"prediction": "eps"}, "eps, mean of 8 samples": {"prediction": "eps", "n_samples": 8}},
                       "spatial LDM candidates: name -> LDMConfig fields and/or sampling keys (n_samples, guidance, steps, sampler)",
                       check=_candidates),
    **SELECT,
    "steps": Int(50, "DDIM steps at reconstruction, for candidates that set none", low=1, high=1000),
    "n_show_samples": Int(4, "individual samples per trial in the sampling figure", low=2),
    "n_spread_samples": Int(8, "samples per validation trial drawn to measure how much a decoder's samples differ",
                            low=2),
    "sweep_lrs": List([1e-5, 1e-4, 1e-3], "week-1 sweep: learning rates", _item("float", low=0, low_open=True),
                      check=_unique),
    "sweep_batch_sizes": List([2, 4, 8], "week-1 sweep: batch sizes", _item("int", low=1), check=_unique),
    "sweep_encoder_dims": List([64, 128, 256], "week-1 sweep: the report's latent dimensions, read as encoder_dim",
                               _item("int", low=1), check=_unique),
    "sweep_epochs": Int(15, "diffusion epochs of each sweep training (a short recipe)", low=1),
    "sweep_vae_epochs": Int(20, "VAE epochs of each sweep training", low=1),
    "sweep_align_epochs": Int(10, "alignment epochs of each sweep training", low=1),
    "scaling_sizes": List([10, 20, 45], "fitting-trial counts of the learning curves (the full set is added)",
                          _item("int", low=6), check=_unique),
    "scaling_draws": Int(2, "stratified draws per size", low=1),
    "scaling_epochs": Int(40, "diffusion epochs of the spatial LDM at the full size (smaller sets: as many steps)", low=1),
    "scaling_vae_epochs": Int(30, "VAE epochs at the full size (scaled likewise)", low=1),
    "scaling_align_epochs": Int(20, "alignment epochs at the full size (scaled likewise)", low=1),
    "recon_steps_grid": List([10, 50, 250], "DDIM step counts timed on the test trials", _item("int", low=1, high=1000)),
    "targets": Dict({"psnr": 17.0, "ssim": 0.75, "pixel_r": 0.88, "id2": 1.0, "id2_within": 0.95},
                    "the project's targets for the best model (test, seeds pooled): metric -> minimum",
                    check=_metric_targets),
    "n_boot": Int(10000, "bootstrap resamples for 95% CIs over images", low=100),
    "n_perm": Int(1000, "permutations for identification p-values on the test trials", low=1),
}, requires=("00_data_and_metrics", "01_diagnostics", "07_image_prior"))

_chapter("09_conclusions", {
    "n_boot": Int(2000, "bootstrap resamples for the CIs of cross-chapter differences (claim 11a)", low=100),
}, requires=("00_data_and_metrics", "01_diagnostics", "02_unet_fix", "03_loss_function", "04_fmri_encoder",
             "05_conditioning_vae", "06_augmentation_multiscale", "07_image_prior", "08_benchmarks"))

_chapter("10_executive_summary", {}, requires=("00_data_and_metrics", "01_diagnostics", "07_image_prior",
                                               "08_benchmarks", "09_conclusions"))

def parameters_cell(chapter: str) -> str:
    """The source of the notebook's ``parameters`` cell for ``chapter``, generated from its table.

    The run plumbing (:data:`RUN_PARAMS`: where results go and are read, the cache, publishing, workers) is not
    declared there: the study runner sets it, and ``papermill -p results_root ...`` passes it all the same.
    """
    lines = [f"# Parameters (papermill overrides these; see params/{chapter}.*.yaml)"]
    for name, p in CHAPTER_PARAMS[chapter].items():
        if name in RUN_PARAMS:
            continue
        ann = {"path": "str"}.get(p.kind, p.kind)
        lines.append(f"{name}: {ann} = {p.default!r}  # {p.doc}")
    lines.append(f"# Run plumbing, set by the study runner or with papermill -p: {', '.join(RUN_PARAMS)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- validation


def defaults(chapter: str) -> dict:
    """Every parameter of ``chapter`` with its default value."""
    return {n: p.default for n, p in _spec(chapter).items()}


def requirements(chapter: str) -> tuple[str, ...]:
    """The earlier chapters whose results ``chapter`` reads."""
    _spec(chapter)
    return REQUIRES[chapter]


def describe(chapter: str) -> dict[str, str]:
    """Parameter name -> "rule: meaning", for help texts."""
    return {n: f"{p.rule()}: {p.doc}" for n, p in _spec(chapter).items()}


def _spec(chapter: str) -> dict[str, Param]:
    if chapter not in CHAPTER_PARAMS:
        raise ParameterError(f"unknown chapter {chapter!r}; chapters with parameters: {sorted(CHAPTER_PARAMS)}")
    return CHAPTER_PARAMS[chapter]


def _hint(value: Any, p: Param) -> str:
    if isinstance(value, str) and p.kind in ("list", "dict"):
        return (" papermill's -p passes text: give lists and mappings as YAML, e.g. "
                f"-y '{{name}}: {value}' or in a -f params file.")
    if isinstance(value, str) and p.kind in ("int", "float"):
        return " (a string: check for a typo in the number)"
    return ""


def validate(chapter: str, values: dict) -> dict:
    """Check ``values`` against the rules of ``chapter``; return them with ints widened to float where a number is asked.

    Parameters
    ----------
    chapter : str
        A key of :data:`CHAPTER_PARAMS`.
    values : dict
        Parameter name -> value. Missing names take their defaults.

    Returns
    -------
    dict
        Every parameter of the chapter, in table order.

    Raises
    ------
    ParameterError
        On an unknown name (with the closest known names) or a value that breaks its rule (with the rule, the
        value and its type). All problems are reported at once.
    """
    spec = _spec(chapter)
    unknown = sorted(set(values) - set(spec))
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(spec), n=3)
        problems.append(f"unknown parameter {name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
    out = {}
    for name, p in spec.items():
        value = values.get(name, p.default)
        if isinstance(value, tuple):
            value = list(value)
        bad = p.problem(value)
        if bad:
            problems.append(f"parameter {name!r} must be {p.rule()}; got {value!r} ({type(value).__name__}), which "
                            f"{bad}.{_hint(value, p).replace('{name}', name)}")
            continue
        out[name] = float(value) if p.kind == "float" else value
    if problems:
        raise ParameterError(f"chapter {chapter}: " + ("; ".join(problems) if len(problems) == 1 else
                                                       "\n  - " + "\n  - ".join(problems))
                             + f"\nIts parameters: {', '.join(spec)} (see papermill --help-notebook).")
    return out
