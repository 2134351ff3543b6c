"""The figures: axes labelled, each value drawn at its own x, tick labels that never overlap or vanish, legends below
the panels, readable image grids, empty input as a note."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ldm_core.study import plots  # noqa: E402
from ldm_core.study.plots import style  # noqa: E402


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
    assert ax.get_legend() is None and {t.get_text() for t in fig.legends[0].get_texts()} == {"claim", "a", "b"}
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

    from ldm_core.study.diagnostics import SamplerStudy

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
    keys = fig.legends[0].legend_handles[-2:]  # the sampler keys: line style only, neutral grey (colour = model)
    assert [(h.get_color(), h.get_linestyle()) for h in keys] == [("0.3", "-"), ("0.3", ":")]
    plt.close(fig)
    curve = {1: {"adjacent": 0.3, "random": 0.05}, 10: {"adjacent": 0.1, "random": 0.05}}
    fig = plots.neighbour_correlation_plot(curve, marks={"one token": 5})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "mean r over trials"
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"voxel pairs this far apart", "random voxel pairs",
                                                                 "one token"}
    plt.close(fig)


def test_a_row_of_panels_shares_one_x_label_and_one_panel_keeps_its_own():
    pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    curves = {"a": {10: {m: pt for m in ("psnr", "ssim")}, 20: {m: pt for m in ("psnr", "ssim")}}}
    fig = plots.scaling_plot(curves, metrics=("psnr", "ssim"), xlabel="prior images")
    # one label for the row, carried by a middle panel, so the legend below the panels comes under it
    assert [ax.get_xlabel() for ax in fig.axes] == ["prior images", ""]
    fig.canvas.draw()
    label, legend = fig.axes[0].xaxis.label.get_window_extent(), fig.legends[0].get_window_extent()
    assert legend.y1 <= label.y0  # the legend is below the shared x label, not on top of it
    assert label.x0 < fig.axes[0].get_window_extent().x1 < label.x1  # centred on the gap between the two panels
    plt.close(fig)
    fig = plots.sensitivity_plot({"PSNR (dB)": {1: 1.0, 2: 2.0}}, xlabel="strength", log_x=False)
    assert fig.axes[0].get_xlabel() == "strength"
    plt.close(fig)


def test_the_shared_x_label_sits_below_angled_tick_labels():
    # chapter 07's voxel-count figure: the book style angles "200 ... 3.1k" at draw time, and the label once sat on them
    with matplotlib.rc_context():
        plots.use_book_style()
        pts = {200: 14.4, 400: 15.4, 800: 15.4, 1600: 15.1, 3092: 14.7}
        fig = plots.sensitivity_plot({"PSNR (dB)": pts, "SSIM": pts, "pixel r": pts},
                                     xlabel="voxels read by the ridge map (validation, seed 0)")
        fig.canvas.draw()
        ticks = [t.label1 for ax in fig.axes for t in ax.xaxis.get_major_ticks() if t.label1.get_text()]
        assert any(t.get_rotation() != 0 for t in ticks)  # the case that overlapped
        label = fig.axes[1].xaxis.label.get_window_extent()
        assert fig.axes[1].get_xlabel().startswith("voxels read")
        assert label.y1 <= min(t.get_window_extent().y0 for t in ticks)
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
    assert left.get_xscale() == "log" and left.get_xlabel() == "voxels read"  # the label of the row
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


def _labelled_values(ax):
    """{tick value: its label text} for the x ticks with a visible, non-empty label (after a draw)."""
    ax.figure.canvas.draw()
    return {float(t.get_loc()): t.label1.get_text() for t in ax.xaxis.get_major_ticks()
            if t.label1.get_visible() and t.label1.get_text()}


def _rectangle(text):
    """The four corners (display px) of a possibly rotated tick label: the drawn box, not its axis-aligned hull."""
    renderer = text.figure.canvas.get_renderer()
    hull = text.get_window_extent(renderer)  # axis-aligned box around the rotated text; same centre
    angle = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(angle)
    c = np.array([(hull.x0 + hull.x1) / 2, (hull.y0 + hull.y1) / 2])
    u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    v = np.array([-u[1], u[0]])
    return np.array([c + su * flat.width / 2 * u + sv * flat.height / 2 * v for su, sv in
                     ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def _separation(a, b):
    """The largest gap (px) between two convex polygons along any of their edge normals (< 0: they overlap)."""
    best = -np.inf
    for poly in (a, b):
        for k in range(len(poly)):
            edge = poly[(k + 1) % len(poly)] - poly[k]
            n = np.array([-edge[1], edge[0]]) / np.hypot(*edge)
            pa, pb = a @ n, b @ n
            best = max(best, pb.min() - pa.max(), pa.min() - pb.max())
    return best


def _assert_no_overlap(labels):
    """No two labels overlap, and any two are a third of a letter apart at least ("1600" "3092", not "16003092");
    angled labels (drawn boxes, not their hulls) a quarter of a letter, across their lines."""
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            em = a.get_fontsize() * a.figure.dpi / 72
            need = em / 3 if a.get_rotation() == 0 else em / 4
            gap = _separation(_rectangle(a), _rectangle(b))
            assert gap >= need, f"tick labels {a.get_text()!r} and {b.get_text()!r} are {gap:.1f} px apart"


def _allowed(x):
    return {style._plain(x)} | {style._short(x, d) for d in (2, 3, 4)}


TYPICAL = [[10, 20, 45, 72], [200, 400, 800, 1600, 3092], [0, 300, 1000, 1969], [1e-4, 3e-4, 1e-3, 3e-3],
           [0.0, 0.05, 0.1, 0.2], [10, 11, 12, 13, 100], [1e-5, 1e-4, 5e-4, 1e-3], [0.0, 0.1, 0.3, 1.0],
           [1.0, 1.5, 2.0, 3.0], [0, 100, 300, 1000, 1969]]
# (values, log axis, book style) whose ticks lie closer than any layout allows, so labels are thinned (see
# test_labels_closer_than_a_line_...): 10-13 are 2 px (linear) or 8 px (log) apart; with matplotlib's default 10-point
# labels (not the book's 9), "200" and "400" are 35 px apart on a linear axis to 3092, short of two staggered lines
DENSE = {((10, 11, 12, 13, 100), True, True), ((10, 11, 12, 13, 100), False, True),
         ((200, 400, 800, 1600, 3092), False, False)}


@pytest.mark.parametrize("xs, book_style", [(xs, True) for xs in TYPICAL] + [(xs, False) for xs in TYPICAL[:3]],
                         ids=lambda v: "-".join(f"{x:g}" for x in v) if isinstance(v, list) else ("book", "rc")[not v])
@pytest.mark.parametrize("log_x", [True, False])
def test_every_data_value_keeps_a_visible_label_and_labels_never_overlap(xs, log_x, book_style):
    if log_x and min(xs) <= 0:
        pytest.skip("no log axis through 0")
    if (tuple(xs), log_x, book_style) in DENSE:
        pytest.skip("ticks closer than a line of text: thinned (test_labels_closer_than_a_line_...)")
    with matplotlib.rc_context():
        if book_style:
            plots.use_book_style()
        pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
        figs = [plots.sensitivity_plot({m: {x: float(i) for i, x in enumerate(xs)} for m in ("PSNR (dB)", "SSIM", "r")},
                                       xlabel="x", log_x=log_x),
                plots.scaling_plot({"a": {x: {m: pt for m in ("psnr", "ssim", "pixel_r")} for x in xs},
                                    "b": {x: {m: pt for m in ("psnr", "ssim", "pixel_r")} for x in xs}}, log_x=log_x)]
        for fig in figs:
            for ax in fig.axes[:3]:
                shown = _labelled_values(ax)
                assert sorted(shown) == sorted(float(x) for x in xs), shown  # every value, and only the values
                for x, text in shown.items():
                    assert text in _allowed(x), (x, text)  # the value itself, plain or abbreviated
                assert not [t for t in ax.xaxis.get_minorticklabels() if t.get_text()]  # no minor tick labels
                assert list(ax.get_xticks()) == sorted(float(x) for x in xs)  # a tick mark at every value
                _assert_no_overlap(_visible_ticklabels(ax))
            plt.close(fig)


def test_the_book_figures_of_the_review_label_every_value():
    """The figures the book review found with missing labels: 1,600 voxels, 300 and 1,000 prior images, lr 10^-4 and
    5x10^-4, noise 0.1 (each a 3-panel figure at the page width)."""
    with matplotlib.rc_context():
        plots.use_book_style()
        cases = [([200, 400, 800, 1600, 3092], True), ([0, 300, 1000, 1969], False),
                 ([1e-5, 1e-4, 5e-4, 1e-3], True), ([0.0, 0.1, 0.3, 1.0], False)]
        for xs, log_x in cases:
            series = {m: {x: float(i) for i, x in enumerate(xs)} for m in ("PSNR (dB)", "SSIM", "r")}
            fig = plots.sensitivity_plot(series, xlabel="x", log_x=log_x, marks={"used": xs[-1]})
            for ax in fig.axes:
                assert len(_labelled_values(ax)) == len(xs)
                _assert_no_overlap(_visible_ticklabels(ax))
            plt.close(fig)


def _first_draw_at(xs, width, log_x=True):
    """A one-panel sensitivity plot of ``xs`` drawn first at ``width`` inches: (its axes, its tick formatter)."""
    fig = plots.sensitivity_plot({"r": {x: 1.0 for x in xs}}, xlabel="x", log_x=log_x)
    fig.set_size_inches(width, 2.0)
    return fig.axes[0], fig.axes[0].xaxis.get_major_formatter()


def test_crowded_labels_are_abbreviated_then_angled_then_staggered():
    voxels = (200, 400, 800, 1600, 3092)
    with matplotlib.rc_context():
        plots.use_book_style()
        ax, fmt = _first_draw_at(voxels, 8.0)  # room enough: plain numbers, horizontal
        assert list(_labelled_values(ax).values()) == ["200", "400", "800", "1600", "3092"] and fmt.layout == (0, False)
        ax, fmt = _first_draw_at(voxels, 2.5)  # abbreviated, still horizontal
        assert list(_labelled_values(ax).values()) == ["200", "400", "800", "1.6k", "3.1k"] and fmt.layout == (0, False)
        _assert_no_overlap(_visible_ticklabels(ax))
        ax, fmt = _first_draw_at(voxels, 2.0)  # abbreviated and angled
        assert list(_labelled_values(ax).values()) == ["200", "400", "800", "1.6k", "3.1k"] and fmt.layout[0] > 0
        _assert_no_overlap(_visible_ticklabels(ax))
        ax, fmt = _first_draw_at((0.0, 0.1, 0.3, 1.0), 2.0, log_x=False)  # "0", "0.1" too close even at 90°
        assert list(_labelled_values(ax).values()) == ["0", "0.1", "0.3", "1"] and fmt.layout == (0, True)
        labels = _visible_ticklabels(ax)
        assert labels[1].get_window_extent().y1 < labels[0].get_window_extent().y0  # "0.1" one line lower
        _assert_no_overlap(labels)
        ax.get_figure(root=True).set_size_inches(40.0, 2.0)  # wide again: one line, at the next draw
        assert len(_labelled_values(ax)) == 4 and fmt.layout == (0, False)
        assert len({round(t.get_window_extent().y0) for t in _visible_ticklabels(ax)}) == 1
        plt.close("all")


def test_labels_closer_than_a_line_of_text_are_thinned_not_overlapped():
    xs = [10, 11, 12, 13, 14, 15, 100]
    fig = plots.sensitivity_plot({"r": {x: 1.0 for x in xs}}, xlabel="x", log_x=False)
    fig.set_size_inches(2.0, 2.0)  # ticks 2 px apart: no layout can label them all
    labels = _visible_ticklabels(fig.axes[0])
    texts = [t.get_text() for t in labels]
    assert texts[0] == "10" and texts[-1] == "100" and len(texts) < len(xs)
    _assert_no_overlap(labels)
    fig.set_size_inches(40.0, 2.0)  # wide enough: every value labelled again at the next draw
    assert [t.get_text() for t in _visible_ticklabels(fig.axes[0])] == [str(x) for x in xs]
    plt.close(fig)


def test_plain_tick_numbers():
    assert [style._plain(x) for x in (10, 3092.0, 0.0, -0.0, 0.0003, 2.5e-05, 0.1 + 0.2, 1.5)] == [
        "10", "3092", "0", "0", "0.0003", "0.000025", "0.3", "1.5"]


def test_short_tick_numbers():
    xs = (1600, 3092, 1000, 1969, 12000, 150000, 2.5e6, 0.0003, 1e-5, 2.5e-5, 5e-4, 9.99e-5, 0.05, 450, 0, -1600)
    assert [style._short(x) for x in xs] == [
        "1.6k", "3.1k", "1k", "2k", "12k", "150k", "2.5M", "3×10⁻⁴", "10⁻⁵", "2.5×10⁻⁵", "5×10⁻⁴", "10⁻⁴", "0.05",
        "450", "0", "-1.6k"]
    assert style._short(3092, 3) == "3.09k"
    # distinct values keep distinct labels: more digits when two would read alike
    assert style._short_labels([1960, 2000]) == ["1.96k", "2k"]
    assert style._short_labels([200, 1600]) == ["200", "1.6k"]


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
    assert len(fig.axes) == 9 and len(bars) == 1  # 2 x 3 images, one colour bar and the 2 row names
    assert [t.get_text() for t in bars[0].get_yticklabels()] == ["0", "0.2"]
    plt.close(fig)
    fig = plots.image_grid({"target": rows["target"]})
    assert len(fig.axes) == 4  # grey images carry no colour bar (3 images and the row name)
    plt.close(fig)
    many = {"target": np.zeros((12, 4, 4)), "per-pixel std": np.ones((12, 4, 4))}
    fig = plots.image_grid(many, colour_rows={"per-pixel std": "magma"})
    assert len(fig.axes) == 23 and fig.get_figwidth() <= plots.PAGE_WIDTH  # 10 columns and the bar fit the page
    plt.close(fig)


def test_image_grid_column_titles_win_over_class_names():
    rows = {"test stimulus": np.zeros((3, 4, 4)), "most similar training stimulus": np.zeros((3, 4, 4))}
    fig = plots.image_grid(rows, labels=np.array([1, 2, 1]), class_names={1: "six", 2: "nine"},
                           column_titles=["six\nr = 0.99", "nine\nr = 0.97", "six\nr = 0.95"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["six\nr = 0.99", "nine\nr = 0.97", "six\nr = 0.95"]
    assert [ax.get_title() for ax in fig.axes[3:6]] == ["", "", ""]  # titles over the first row only
    plt.close(fig)
    with pytest.raises(ValueError, match="column_titles has 2 titles for 3 columns"):
        plots.image_grid(rows, column_titles=["a", "b"])


def _image_sizes(fig):
    fig.canvas.draw()
    boxes = [ax.get_window_extent() for ax in fig.axes if ax.get_images() and ax.get_label() != "<colorbar>"]
    return [b.width / fig.dpi for b in boxes], [b.height / fig.dpi for b in boxes]


def test_image_grid_of_the_first_page_is_readable():
    # the first page's grid: 4 rows of 10 test images, one row named by a long model name
    rng = np.random.default_rng(0)
    rows = {"seen (target)": rng.random((10, 28, 28)),
            "final model: prior VAE + ridge map, 400 voxels (diffusion off), 90 trials": rng.random((10, 28, 28)),
            "best baseline: autoencoder + ridge": rng.random((10, 28, 28)),
            "the report's original model (reproduced)": rng.random((10, 28, 28))}
    labels = np.array([1] * 5 + [2] * 5)
    with matplotlib.rc_context():
        plots.use_book_style()
        fig = plots.image_grid(rows, labels=labels, class_names={1: "six", 2: "nine"})
        widths, heights = _image_sizes(fig)
        assert len(widths) == 40 and min(widths) >= 0.55 and min(heights) >= 0.55  # inches per image
        assert fig.get_figwidth() <= plots.PAGE_WIDTH
        assert [ax.get_title() for ax in fig.axes[:10]] == ["six"] * 5 + ["nine"] * 5
        # each row's name above it, on one line: the long model name takes no width from the images
        names = [ax.texts[0] for ax in fig.axes if ax.get_label().startswith("row name")]
        assert [t.get_text() for t in names] == list(rows)
        for r, t in enumerate(names):
            first_image = fig.axes[10 * r].get_window_extent()
            assert t.get_window_extent().y0 >= first_image.y1  # above the row's images
        plt.close(fig)
        # a colour row (per-pixel std) beside 10 columns still leaves 0.55 inch per image
        fig = plots.image_grid({"target": rng.random((10, 28, 28)), "std": rng.random((10, 28, 28))},
                               colour_rows={"std": "magma"})
        widths, heights = _image_sizes(fig)
        assert min(widths) >= 0.55 and min(heights) >= 0.55 and fig.get_figwidth() <= plots.PAGE_WIDTH
        plt.close(fig)


def _empty_study():
    import pandas as pd

    from ldm_core.study.diagnostics import SamplerStudy

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
    assert "no KID" in ax.get_title(loc="left")  # ... and the figure says so
    c = ax.containers[0]
    assert c.has_xerr and c.has_yerr
    assert list(c.lines[0].get_xdata()) == [15.0] and list(c.lines[0].get_ydata()) == [0.12]
    xbar, ybar = (np.asarray(seg) for seg in (c.lines[2][0].get_segments()[0], c.lines[2][1].get_segments()[0]))
    assert xbar[:, 0].tolist() == [14.5, 15.4] and ybar[:, 1].tolist() == [0.09, 0.16]
    assert "PSNR" in ax.get_xlabel() and "(dB)" in ax.get_xlabel()
    assert "KID" in ax.get_ylabel() and "lower = closer to real digits" in ax.get_ylabel()
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert {"direct decoding", "one diffusion sample", "ridge regression to pixels"} <= set(texts)
    assert "can fall below 0" in texts[-1]  # the KID-0 line, after the decoders, says the estimate can be negative
    fig.canvas.draw()
    box = ax.get_tightbbox()  # the axes with its tick labels and axis labels
    assert legend.get_window_extent().y1 <= box.y0  # below the plane, x label included ...
    assert ax.get_window_extent().width >= 0.7 * fig.bbox.width  # ... so the plane keeps the page width
    plt.close(fig)


def test_legends_go_below_and_leave_the_panels_their_width():
    pt = {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    long_names = ["prior VAE + map, diffusion off (chapter 07)", "spatial LDM (x0, mean of 8 samples), short recipe",
                  "ridge regression to pixels", "ridge to the VAE latent, decoded"]
    curves = {n: {x: {m: pt for m in ("psnr", "ssim", "pixel_r")} for x in (10, 20, 45, 72)} for n in long_names}
    fig = plots.scaling_plot(curves, bands={"psnr": (15, 20)}, band_label="report: best possible with 90 samples")
    fig.canvas.draw()
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert min(ax.get_window_extent().width for ax in fig.axes) >= 1.6 * fig.dpi  # inches per panel
    assert fig.legends[0].get_window_extent().y1 <= min(ax.get_tightbbox().y0 for ax in fig.axes)
    plt.close(fig)

    class Run:
        def __init__(self, k):
            self.history = {"stage": ["a"] * 3 + ["b"] * 3, "train_loss": [3.0, 2.0, 1.0] * 2,
                            "val_loss": [k + 3.0, k + 2.0, k + 1.0] * 2}

    class Result:
        def __init__(self, k):
            self.runs = [Run(k)]

    fig = plots.training_curves({n: Result(k) for k, n in enumerate(long_names)})
    fig.canvas.draw()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == long_names
    assert min(ax.get_window_extent().width for ax in fig.axes) >= 2.0 * fig.dpi
    plt.close(fig)
    fig = plots.prior_training_curves({"prior": {"vae_loss": [3.0, 2.0], "diffusion_loss": [1.0, 0.5]}})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["prior"]
    plt.close(fig)


# ----------------------------------------------------------------------------- CI bars on sensitivity plots


def test_sensitivity_plot_draws_ci_bars_from_low_to_high_at_their_own_x():
    series = {"PSNR (dB)": {2.0: 13.91, 1.0: 13.86, 3.0: 13.84}, "SSIM": {1.0: 0.60, 2.0: 0.61, 3.0: 0.59}}
    ci = {"PSNR (dB)": {3.0: (13.2, 14.4), 1.0: (13.2, 14.5), 2.0: (float("nan"), 14.6)}}  # no bar at 2
    fig = plots.sensitivity_plot(series, xlabel="guidance scale w", log_x=False, ci=ci)
    left, right = fig.axes
    (bar,) = left.containers
    segments = [np.asarray(seg) for seg in bar.lines[2][0].get_segments()]
    assert [(s[0, 0], s[0, 1], s[1, 1]) for s in segments] == [pytest.approx((1.0, 13.2, 14.5)),
                                                               pytest.approx((3.0, 13.2, 14.4))]
    assert not right.containers  # a series without intervals has no bar
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["95% CI"]
    assert left.get_ylim()[0] <= 13.2 and left.get_ylim()[1] >= 14.5  # the axis spans the intervals
    plt.close(fig)
    fig = plots.sensitivity_plot({"r": {1: 0.5, 10: 0.7}}, xlabel="x", ci={"r": {1: (0.4, 0.6), 10: (0.6, 0.8)}},
                                 ci_label="range over seeds", marks={"used": 10})
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["used", "range over seeds"]
    plt.close(fig)


def test_sensitivity_plot_refuses_intervals_it_cannot_place():
    s = {"r": {1: 0.5, 10: 0.7}}
    with pytest.raises(ValueError, match=r"ci names the series 'SSIM', which is not drawn"):
        plots.sensitivity_plot(s, xlabel="x", ci={"SSIM": {1: (0.4, 0.6)}})
    with pytest.raises(ValueError, match=r"ci of series 'r': x value 3 is not among the series' x values"):
        plots.sensitivity_plot(s, xlabel="x", ci={"r": {3: (0.4, 0.6)}})
    with pytest.raises(ValueError, match=r"ci of series 'r' at x = 1: low 0.6 is above high 0.4"):
        plots.sensitivity_plot(s, xlabel="x", ci={"r": {1: (0.6, 0.4)}})
    with pytest.raises(ValueError, match=r"ci of series 'r' at x = 1: expected a \(low, high\) pair, got 0.5"):
        plots.sensitivity_plot(s, xlabel="x", ci={"r": {1: 0.5}})
    with pytest.raises(ValueError, match=r"ci of series 'r': expected a mapping"):
        plots.sensitivity_plot(s, xlabel="x", ci={"r": [(0.4, 0.6)]})


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
    fig = plots.observation_plot(np.ones(16), np.ones(16), np.linspace(-0.2, 0.8, 16))
    assert [ax.get_ylabel() for ax in fig.axes] == ["slope λ", "noise σ\n(code std units)", "cross-validated\nR²"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "latent dimension"]  # stacked, one shared axis
    assert len(_labelled_values(fig.axes[-1])) == 16  # every dimension keeps its label
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
