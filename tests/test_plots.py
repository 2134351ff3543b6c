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
