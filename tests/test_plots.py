"""Smoke tests of the figures added for the benchmarks chapter (axes labelled, best cell marked)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ldm_core import plots  # noqa: E402


def test_sweep_heatmaps_one_panel_per_value_and_best_outlined():
    scores = {(lr, bs, d): lr * bs + d for lr in (0.1, 1.0) for bs in (2, 4) for d in (8, 16)}
    scores[(0.1, 2, 8)] = np.nan  # a missing cell stays blank
    fig = plots.sweep_heatmaps(scores, rows=[0.1, 1.0], cols=[2, 4], panels=[8, 16], row_label="lr",
                               col_label="batch", panel_label="dim", value_label="score")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["dim = 8", "dim = 16"]
    assert panels[0].get_ylabel() == "lr" and panels[0].get_xlabel() == "batch"
    assert len(panels[1].patches) == 1 and not panels[0].patches  # best (1.0, 4, 16) is in the second panel
    plt.close(fig)


def test_scaling_plot_labels_and_band():
    pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    curves = {"a": {10: {"psnr": pt}, 20: {"psnr": pt}}, "b": {10: {"psnr": pt}, 20: {"psnr": pt}}}
    fig = plots.scaling_plot(curves, metrics=("psnr",), bands={"psnr": (0.0, 2.0)}, band_label="claim")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "PSNR (dB)" and ax.get_xscale() == "log"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"claim", "a", "b"}
    plt.close(fig)


def test_ladder_plot_one_colour_per_group_and_references_in_the_legend():
    pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    results = {n: {m: pt for m in ("psnr", "ssim", "pixel_r")} for n in ("a", "b", "c")}
    fig = plots.ladder_plot(results, groups={"a": "fixes", "b": "fixes", "c": "leave-one-out"},
                            references={"noise": {"psnr": 0.2, "ssim": 0.1, "pixel_r": 0.0}})
    axes = fig.axes
    assert [ax.get_xlabel() for ax in axes] == ["PSNR (dB)", "SSIM", "pixel r"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["a", "b", "c"]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"fixes", "leave-one-out", "noise"}
    plt.close(fig)


def test_sampler_diagnosis_and_neighbour_plots_label_their_axes():
    import pandas as pd

    from ldm_core.diagnostics import SamplerStudy

    t = [10, 500, 999]
    errors = pd.DataFrame({"x0 error, model": [0.1, 2.0, 300.0], "x0 error, Gaussian denoiser": [0.1, 0.9, 1.0]},
                          index=t)
    run = {"t": np.array(t[::-1]), "x_t_rms": np.array([1.0, 2.0, 5.0]), "forward_rms": np.ones(3)}
    study = SamplerStudy(pd.DataFrame(), {"m": errors, "n": errors}, {("m", "DDIM"): run, ("m", "re-noising"): run,
                                                                       ("n", "DDIM"): run})
    fig = plots.sampler_diagnosis_plot(study)
    left, right = fig.axes[:2]
    assert left.get_yscale() == "log" and right.get_ylabel().startswith("RMS of x_t") and right.xaxis_inverted()
    assert len(right.lines) == 4  # the forward process and three runs
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["x0 error: m", "x0 error: n", "x0 error: exact Gaussian denoiser", "x_t of the forward process",
                     "x_t: DDIM", "x_t: re-noising"]
    plt.close(fig)
    curve = {1: {"adjacent": 0.3, "random": 0.05}, 10: {"adjacent": 0.1, "random": 0.05}}
    fig = plots.neighbour_correlation_plot(curve, marks={"one token": 5})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "mean r over trials"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"voxel pairs this far apart", "random voxel pairs",
                                                                  "one token"}
    plt.close(fig)


def test_a_row_of_panels_shares_one_x_label_and_one_panel_keeps_its_own():
    pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    curves = {"a": {10: {m: pt for m in ("psnr", "ssim")}, 20: {m: pt for m in ("psnr", "ssim")}}}
    fig = plots.scaling_plot(curves, metrics=("psnr", "ssim"), xlabel="prior images")
    assert [ax.get_xlabel() for ax in fig.axes] == ["", ""] and fig.get_supxlabel() == "prior images"
    plt.close(fig)
    fig = plots.sensitivity_plot([1, 2], {"PSNR (dB)": [1.0, 2.0]}, xlabel="strength", log_x=False)
    assert fig.axes[0].get_xlabel() == "strength" and fig.get_supxlabel() == ""
    plt.close(fig)
