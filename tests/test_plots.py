"""The figures: axes labelled, each value drawn at its own x, tick labels that never overlap, empty input as a note."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ldm_core import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


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
    fig = plots.sensitivity_plot({"PSNR (dB)": {1: 1.0, 2: 2.0}}, xlabel="strength", log_x=False)
    assert fig.axes[0].get_xlabel() == "strength" and fig.get_supxlabel() == ""
    plt.close(fig)


# ----------------------------------------------------------------------------- keyed data: each value at its own x


def _line_xy(ax):
    line = ax.lines[0]
    return list(np.asarray(line.get_xdata(), dtype=float)), list(np.asarray(line.get_ydata(), dtype=float))


def test_sensitivity_plot_draws_each_score_at_its_own_x_whatever_the_order():
    # chapter 07 once drew the scores of (800, 200, 400, 1600, all) at the positions (200, 400, 800, 1600, 3092)
    scores = {800: 8.0, 200: 2.0, 400: 4.0, 1600: 16.0, 3092: 30.92}
    fig = plots.sensitivity_plot({"PSNR (dB)": scores, "SSIM": {k: 2 * v for k, v in scores.items()}},
                                 xlabel="voxels read", ylabel_by_series={"SSIM": "SSIM (validation)"})
    left, right = fig.axes[:2]
    assert _line_xy(left) == ([200.0, 400.0, 800.0, 1600.0, 3092.0], [2.0, 4.0, 8.0, 16.0, 30.92])
    assert _line_xy(right)[1] == [4.0, 8.0, 16.0, 32.0, 61.84]
    assert left.get_ylabel() == "PSNR (dB)" and right.get_ylabel() == "SSIM (validation)"
    assert left.get_xscale() == "log" and fig.get_supxlabel() == "voxels read"
    plt.close(fig)


def test_sensitivity_plot_refuses_what_could_misplace_a_point():
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=r"series 'SSIM' has no points"):
        plots.sensitivity_plot({"PSNR (dB)": {1: 1.0}, "SSIM": {}}, xlabel="x")
    with pytest.raises(ValueError, match=r"series 'PSNR \(dB\)': x value nan is not finite"):
        plots.sensitivity_plot({"PSNR (dB)": {1: 1.0, float("nan"): 2.0}}, xlabel="x", log_x=False)
    with pytest.raises(ValueError, match=r"series 'r': x value 0 is <= 0 and cannot be drawn on a log axis"):
        plots.sensitivity_plot({"r": {0: 1.0, 1: 2.0}}, xlabel="x")
    with pytest.raises(ValueError, match=r"series 'r': x value '10' occurs twice"):
        plots.sensitivity_plot({"r": {10: 1.0, "10": 2.0}}, xlabel="x")
    with pytest.raises(ValueError, match=r"series 'r': x value 'all' is not a number"):
        plots.sensitivity_plot({"r": {"all": 1.0}}, xlabel="x")
    with pytest.raises(ValueError, match=r"series 'r': expected a mapping \{x: value\}, got list"):
        plots.sensitivity_plot({"r": [1.0, 2.0]}, xlabel="x")
    with pytest.raises(ValueError, match=r"mark 'used' at x = 0 cannot be drawn on a log axis"):
        plots.sensitivity_plot({"r": {1: 1.0}}, xlabel="x", marks={"used": 0})
    with pytest.raises(TypeError, match=r"the separate list of x values is gone"):
        plots.sensitivity_plot([1, 2], xlabel="x")
    # the old call, a list of x values beside lists of scores, no longer passes silently
    with pytest.raises(TypeError):
        plots.sensitivity_plot([1, 2], {"r": [1.0, 2.0]}, xlabel="x")
    assert plt.get_fignums() == before  # nothing half drawn


def test_scaling_plot_draws_each_size_at_its_own_x_with_keys_in_any_order_or_as_strings():
    def pt(m):
        return {"mean": m, "ci_low": m - 1, "ci_high": m + 2}

    curve = {72: {"psnr": pt(72.0)}, 10: {"psnr": pt(10.0)}, 45: {"psnr": pt(45.0)}, 20: {"psnr": pt(20.0)}}
    as_json = {str(k): v for k, v in curve.items()}  # a metrics.json read back
    for c in (curve, as_json):
        fig = plots.scaling_plot({"m": c}, metrics=("psnr",))
        ax = fig.axes[0]
        data_line, (lower, upper) = ax.containers[0].lines[0], ax.containers[0].lines[1]
        assert list(data_line.get_xdata()) == [10.0, 20.0, 45.0, 72.0]
        assert list(data_line.get_ydata()) == [10.0, 20.0, 45.0, 72.0]
        assert list(lower.get_ydata()) == [9.0, 19.0, 44.0, 71.0]
        assert list(upper.get_ydata()) == [12.0, 22.0, 47.0, 74.0]
        plt.close(fig)
    # a size without the metric is a gap, not a shifted point; a size of 0 puts the axis on a linear scale
    fig = plots.scaling_plot({"m": {0: {"psnr": pt(1.0)}, 300: {"ssim": pt(2.0)}, 1000: {"psnr": pt(3.0)}}},
                             metrics=("psnr",))
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and list(ax.containers[0].lines[0].get_xdata()) == [0.0, 1000.0]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"curve 'b' has no points"):
        plots.scaling_plot({"a": curve, "b": {}})
    with pytest.raises(ValueError, match=r"curve 'a': a size is negative \(-1\)"):
        plots.scaling_plot({"a": {-1: {"psnr": pt(1.0)}, 2: {"psnr": pt(1.0)}}})


def test_neighbour_curve_is_drawn_in_distance_order():
    curve = {10: {"adjacent": 0.1, "random": 0.05}, 1: {"adjacent": 0.3, "random": 0.05},
             3: {"adjacent": 0.2, "random": 0.05}}
    fig = plots.neighbour_correlation_plot(curve)
    assert _line_xy(fig.axes[0]) == ([1.0, 3.0, 10.0], [0.3, 0.2, 0.1])
    plt.close(fig)


# ----------------------------------------------------------------------------- tick labels: data values, no overlap


def _visible_ticklabels(ax):
    ax.figure.canvas.draw()
    return [t for t in ax.xaxis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]


def _assert_no_overlap(labels):
    """No two labels overlap, and neighbours are a third of a letter apart at least ("1600" "3092", not "16003092")."""
    boxes = sorted(((t.get_window_extent(), t) for t in labels), key=lambda bt: bt[0].x0)
    for i, (ba, a) in enumerate(boxes):
        for bb, b in boxes[i + 1:]:
            assert not ba.overlaps(bb), f"tick labels {a.get_text()!r} and {b.get_text()!r} overlap: {ba} and {bb}"
    for (ba, a), (bb, b) in zip(boxes, boxes[1:]):
        em = a.get_fontsize() * a.figure.dpi / 72
        assert bb.x0 - ba.x1 >= em / 3, f"tick labels {a.get_text()!r} and {b.get_text()!r} touch"


TYPICAL = [[10, 20, 45, 72], [200, 400, 800, 1600, 3092], [0, 300, 1000, 1969], [1e-4, 3e-4, 1e-3, 3e-3],
           [0.0, 0.05, 0.1, 0.2], [10, 11, 12, 13, 100]]


@pytest.mark.parametrize("xs, book_style", [(xs, True) for xs in TYPICAL] + [(xs, False) for xs in TYPICAL[:3]],
                         ids=lambda v: "-".join(f"{x:g}" for x in v) if isinstance(v, list) else ("book", "rc")[not v])
@pytest.mark.parametrize("log_x", [True, False])
def test_tick_labels_are_the_data_values_in_plain_numbers_and_never_overlap(xs, log_x, book_style):
    if log_x and min(xs) <= 0:
        pytest.skip("no log axis through 0")
    with matplotlib.rc_context():
        if book_style:
            plots.use_book_style()
        pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
        figs = [plots.sensitivity_plot({m: {x: float(i) for i, x in enumerate(xs)} for m in ("PSNR (dB)", "SSIM", "r")},
                                       xlabel="x", log_x=log_x),
                plots.scaling_plot({"a": {x: {m: pt for m in ("psnr", "ssim", "pixel_r")} for x in xs},
                                    "b": {x: {m: pt for m in ("psnr", "ssim", "pixel_r")} for x in xs}}, log_x=log_x)]
        plain = {plots._plain(x) for x in xs}
        for fig in figs:
            for ax in fig.axes[:3]:
                labels = _visible_ticklabels(ax)
                texts = [t.get_text() for t in labels]
                assert set(texts) <= plain, texts  # only the data's values, as plain numbers
                assert plots._plain(max(xs)) in texts and len(texts) >= 2, texts
                assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]  # no minor tick labels
                assert list(ax.get_xticks()) == sorted(float(x) for x in xs)  # a tick mark at every value
                _assert_no_overlap(labels)
            plt.close(fig)


def test_crowded_tick_labels_are_thinned_not_overlapped():
    xs = [10, 11, 12, 13, 14, 15, 100]
    fig = plots.sensitivity_plot({"r": {x: 1.0 for x in xs}}, xlabel="x", log_x=False)
    fig.set_size_inches(2.0, 2.0)
    labels = _visible_ticklabels(fig.axes[0])
    texts = [t.get_text() for t in labels]
    assert texts[0] == "10" and texts[-1] == "100" and len(texts) < len(xs)
    _assert_no_overlap(labels)
    fig.set_size_inches(40.0, 2.0)  # wide enough: every value labelled again at the next draw
    assert [t.get_text() for t in _visible_ticklabels(fig.axes[0])] == [str(x) for x in xs]
    plt.close(fig)


def test_plain_tick_numbers():
    assert [plots._plain(x) for x in (10, 3092.0, 0.0, -0.0, 0.0003, 2.5e-05, 0.1 + 0.2, 1.5)] == [
        "10", "3092", "0", "0", "0.0003", "0.000025", "0.3", "1.5"]


# ----------------------------------------------------------------------------- empty input: a note, never an exception


@pytest.fixture
def shown(monkeypatch):
    """The Markdown texts the helpers display (IPython.display.display captured)."""
    import IPython.display

    texts = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: texts.append(obj.data))
    return texts


def test_image_grid_without_images_shows_a_note_and_draws_nothing(shown):
    before = plt.get_fignums()
    assert plots.image_grid({}) is None
    assert plots.image_grid({"dropped prior image": np.zeros((0, 28, 28)), "its stimulus": np.zeros((0, 28, 28))},
                            labels=np.array([], dtype=int)) is None
    assert plots.image_grid({"target": np.zeros((3, 4, 4)), "recon": np.zeros((0, 4, 4))}) is None
    assert plots.image_grid({"dropped prior image": []}, empty_note="no prior image is near a stimulus") is None
    assert plt.get_fignums() == before
    assert shown == ["No images to show: no image rows were given.",
                     "No images to show: 'dropped prior image', 'its stimulus' have no images.",
                     "No images to show: 'recon' has no images.",
                     "No images to show: no prior image is near a stimulus."]


def test_image_grid_gives_a_colour_row_a_labelled_colour_bar():
    rows = {"target": np.random.default_rng(0).random((3, 4, 4)), "per-pixel std": np.full((3, 4, 4), 0.2)}
    fig = plots.image_grid(rows, colour_rows={"per-pixel std": "magma"}, colour_labels={"per-pixel std": "std"})
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "std"]
    assert len(fig.axes) == 7 and len(bars) == 1  # 2 x 3 images and one colour bar
    assert [t.get_text() for t in bars[0].get_yticklabels()] == ["0", "0.2"]
    plt.close(fig)
    fig = plots.image_grid({"target": rows["target"]})
    assert len(fig.axes) == 3  # grey images carry no colour bar
    plt.close(fig)
    many = {"target": np.zeros((12, 4, 4)), "per-pixel std": np.ones((12, 4, 4))}
    fig = plots.image_grid(many, colour_rows={"per-pixel std": "magma"})
    assert len(fig.axes) == 21 and fig.get_figwidth() <= plots.PAGE_WIDTH  # 10 columns and the bar fit the page
    plt.close(fig)


def _empty_study():
    import pandas as pd

    from ldm_core.diagnostics import SamplerStudy

    return SamplerStudy(pd.DataFrame(), {}, {})


EMPTY_CALLS = {
    "metric_ci_plot": lambda: plots.metric_ci_plot({}),
    "training_curves": lambda: plots.training_curves({}),
    "sensitivity_plot": lambda: plots.sensitivity_plot({}, xlabel="x"),
    "sensitivity_plot, every series empty": lambda: plots.sensitivity_plot({"PSNR (dB)": {}, "SSIM": {}}, xlabel="x"),
    "scaling_plot, every curve empty": lambda: plots.scaling_plot({"a": {}, "b": {}}),
    "trajectory_plot": lambda: plots.trajectory_plot(__import__("pandas").DataFrame()),
    "sweep_heatmaps": lambda: plots.sweep_heatmaps({}, rows=[], cols=[], panels=[], row_label="r", col_label="c",
                                                   panel_label="p", value_label="v"),
    "scaling_plot": lambda: plots.scaling_plot({}),
    "prior_training_curves": lambda: plots.prior_training_curves({"prior": {"vae_loss": [], "diffusion_loss": []}}),
    "observation_plot": lambda: plots.observation_plot([], [], []),
    "ladder_plot": lambda: plots.ladder_plot({}, groups={}),
    "sampler_diagnosis_plot": lambda: plots.sampler_diagnosis_plot(_empty_study()),
    "neighbour_correlation_plot": lambda: plots.neighbour_correlation_plot({}),
    "verdict_bars": lambda: plots.verdict_bars({}),
    "perception_distortion_plot": lambda: plots.perception_distortion_plot({}),
}


@pytest.mark.parametrize("name", sorted(EMPTY_CALLS))
def test_every_figure_helper_turns_empty_input_into_a_note(name, shown):
    before = plt.get_fignums()
    assert EMPTY_CALLS[name]() is None
    assert plt.get_fignums() == before
    assert len(shown) == 1 and shown[0].startswith("Nothing to plot: ") and shown[0].endswith(".")


def test_empty_note_gives_the_reason(shown):
    plots.scaling_plot({}, empty_note="the learning curve was skipped (scaling_sizes is empty)")
    assert shown == ["Nothing to plot: the learning curve was skipped (scaling_sizes is empty)."]


# ----------------------------------------------------------------------------- perception-distortion plane


def test_perception_distortion_plot_one_marker_per_decoder_with_ci_both_ways():
    pd_points = {
        "direct decoding": {"psnr": {"mean": 15.0, "ci_low": 14.5, "ci_high": 15.4},
                            "kid_digit": {"mean": 0.12, "ci_low": 0.09, "ci_high": 0.16}},
        "one diffusion sample": {"psnr": {"mean": 12.0, "ci_low": 11.5, "ci_high": 12.4},
                                 "kid_digit": {"mean": 0.03, "ci_low": 0.01, "ci_high": 0.05}},
        "ridge": {"psnr": {"mean": 13.0, "ci_low": 12.5, "ci_high": 13.4},
                  "kid_digit": {"mean": 0.4, "ci_low": 0.3, "ci_high": 0.5}},
        "no KID": {"psnr": {"mean": 13.0, "ci_low": 12.5, "ci_high": 13.4}},
    }
    fig = plots.perception_distortion_plot(pd_points)
    ax = fig.axes[0]
    assert len(ax.containers) == 3  # "no KID" is not drawn ...
    assert "no KID" in fig.get_supxlabel()  # ... and the figure says so
    c = ax.containers[0]
    assert c.has_xerr and c.has_yerr
    assert list(c.lines[0].get_xdata()) == [15.0] and list(c.lines[0].get_ydata()) == [0.12]
    xbar, ybar = (np.asarray(seg) for seg in (c.lines[2][0].get_segments()[0], c.lines[2][1].get_segments()[0]))
    assert xbar[:, 0].tolist() == [14.5, 15.4] and ybar[:, 1].tolist() == [0.09, 0.16]
    assert "PSNR" in ax.get_xlabel() and "(dB)" in ax.get_xlabel()
    assert "KID" in ax.get_ylabel() and "lower = closer to real digits" in ax.get_ylabel()
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert {"direct decoding", "one diffusion sample", "ridge regression to pixels"} <= set(texts)
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # outside the axes
    plt.close(fig)


# ----------------------------------------------------------------------------- colour bars and labelled axes


def test_sweep_heatmaps_have_one_labelled_colour_bar():
    scores = {(lr, bs, d): lr * bs + d for lr in (0.1, 1.0) for bs in (2, 4) for d in (8, 16)}
    fig = plots.sweep_heatmaps(scores, rows=[0.1, 1.0], cols=[2, 4], panels=[8, 16], row_label="lr",
                               col_label="batch", panel_label="dim", value_label="validation SSIM")
    assert [ax.get_ylabel() for ax in fig.axes if not ax.get_title()] == ["validation SSIM"]
    plt.close(fig)


def test_every_axis_of_the_loss_and_map_figures_is_labelled():
    fig = plots.prior_training_curves({"prior": {"vae_loss": [3.0, 2.0], "vae_log_every": 10,
                                                 "diffusion_loss": [1.0, 0.5], "diffusion_log_every": 10}})
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [
        ("optimiser step", "negative ELBO (nats per image)"), ("optimiser step", "denoising MSE")]
    plt.close(fig)
    fig = plots.observation_plot(np.ones(4), np.ones(4), np.ones(4))
    assert [ax.get_ylabel() for ax in fig.axes] == ["slope λ", "noise σ (code std units)", "cross-validated R²"]
    assert fig.get_supxlabel() == "latent dimension"
    plt.close(fig)
    with pytest.raises(ValueError, match=r"one value per latent dimension each; got lengths 4, 3, 4"):
        plots.observation_plot(np.ones(4), np.ones(3), np.ones(4))
    fig = plots.verdict_bars({"confirmed": 3, "inconclusive": 1}, xlabel="claims")
    assert fig.axes[0].get_xlabel() == "claims"
    plt.close(fig)


def test_missing_values_leave_gaps_not_errors():
    import pandas as pd

    pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    fig = plots.metric_ci_plot({"a": {"psnr": pt}, "b": {}}, metrics=("psnr",))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"ladder_plot: no group for \['b'\]"):
        plots.ladder_plot({"a": {"psnr": pt}, "b": {"psnr": pt}}, groups={"a": "fixes"}, metrics=("psnr",))
    traj = pd.DataFrame([{"stage": "one", "psnr": 1.0, "psnr_lo": 0.5, "psnr_hi": 1.5, "psnr_expected": (0.0, 2.0)},
                         {"stage": "two", "psnr": 2.0, "psnr_lo": 1.5, "psnr_hi": 2.5, "psnr_expected": None}])
    fig = plots.trajectory_plot(traj, metrics=("psnr", "ssim"))
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 1  # no ssim panel; one expected range
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["one", "two"]
    plt.close(fig)
