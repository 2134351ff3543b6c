"""Figures and tables shared by the chapters (matplotlib / seaborn / pandas), sized for the book's page.

The book's text column is about 7 inches wide; figures are drawn at that width or less (:data:`PAGE_WIDTH`) with
10-point text, so that they are read at 100 % rather than shrunk, and every figure with several curves puts its
legend outside the axes, below the panels (a legend to the right squeezes narrow panels). Names come from
:mod:`ldm_core.study.names`. Tables of metrics put each mean over its 95% CI (:func:`ci_table`), so a cell never wraps
over several lines.

Rules every figure helper keeps:

- **Keyed data.** Whatever is drawn against an x axis arrives as ``{x: y}`` (or ``{x: {metric: ...}}``) and is
  sorted by x here, so a value can never be drawn at another value's position (chapter 07 once drew voxel-count
  scores listed in one order at positions listed in another). Keys may be numbers or numeric strings (a
  ``metrics.json`` read back); a non-numeric, non-finite or repeated x, or x <= 0 on a log axis, raises ``ValueError``
  naming the series.
- **Data ticks.** An x axis of swept values is labelled with exactly those values, no minor tick labels. At draw
  time, labels that would overlap are first abbreviated ("1.6k", "3.1k", "5×10⁻⁴"), then angled (45°, then 90°),
  then staggered on two lines, so that every value keeps a visible label (:class:`DataTickFormatter`); only ticks
  closer together than any of these allows (a dense curve, not a sweep) are thinned.
- **Empty input.** Nothing to draw is not an error: the helper shows one line of Markdown ("No images to show:
  <reason>" / "Nothing to plot: <reason>", the reason given by ``empty_note``) and returns ``None``.
- **Colour bars** wherever colour carries a value (heat maps, a per-pixel standard deviation); every axis is
  labelled.

The perception-distortion plane (:func:`perception_distortion_plot`) follows Blau and Michaeli, "The
Perception-Distortion Tradeoff", CVPR 2018.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker as mticker
from matplotlib.lines import Line2D

from ..data import LABEL_NAMES
from .names import METRIC_LABELS, ci_text, metric_label, model_label

__all__ = ["PAGE_WIDTH", "use_book_style", "image_grid", "ci_table", "metric_ci_plot",
           "training_curves", "sensitivity_plot", "trajectory_plot", "sweep_heatmaps", "scaling_plot",
           "prior_training_curves", "observation_plot", "verdict_bars",
           "ladder_plot", "sampler_diagnosis_plot", "neighbour_correlation_plot", "perception_distortion_plot",
           "DataTickFormatter", "data_ticks", "METRIC_LABELS"]

PAGE_WIDTH = 7.0  # inches: the book's text column


def use_book_style() -> None:
    """matplotlib settings of the book: 10-point text, 110 dpi, no top/right spines, tight layout by default."""
    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "legend.frameon": False,
        "axes.spines.top": False, "axes.spines.right": False, "figure.constrained_layout.use": True,
    })


def _width(n_panels: int, per_panel: float) -> float:
    return min(PAGE_WIDTH, per_panel * n_panels)


def _legend_below(fig, *, last: tuple[str, ...] = ()) -> None:
    """One legend below the panels of ``fig`` (constrained layout) with the unique labelled artists of every panel
    (the labels in ``last`` after the others, e.g. a reference line after the models).

    A legend to the right of narrow panels takes their width (the book once had 60-px panels beside a wide legend);
    below, the panels keep the page width. The figure grows by the legend's height, so the panels keep theirs. The
    number of columns fits the longest entry into the figure's width.
    """
    seen: dict[str, object] = {}
    for a in fig.axes:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab and not lab.startswith("_"):
                seen.setdefault(lab, h)
    if not seen:
        return
    seen = {k: v for k, v in sorted(seen.items(), key=lambda kv: kv[0] in last)}  # stable: others keep their order
    prop = mpl.font_manager.FontProperties(size=mpl.rcParams["legend.fontsize"])
    longest = max(_label_size_px(lab, prop, 72.0)[0] for lab in seen) / 72.0  # inches
    width = fig.get_figwidth()
    ncols = max(1, min(len(seen), int((width - 0.2) // (longest + 0.6))))
    rows = math.ceil(len(seen) / ncols)
    ncols = math.ceil(len(seen) / rows)  # balanced: 5 entries in 3 + 2, not 4 + 1
    fig.set_figheight(fig.get_figheight() + 0.2 * rows + 0.1)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=ncols, frameon=False)


# ----------------------------------------------------------------------------- empty input, keyed data, ticks


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _note(lead: str, reason: str) -> None:
    """Show ``"<lead>: <reason>."`` as one line of Markdown where the figure would have been; return None."""
    from IPython.display import Markdown, display

    display(Markdown(_sentence(f"{lead}: {reason}")))
    return None


def _nothing_to_plot(reason: str, empty_note: str | None) -> None:
    return _note("Nothing to plot", empty_note or reason)


def _plain(x: float) -> str:
    """A tick label as a plain number: 10 -> "10", 3092.0 -> "3092", 0.0003 -> "0.0003", 2.5e-05 -> "0.000025"."""
    x = float(x)
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return np.format_float_positional(x, precision=4, unique=True, fractional=False, trim="-")


def _keyed(name: str, points, *, log: bool, what: str = "series") -> list[tuple[float, object]]:
    """``{x: value}`` as ``[(x, value), ...]`` sorted by x (float), refusing what could misplace a point.

    Raises
    ------
    ValueError
        If the mapping is empty or not a mapping, an x is not a number, is not finite, occurs twice (10 and "10"),
        or is <= 0 while ``log``. The message names the series.
    """
    if not isinstance(points, Mapping):
        raise ValueError(f"{what} {name!r}: expected a mapping {{x: value}}, got {type(points).__name__} "
                         "(pass dict(zip(xs, ys)) so that every value keeps its own x)")
    if not points:
        raise ValueError(f"{what} {name!r} has no points (an empty {{x: value}} mapping)")
    out: dict[float, object] = {}
    for key, value in points.items():
        try:
            x = float(key)
        except (TypeError, ValueError):
            raise ValueError(f"{what} {name!r}: x value {key!r} is not a number") from None
        if not math.isfinite(x):
            raise ValueError(f"{what} {name!r}: x value {key!r} is not finite")
        if log and x <= 0:
            raise ValueError(f"{what} {name!r}: x value {key!r} is <= 0 and cannot be drawn on a log axis "
                             "(pass log_x=False)")
        if x in out:
            raise ValueError(f"{what} {name!r}: x value {key!r} occurs twice")
        out[x] = value
    return sorted(out.items())


def _label_size_px(text: str, prop, dpi: float) -> tuple[float, float]:
    """Width and height of ``text`` in display pixels (font metrics; no renderer needed)."""
    from matplotlib.textpath import text_to_path

    w, h, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
    return w * dpi / 72.0, h * dpi / 72.0


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _significant(m: float, digits: int) -> str:
    """``m`` > 0 to ``digits`` significant digits, never dropping integer digits, trailing zeros trimmed."""
    decimals = max(digits - 1 - math.floor(math.log10(m)), 0)
    text = f"{m:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _short(x: float, digits: int = 2) -> str:
    """A short tick label: 1600 -> "1.6k", 3092 -> "3.1k", 2.5e6 -> "2.5M", 0.0005 -> "5×10⁻⁴", 1e-5 -> "10⁻⁵".

    Values from 0.01 up to 1000 stay plain (:func:`_plain`). ``digits`` significant digits (2: "3.1k"; 3: "3.09k").
    """
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return _plain(x)
    sign, a = ("-" if x < 0 else ""), abs(x)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return sign + _significant(a / div, digits) + suffix
    if a < 0.01:
        e = math.floor(math.log10(a))
        m = float(_significant(a / 10**e, digits))
        if m >= 10:  # 9.99e-5 rounds to 10e-5 = 1e-4
            m, e = m / 10, e + 1
        mant = _significant(m, digits)
        return sign + ("" if mant == "1" else mant + "×") + "10" + str(e).translate(_SUPERSCRIPT)
    return _plain(x)


def _short_labels(values) -> list[str] | None:
    """:func:`_short` labels of ``values``, with more digits until distinct values get distinct labels (None if
    even 4 digits do not tell them apart)."""
    distinct = len({float(v) for v in values})
    for digits in (2, 3, 4):
        labels = [_short(v, digits) for v in values]
        if len(set(labels)) == distinct:
            return labels
    return None


class DataTickFormatter(mticker.Formatter):
    """Tick labels at the data's values that never overlap and never vanish: decided at draw time, in display space.

    Used with a :class:`~matplotlib.ticker.FixedLocator` at the data's x values (:func:`data_ticks`). Each time the
    axis is drawn, the labels of the ticks inside the view are measured and the first layout in which no two
    labels come closer than ``gap`` (side by side), ``gap_across`` (angled labels, across their lines) or
    ``gap_staggered`` (side by side on one of two staggered lines), fractions of the font size, is used:

    1. plain numbers ("1600", "0.0005");
    2. abbreviated ones ("1.6k", "5×10⁻⁴"; see :func:`_short`);
    3. (x axis) abbreviated labels angled at 45°, then at 90°;
    4. (x axis) abbreviated labels staggered on two lines, every other label one line lower ("0", "0.1" at the
       start of a 0-1 axis).

    Only when ticks lie so close that none of these fits (a dense curve, not a handful of swept values) are labels
    left blank: walking from the smallest value, always keeping the largest; the tick mark stays.
    """

    ANGLES = (45.0, 90.0)

    def __init__(self, gap: float = 0.6, gap_across: float = 0.3, gap_staggered: float = 0.4):
        self.gap = gap  # em between labels side by side
        self.gap_across = gap_across  # em between angled labels, across their lines of text
        self.gap_staggered = gap_staggered  # em between labels side by side on one of two staggered lines
        self.layout = (0.0, False)  # (angle, staggered) chosen at the last draw
        self._font_pt = 9.0

    def __call__(self, x, pos=None):
        return _plain(x)

    def format_ticks(self, values):
        labels = [_plain(v) for v in values]
        try:
            labels, angle, lower, keep = self._layout(np.asarray(values, dtype=float), labels)
        except Exception:  # no figure / transform yet: plain labels everywhere (the next draw decides)
            return labels
        self._apply(angle, lower, len(values))
        return [lab if k else "" for lab, k in zip(labels, keep)]

    def _apply(self, angle: float, lower: set, n: int) -> None:
        """Angle (and stagger) the tick labels of every axis that uses this formatter (shared axes share it)."""
        self.layout = (angle, bool(lower))
        if self.axis.axis_name != "x":
            return
        ha, mode = ("center", "default") if angle in (0.0, 90.0) else ("right", "anchor")
        base = mpl.rcParams["xtick.major.pad"]
        line = 1.4 * self._font_pt  # one line of tick-label text and a little space, in points
        for a in self.axis.axes.figure.axes:
            if a.xaxis.get_major_formatter() is not self:
                continue
            for j, tick in enumerate(a.xaxis.get_major_ticks(n)):
                tick.set_pad(base + (line if j in lower else 0.0))
                for lab in (tick.label1, tick.label2):
                    lab.set_rotation(angle)
                    lab.set_horizontalalignment(ha)
                    lab.set_rotation_mode(mode)

    def _layout(self, values: np.ndarray, plain: list[str]) -> tuple[list[str], float, set, list[bool]]:
        """(labels, angle, ticks one line lower, keep): the first layout whose labels all clear each other, else
        the most compact one thinned."""
        axis = self.axis
        ax = axis.axes
        is_x = axis.axis_name == "x"
        lo, hi = sorted(axis.get_view_interval())
        tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
        inside = (values >= lo - tol) & (values <= hi + tol)
        idx = [i for i in np.argsort(values) if inside[i]]
        if not idx:
            return plain, 0.0, set(), [False] * len(values)
        trans = ax.get_xaxis_transform() if is_x else ax.get_yaxis_transform()
        zeros = np.zeros_like(values)
        pts = np.column_stack([values, zeros] if is_x else [zeros, values])
        pos = trans.transform(pts)[:, 0 if is_x else 1]
        try:
            prop = axis.majorTicks[0].label1.get_fontproperties()
        except Exception:
            prop = mpl.font_manager.FontProperties(size=mpl.rcParams[f"{axis.axis_name}tick.labelsize"])
        dpi = ax.figure.dpi
        line = _label_size_px("lp", prop, dpi)[1]  # a line of text, as matplotlib lays out a label
        self._font_pt = prop.get_size_in_points()
        em = prop.get_size_in_points() * dpi / 72.0
        gap = self.gap * em  # between labels side by side
        across = self.gap_across * em  # between angled labels, across their lines (like line spacing)
        order = sorted(idx, key=lambda i: pos[i])  # display order (an inverted axis runs the other way)

        def fits(labels, angle, side=gap):
            # + 1 px: the font-path metrics run up to a pixel short of the drawn text's extent
            width = {i: _label_size_px(labels[i], prop, dpi)[0] + 1.0 for i in order}
            height = {i: max(_label_size_px(labels[i], prop, dpi)[1], line) + 1.0 for i in order}

            def clear(a, b):  # a before b in display order
                d = abs(pos[b] - pos[a])
                if not is_x:
                    return d >= (height[a] + height[b]) / 2 + side
                if angle == 0.0:
                    return d >= (width[a] + width[b]) / 2 + side
                if angle == 90.0:
                    return d >= (height[a] + height[b]) / 2 + across
                t = math.radians(angle)  # parallel boxes hanging from their right ends: apart across or along
                return d * math.sin(t) >= max(height[a], height[b]) + across or d * math.cos(t) >= width[b] + side

            return clear

        short = _short_labels(values) or plain
        candidates = [(plain, 0.0)] + ([(short, 0.0)] if short != plain else [])
        if is_x:
            candidates += [(short, a) for a in self.ANGLES]
        for labels, angle in candidates:
            clear = fits(labels, angle)
            if all(clear(a, b) for a, b in zip(order, order[1:])):
                return labels, angle, set(), list(inside)
        if is_x:  # two lines: neighbours never share one, so only every other label must clear the next on its line
            clear = fits(short, 0.0, side=self.gap_staggered * em)
            if all(clear(a, b) for a, b in zip(order, order[2:])):
                return short, 0.0, set(order[1::2]), list(inside)
        labels, angle = candidates[-1]  # nothing fits: thin the most compact layout
        clear = fits(labels, angle)
        kept = [order[0]]
        for i in order[1:]:
            if clear(kept[-1], i):
                kept.append(i)
        largest = max(idx, key=lambda i: values[i])
        if largest not in kept:  # keep the largest value's label; drop its overlapping neighbours instead
            kept = [i for i in kept if (clear(i, largest) if pos[i] <= pos[largest] else clear(largest, i))]
            kept.append(largest)
        keep = [False] * len(values)
        for i in kept:
            keep[i] = True
        return labels, angle, set(), keep


def data_ticks(ax, xs, *, axis: str = "x") -> None:
    """Tick ``ax``'s x (or y) axis at exactly the values ``xs``, no minor ticks, labels that never overlap and are
    abbreviated or angled rather than hidden (:class:`DataTickFormatter`).

    Call it after setting the axis scale (``set_xscale`` resets locators and formatters).
    """
    values = sorted({float(x) for x in xs if np.isfinite(float(x))})
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(mticker.FixedLocator(values))
    target.set_major_formatter(DataTickFormatter())
    target.set_minor_locator(mticker.NullLocator())
    target.set_minor_formatter(mticker.NullFormatter())


# ----------------------------------------------------------------------------- images


def image_grid(rows: dict[str, np.ndarray], *, labels: np.ndarray | None = None, max_cols: int = 10,
               class_names: dict[int, str] | None = None, colour_rows: dict[str, str] | None = None,
               colour_labels: dict[str, str] | None = None, column_titles: list[str] | None = None,
               empty_note: str | None = None):
    """One row per entry of ``rows`` (name -> (N, S, S)), one column per image, upright, at most :data:`PAGE_WIDTH`.

    Each row's name is written above its images, left-aligned over the page width (long model names need no
    column of their own), so up to 10 columns get 0.66 inch per image (0.62 beside a colour bar); more columns
    share the page width.

    Parameters
    ----------
    rows : dict of str -> ndarray (N, S, S)
        Images in [0, 1] (grey scale, 0 black), unless the row is in ``colour_rows``. Every row shows its first
        ``min(max_cols, shortest row)`` images.
    labels : ndarray (N,), optional
        Class codes of the columns; titles them with ``class_names`` (default digit69's :data:`LABEL_NAMES`).
    column_titles : list of str, optional
        A title per column instead (e.g. "six, r = 0.99" for a pair's correlation); wins over ``labels``. One per
        shown column at least.
    colour_rows : dict of str -> str, optional
        Rows drawn with their own colour scale (0 to the row's maximum) and this colormap, e.g. a per-pixel
        standard deviation, which would be black on the [0, 1] scale. Each gets a colour bar, labelled with
        ``colour_labels[row]`` (default: the row's name).
    empty_note : str, optional
        Why there may be nothing to show (e.g. "no prior image is near a stimulus"). When ``rows`` is empty or
        a row holds no image, the grid is not drawn: one Markdown line "No images to show: <empty_note>" is shown
        instead (a default reason names the empty rows).

    Returns
    -------
    matplotlib Figure, or None when there was nothing to show.
    """
    class_names = LABEL_NAMES if class_names is None else class_names
    colour_rows = colour_rows or {}
    colour_labels = colour_labels or {}
    names = list(rows or {})
    if not names:
        return _note("No images to show", empty_note or "no image rows were given")
    lengths = {name: len(rows[name]) for name in names}
    n = min(int(max_cols), min(lengths.values()))
    if n <= 0:
        empty = [model_label(k) for k, v in lengths.items() if v == 0]
        reason = (f"{', '.join(repr(e) for e in empty)} {'has' if len(empty) == 1 else 'have'} no images" if empty
                  else f"max_cols is {max_cols}")
        return _note("No images to show", empty_note or reason)
    bar = 0.55 if any(name in colour_rows for name in names) else 0.0  # room for the colour bars
    cell = min(0.66, (PAGE_WIDTH - 0.15 - bar) / n)  # 10 columns: 0.66 inch per image (0.62 with a colour bar)
    width = min(PAGE_WIDTH, 0.15 + cell * n + bar)
    chars = max(20, int(width * 72 / 5.3))  # characters of 9-point text in a line of the figure's width
    titles = [textwrap.fill(model_label(name), chars) for name in names]
    name_h = [0.07 + 0.16 * (t.count("\n") + 1) for t in titles]  # a row's name, above its images
    if column_titles is not None:
        heads = [str(t) for t in column_titles]
        if len(heads) < n:
            raise ValueError(f"column_titles has {len(heads)} titles for {n} columns")
    elif labels is not None:
        heads = [class_names.get(int(labels[c]), str(labels[c])) for c in range(n)]
    else:
        heads = None
    top = 0.2 * (1 + max(h.count("\n") for h in heads[:n])) if heads else 0.0  # titles over the first row
    fig = plt.figure(figsize=(width, 0.1 + top + sum(name_h) + cell * len(names)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.02, wspace=0.08, hspace=0.0)  # images close, not padded apart
    ratios = [v for r in range(len(names)) for v in (name_h[r], cell)]
    gs = fig.add_gridspec(2 * len(names), n, height_ratios=ratios)
    # the image axes first, row by row (fig.axes[:n] is the first row), then the row names and the colour bars
    axes = np.array([[fig.add_subplot(gs[2 * r + 1, c]) for c in range(n)] for r in range(len(names))])
    for r, name in enumerate(names):
        data = np.asarray(rows[name])
        if name in colour_rows:
            kw = dict(cmap=colour_rows[name], vmin=0, vmax=max(float(np.nanmax(data[:n])), 1e-6))
        else:
            kw = dict(cmap="gray", vmin=0, vmax=1)
        for c in range(n):
            ax = axes[r, c]
            im = ax.imshow(data[c], **kw)
            ax.set_xticks([]), ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            if r == 0 and heads:
                ax.set_title(heads[c], fontsize=9)
        if name in colour_rows:
            cb = fig.colorbar(im, ax=list(axes[r, :]), location="right", fraction=0.04, pad=0.02, aspect=6)
            cb.set_ticks([0, kw["vmax"]])
            cb.ax.set_yticklabels(["0", f"{kw['vmax']:.2g}"], fontsize=7)
            cb.set_label(textwrap.fill(colour_labels.get(name, model_label(name)), 10), fontsize=7)
    for r, title in enumerate(titles):
        head = fig.add_subplot(gs[2 * r, :], label=f"row name {r}")
        head.axis("off")
        head.text(0.0, 0.0, title, transform=head.transAxes, ha="left", va="bottom", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- tables


def _fmt(m: dict, digits: int) -> str:
    if not np.isfinite(m["mean"]):
        return "∞" if m["mean"] > 0 else "—"
    return ci_text(m, digits)


def _digits(metric: str, digits: int) -> int:
    return 2 if metric == "psnr" else digits


def ci_table(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "id2", "id2_within"), digits: int = 3,
             index_name: str = "", extra: dict[str, dict] | None = None):
    """A table for the page: one row per model, each cell the mean over its 95% CI in small grey type.

    Parameters
    ----------
    results : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
    extra : dict of str -> dict, optional
        Further plain columns per model (e.g. "trained on"), shown first.

    Returns
    -------
    pandas Styler
        Renders as HTML in notebooks and in the book; ``.data`` is the DataFrame of plain strings.
    """
    rows = {}
    for name, res in results.items():
        row = dict((extra or {}).get(name, {}))
        for k in metrics:
            if k not in res:
                row[metric_label(k, short=True)] = "—"
                continue
            m = res[k]
            d = _digits(k, digits)
            if not np.isfinite(m["mean"]):
                row[metric_label(k, short=True)] = _fmt(m, d)
            else:
                row[metric_label(k, short=True)] = (f"{m['mean']:.{d}f}<br><span class='ci'>[{m['ci_low']:.{d}f}, "
                                                    f"{m['ci_high']:.{d}f}]</span>")
        rows[model_label(name)] = row
    df = pd.DataFrame.from_dict(rows, orient="index").rename_axis(index_name or None)
    styles = [{"selector": "td", "props": "white-space: nowrap; text-align: right;"},
              {"selector": "th", "props": "text-align: left;"},
              {"selector": ".ci", "props": "color: #777; font-size: 80%;"}]
    return df.style.set_table_styles(styles).format(escape=None)


# ----------------------------------------------------------------------------- comparisons


def _pooled(res: Mapping, metric: str) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high) of ``res[metric]``, NaN where missing (drawn as a gap, never as a wrong value)."""
    m = res.get(metric) if isinstance(res, Mapping) else None
    if not isinstance(m, Mapping):
        return (np.nan, np.nan, np.nan)

    def num(k):
        v = m.get(k)
        try:
            return float(v)
        except (TypeError, ValueError):
            return np.nan

    return num("mean"), num("ci_low"), num("ci_high")


def metric_ci_plot(results: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r", "id2_within"),
                   reference: dict[str, tuple[str, float]] | None = None, empty_note: str | None = None):
    """Means with 95% CI bars, one panel per metric, one row per model (reader names).

    ``reference`` maps metric -> (label, value) drawn as a dashed vertical line (e.g. the best baseline). A model
    without a metric (or with a non-finite one) has no dot in that panel. Returns None (and shows a note) when
    ``results`` is empty.
    """
    names = list(results or {})
    if not names or not metrics:
        return _nothing_to_plot("no models were given" if not names else "no metrics were given", empty_note)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.3 * len(names) + 1.0), sharey=True,
                             squeeze=False)
    y = np.arange(len(names))
    for ax, k in zip(axes[0], metrics):
        mean, lo, hi = (np.array(v, dtype=float) for v in zip(*(_pooled(results[n], k) for n in names)))
        ok = np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[ok], y[ok], xerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", ms=4, capsize=2)
        if reference and k in reference:
            ax.axvline(reference[k][1], ls="--", c="0.5", lw=1)
        ax.set_xlabel(metric_label(k, short=True))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=3))  # narrow panels: "0.55 0.60 0.65" labels touched
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([model_label(n) for n in names])
    axes[0, 0].invert_yaxis()
    if reference:
        labels = sorted({lab for lab, _ in reference.values()})
        fig.supxlabel("dashed: " + ", ".join(labels), fontsize=9)
    return fig


def training_curves(results: dict, *, stages: tuple[str, ...] | None = None, empty_note: str | None = None):
    """Train (solid) and validation (dashed) loss per epoch for each variant (first seed), one panel per stage.

    ``results`` maps names to :class:`ldm_core.study.runs.VariantResult`; their ``history`` holds aligned per-epoch
    lists ``stage``, ``train_loss`` and ``val_loss``. One legend, below the panels. Returns None (and shows a
    note) when there is no variant, no run, or no epoch of the requested stages.
    """
    results = {n: r for n, r in (results or {}).items() if getattr(r, "runs", None)}
    all_stages = []
    for res in results.values():
        for s in res.runs[0].history.get("stage", []):
            if s not in all_stages:
                all_stages.append(s)
    stages = tuple(s for s in all_stages if stages is None or s in stages)
    if not stages:
        return _nothing_to_plot("no training history" + (f" of the stages {', '.join(stages)}" if stages else ""),
                                empty_note)
    fig, axes = plt.subplots(1, len(stages), figsize=(PAGE_WIDTH, 2.6), squeeze=False, layout="constrained")
    for ax, stage in zip(axes[0], stages):
        for i, (name, res) in enumerate(results.items()):
            h = res.runs[0].history
            idx = [k for k, s in enumerate(h["stage"]) if s == stage]
            if not idx:
                continue
            x = np.arange(1, len(idx) + 1)
            c = f"C{i % 10}"
            ax.plot(x, [h["train_loss"][k] for k in idx], c=c, lw=1, label=model_label(name))
            val = np.array([h["val_loss"][k] for k in idx], dtype=float)
            ok = np.isfinite(val)
            if ok.any():
                ax.plot(x[ok], val[ok], c=c, lw=1, ls="--")
        ax.set_title(f"stage: {stage}")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("loss (solid: train,\ndashed: validation)")
    _legend_below(fig)
    return fig


def sensitivity_plot(series: dict[str, dict[float, float]], *, xlabel: str,
                     ylabel_by_series: dict[str, str] | None = None, log_x: bool = True,
                     marks: dict[str, float] | None = None,
                     ci: dict[str, dict[float, tuple[float, float]]] | None = None, ci_label: str = "95% CI",
                     empty_note: str | None = None):
    """Validation score(s) against a swept value, one panel per series, each point at its own x.

    Parameters
    ----------
    series : dict of str -> {x: y}
        Series name (e.g. "PSNR (dB)") -> the score at each swept value; points are sorted by x here, so the
        order of the mapping does not matter. A non-finite y is left out (a gap in the line).
    xlabel : str
        What was swept (with units); shared by the panels.
    ylabel_by_series : dict of str -> str, optional
        The y label of a series' panel (default: the series' name).
    log_x : bool
        Log x axis. The ticks are the swept values as plain numbers, never overlapping.
    marks : dict of str -> float, optional
        Label -> x drawn as a dotted vertical line (e.g. the value the main comparison used).
    ci : dict of str -> {x: (low, high)}, optional
        Interval per series and x, drawn as a vertical bar from low to high (a flat curve of 0.07 dB then shows as
        flat). Keyed like ``series``; an x without an interval, or with a non-finite bound, has no bar. One legend
        entry ``ci_label`` below the panels.
    empty_note : str, optional
        The reason shown when ``series`` is empty, or every series is (no figure, a one-line note).

    Returns
    -------
    matplotlib Figure, or None when there is no point to draw.

    Raises
    ------
    ValueError
        If a series is not a mapping, or is empty while others are not (their keys no longer match), an x is not a
        finite number or occurs twice, or (``log_x``) an x or a mark is <= 0; if ``ci`` names a series that is not
        drawn, an x the series does not have, or an interval that is not a (low, high) pair with low <= high. The
        message names the series.
    """
    if not isinstance(series, Mapping):
        raise TypeError("sensitivity_plot(series, *, xlabel, ...) takes series as {name: {x: y}}; the separate list "
                        f"of x values is gone: pass {{name: dict(zip(xs, ys))}} (got {type(series).__name__})")
    if not series or all(isinstance(s, Mapping) and not s for s in series.values()):
        return _nothing_to_plot("no series were given" if not series else "no series has a point", empty_note)
    points = {name: _keyed(name, s, log=log_x) for name, s in series.items()}
    for mlabel, xv in (marks or {}).items():
        if log_x and not float(xv) > 0:
            raise ValueError(f"mark {mlabel!r} at x = {xv!r} cannot be drawn on a log axis (pass log_x=False)")
    bars = _intervals(ci, points, log_x=log_x)
    ylabels = ylabel_by_series or {}
    fig, panels, axes = _panel_figure(1, len(points), figsize=(_width(len(points), 2.4), 2.3))
    for ax, (name, pts) in zip(axes[0], points.items()):
        xs = np.array([x for x, _ in pts], dtype=float)
        ys = np.array([np.nan if y is None else y for _, y in pts], dtype=float)
        ax.plot(xs, ys, "o-")
        if bars.get(name):
            bx = np.array(list(bars[name]), dtype=float)
            blo, bhi = (np.array(v, dtype=float) for v in zip(*bars[name].values()))
            ax.errorbar(bx, (blo + bhi) / 2, yerr=(bhi - blo) / 2, fmt="none", ecolor="C0", elinewidth=1, capsize=2.5,
                        label=ci_label)
        if log_x:
            ax.set_xscale("log")
        for mlabel, xv in (marks or {}).items():
            ax.axvline(float(xv), ls=":", c="C3", lw=1, label=mlabel)
        data_ticks(ax, xs)
        ax.set_ylabel(ylabels.get(name, name))
        ax.grid(alpha=0.3)
    _shared_xlabel(panels, axes[0], xlabel)
    _legend_below(fig)
    return fig


def _intervals(ci, points: dict, *, log_x: bool) -> dict[str, dict[float, tuple[float, float]]]:
    """``sensitivity_plot``'s ``ci`` checked against its series: {series: {x: (low, high)}} with finite bounds only."""
    if ci is None:
        return {}
    if not isinstance(ci, Mapping):
        raise ValueError(f"ci must map a series name to {{x: (low, high)}}; got {type(ci).__name__}")
    out = {}
    for name, intervals in ci.items():
        if name not in points:
            raise ValueError(f"ci names the series {name!r}, which is not drawn (series: {list(points)})")
        xs = {x for x, _ in points[name]}
        out[name] = {}
        for x, pair in (_keyed(name, intervals, log=log_x, what="ci of series")
                        if not isinstance(intervals, Mapping) or intervals else []):
            if x not in xs:
                raise ValueError(f"ci of series {name!r}: x value {_plain(x)} is not among the series' x values")
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ValueError(f"ci of series {name!r} at x = {_plain(x)}: expected a (low, high) pair, got "
                                 f"{pair!r}") from None
            if np.isfinite(lo) and np.isfinite(hi):
                if lo > hi:
                    raise ValueError(f"ci of series {name!r} at x = {_plain(x)}: low {lo:g} is above high {hi:g}")
                out[name][x] = (lo, hi)
    return out


def _expected_range(value) -> tuple[float, float] | None:
    """(low, high) of a quoted range, or None when the stage has none (None, NaN, a malformed value)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else None


def trajectory_plot(traj: pd.DataFrame, *, metrics=("psnr", "ssim", "pixel_r"),
                    references: dict[str, dict[str, float]] | None = None, empty_note: str | None = None):
    """Measured mean and 95% CI per stage (dots) over the report's expected range (grey bars, quoted).

    ``traj`` is :func:`ldm_core.study.ledger.trajectory`'s table (a DataFrame, or its records); each row is drawn on the
    line of its own ``stage`` label, top to bottom in the table's order. ``references`` maps a label (e.g. "latent
    ridge") to ``{metric: value}``, drawn as dashed lines so a reader can compare each stage with that baseline. A
    stage without an expected range has no grey bar; a metric missing from the table has no panel. Returns None
    (and shows a note) when there is no stage or no metric to draw.
    """
    traj = pd.DataFrame(traj) if not isinstance(traj, pd.DataFrame) else traj
    metrics = [m for m in metrics if m in traj.columns]
    if traj.empty or "stage" not in traj.columns or not metrics:
        return _nothing_to_plot("the trajectory has no stages" if traj.empty or "stage" not in traj.columns
                                else "the trajectory has none of the metrics", empty_note)
    traj = traj.reset_index(drop=True)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.32 * len(traj) + 1.9), sharey=True,
                             squeeze=False, layout="constrained")
    y = np.arange(len(traj))
    for ax, m in zip(axes[0], metrics):
        first = True
        for i, rng in enumerate(traj[f"{m}_expected"] if f"{m}_expected" in traj.columns else []):
            rng = _expected_range(rng)
            if rng is not None:
                ax.barh(i, rng[1] - rng[0], left=rng[0], height=0.6, color="0.87",
                        label="report's expectation" if first else None)
                first = False
        mean = traj[m].to_numpy(dtype=float)
        lo = traj[f"{m}_lo"].to_numpy(dtype=float) if f"{m}_lo" in traj.columns else mean
        hi = traj[f"{m}_hi"].to_numpy(dtype=float) if f"{m}_hi" in traj.columns else mean
        ok = np.isfinite(mean) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[ok], y[ok], xerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o", ms=4, c="C0", capsize=2,
                    label="measured (test, 95% CI)", zorder=3)  # above the reference lines, which cross the dots
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals and np.isfinite(vals[m]):
                ax.axvline(vals[m], ls="--", lw=1, c=f"C{j + 1}", label=lab, alpha=0.7, zorder=1)
        ax.set_xlabel(metric_label(m, short=True))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=3))  # few ticks: the panels are narrow
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([str(s) for s in traj["stage"]])
    axes[0, 0].invert_yaxis()
    handles, labels = axes[0, -1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)  # below: the panels keep the width
    return fig


def sweep_heatmaps(scores: dict, *, rows: list, cols: list, panels: list, row_label: str, col_label: str,
                   panel_label: str, value_label: str, fmt: str = ".3f", empty_note: str | None = None):
    """One seaborn heat map per panel value: ``scores[(row, col, panel)]`` -> value, one shared colour scale.

    The colour bar (right of the last panel) is labelled ``value_label``; the best cell over all panels (highest
    value) is outlined; missing cells are blank. Returns None (and shows a note) when there are no scores, rows,
    columns or panels.
    """
    import seaborn as sns
    from matplotlib.patches import Rectangle

    rows, cols, panels = list(rows or []), list(cols or []), list(panels or [])
    if not scores or not rows or not cols or not panels:
        return _nothing_to_plot("the sweep has no scores" if not scores else "the sweep grid is empty", empty_note)
    grid_keys = [(r, c, p) for p in panels for r in rows for c in cols]
    vals = [float(scores[k]) for k in grid_keys if k in scores and np.isfinite(scores[k])]
    vmin, vmax = (min(vals), max(vals)) if vals else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5  # one value: a visible colour, a readable bar
    best = max((k for k in grid_keys if k in scores and np.isfinite(scores[k])), key=lambda k: scores[k],
               default=None)
    fig, axes = plt.subplots(1, len(panels), figsize=(_width(len(panels), 2.5), 0.4 * len(rows) + 1.4), squeeze=False)
    for j, (ax, pv) in enumerate(zip(axes[0], panels)):
        grid = pd.DataFrame([[scores.get((r, c, pv), np.nan) for c in cols] for r in rows],
                            index=[f"{r:g}" if isinstance(r, float) else str(r) for r in rows],
                            columns=[str(c) for c in cols], dtype=float)
        last = j == len(panels) - 1
        sns.heatmap(grid, ax=ax, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap="viridis", cbar=last,
                    cbar_kws={"label": value_label} if last else None, annot_kws={"fontsize": 8})
        if best is not None and best[2] == pv:
            ax.add_patch(Rectangle((cols.index(best[1]), rows.index(best[0])), 1, 1, fill=False, ec="red", lw=2))
        ax.set_title(f"{panel_label} = {pv}")
        ax.set_xlabel(col_label)
        ax.set_ylabel(row_label if j == 0 else "")
    return fig


def scaling_plot(curves: dict[str, dict], *, metrics=("psnr", "ssim", "pixel_r"), bands: dict | None = None,
                 band_label: str = "", xlabel: str = "training trials", log_x: bool = True,
                 references: dict[str, dict[str, float]] | None = None, empty_note: str | None = None):
    """Metric against a size (trials, images) with 95% CI bars, one line per model, one panel per metric.

    Parameters
    ----------
    curves : dict of str -> {size: {metric: {"mean", "ci_low", "ci_high"}}}
        :func:`ldm_core.study.benchmark.learning_curve` / :func:`ldm_core.study.prior_study.prior_size_curve`'s output; sizes
        may come in any order and as numeric strings (a ``metrics.json`` read back): each point is drawn at its own
        size. A size without the metric (or with a non-finite one) is left out.
    bands : dict of metric -> (low, high), optional
        A (quoted) range shaded grey, labelled ``band_label``.
    log_x : bool
        Log size axis; ignored (linear) when a size is 0. The ticks are the sizes as plain numbers, never
        overlapping. Lines of several models are nudged sideways (2 % of a step) so their CI bars stay apart.
    references : dict of str -> {metric: value}, optional
        Dashed horizontal lines (e.g. a baseline).
    empty_note : str, optional
        The reason shown when ``curves`` is empty, or every curve is (no figure, a one-line note).

    One legend (curves, band, references) below the panels.

    Raises
    ------
    ValueError
        If a curve is empty while others are not, or a size is not a finite number >= 0 (negative on a log axis),
        or occurs twice; the message names the curve.
    """
    if not curves or all(isinstance(c, Mapping) and not c for c in curves.values()):
        return _nothing_to_plot("no curves were given" if not curves else "no curve has a point", empty_note)
    points = {name: _keyed(name, c, log=False, what="curve") for name, c in curves.items()}
    sizes = sorted({x for pts in points.values() for x, _ in pts})
    if min(sizes) < 0:
        bad = next(name for name, pts in points.items() if pts[0][0] < 0)
        raise ValueError(f"curve {bad!r}: a size is negative ({_plain(min(sizes))})")
    log_x = log_x and min(sizes) > 0
    fig, panels, axes = _panel_figure(1, len(metrics), figsize=(PAGE_WIDTH, 2.5))
    span = (max(sizes) - min(sizes)) or 1.0
    for ax, m in zip(axes[0], metrics):
        if bands and m in bands:
            lo, hi = bands[m]
            ax.axhspan(lo, hi, color="0.88", label=band_label or None)
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals:
                ax.axhline(vals[m], ls="--", lw=1, c=f"C{len(curves) + j}", label=lab)
        for i, (name, pts) in enumerate(points.items()):
            xs = np.array([x for x, _ in pts], dtype=float)
            mean, lo, hi = (np.array(v, dtype=float) for v in zip(*(_pooled(p, m) for _, p in pts)))
            ok = np.isfinite(mean)
            lo, hi = np.where(np.isfinite(lo), lo, mean), np.where(np.isfinite(hi), hi, mean)
            off = 0.02 * (i - (len(points) - 1) / 2)
            x = xs * (1 + off) if log_x else xs + off * span
            ax.errorbar(x[ok], mean[ok], yerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="o-", ms=4, capsize=2,
                        c=f"C{i % 10}", label=model_label(name))
        if log_x:
            ax.set_xscale("log")
        data_ticks(ax, sizes)
        ax.set_ylabel(metric_label(m, short=True))
        ax.grid(alpha=0.3)
    _shared_xlabel(panels, axes[0], xlabel)
    _legend_below(fig)
    return fig


def _panel_figure(nrows: int, ncols: int, *, figsize, **kw):
    """(figure, panels, axes): a constrained-layout figure whose panels sit in one subfigure.

    The subfigure carries the panels' shared x label (:func:`_shared_xlabel`), so that a legend below the panels
    (:func:`_legend_below`, on the figure) comes under that label instead of on top of it: constrained layout does
    not stack a figure's supxlabel and its outside legend. ``figure.axes`` lists the panels as usual; the shared
    label is the middle panel's x label (:func:`_shared_xlabel`).
    """
    fig = plt.figure(figsize=figsize, layout="constrained")
    panels = fig.subfigures(1, 1)
    axes = panels.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, panels, axes


def _shared_xlabel(fig, axes, xlabel: str) -> None:
    """One x label under a row of panels that share it (a label per panel overlaps its neighbours).

    The label is the middle panel's own x label (for an even count, the left-middle panel's, moved to the gap between
    the two middle panels), not the subfigure's ``supxlabel``: constrained layout places an axis label below that
    axis's tick labels however :class:`DataTickFormatter` angles them at draw time, while it left a ``supxlabel`` on top
    of angled tick labels.
    """
    axes = list(axes)
    mid = axes[(len(axes) - 1) // 2]
    mid.set_xlabel(xlabel)
    if len(axes) > 1 and len(axes) % 2 == 0:
        mid.xaxis.label.set_x(1.08)  # about half the gap between panels beyond the panel's right edge (axes units)


def prior_training_curves(histories: dict[str, dict], *, empty_note: str | None = None):
    """Training losses of image priors: the VAE's negative ELBO (left) and the denoiser's MSE (right) per step.

    ``histories`` maps a name to :attr:`ldm_core.prior.ImagePrior.history` (``vae_loss``, ``vae_log_every``,
    ``diffusion_loss``, ``diffusion_log_every``): losses averaged over blocks of steps. Returns None (and shows a
    note) when no history holds a loss.
    """
    histories = histories or {}
    if not any(len(h.get(f"{k}_loss", []) or []) for h in histories.values() for k in ("vae", "diffusion")):
        return _nothing_to_plot("no training losses were recorded", empty_note)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 2.4), squeeze=False, layout="constrained")
    for i, (name, h) in enumerate(histories.items()):
        for ax, key in zip(axes[0], ("vae", "diffusion")):
            y = np.asarray(h.get(f"{key}_loss", []) or [], dtype=float)
            if len(y):
                x = (np.arange(len(y)) + 1) * int(h.get(f"{key}_log_every") or 1)
                ax.plot(x, y, lw=1, c=f"C{i % 10}", label=model_label(name))
    axes[0, 0].set_title("VAE")
    axes[0, 0].set_ylabel("negative ELBO (nats per image)")
    axes[0, 1].set_title("latent diffusion")
    axes[0, 1].set_ylabel("denoising MSE")
    for ax in axes[0]:
        ax.set_xlabel("optimiser step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    _legend_below(fig)
    return fig


def observation_plot(slope: np.ndarray, noise: np.ndarray, r2: np.ndarray, *, empty_note: str | None = None):
    """Per latent dimension: the map's cross-validated slope lambda, noise sigma and R² (stage-2 calibration).

    Three panels stacked over the page width, sharing the dimension axis (each dimension keeps its label); a line at
    0 (an R² below it: the map predicts that dimension worse than its mean). The three arrays hold one value per
    latent dimension (numbered from 1). Returns None (and shows a note) when
    they are empty.

    Raises
    ------
    ValueError
        If the three arrays differ in length.
    """
    slope, noise, r2 = (np.asarray(v, dtype=float).ravel() for v in (slope, noise, r2))
    if not (len(slope) == len(noise) == len(r2)):
        raise ValueError(f"slope, noise and r2 need one value per latent dimension each; got lengths "
                         f"{len(slope)}, {len(noise)}, {len(r2)}")
    d = len(slope)
    if d == 0:
        return _nothing_to_plot("the map has no latent dimensions", empty_note)
    fig, axes = plt.subplots(3, 1, figsize=(PAGE_WIDTH, 3.9), sharex=True, squeeze=False, layout="constrained")
    for ax, vals, label in zip(axes[:, 0], (slope, noise, r2), ("slope λ", "noise σ\n(code std units)",
                                                                  "cross-validated\nR²")):
        ax.bar(np.arange(1, d + 1), vals, color="C0")
        ax.axhline(0.0, c="0.3", lw=0.8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    data_ticks(axes[0, 0], np.arange(1, d + 1))  # shared by the three panels
    axes[-1, 0].set_xlabel("latent dimension")
    return fig


# ----------------------------------------------------------------------------- diagnostics (chapters 01 and 04)


def ladder_plot(results: dict[str, dict], *, groups: dict[str, str], metrics=("psnr", "ssim", "pixel_r"),
                references: dict[str, dict[str, float]] | None = None, empty_note: str | None = None):
    """Mean and 95% CI per model as horizontal bars, one panel per metric, bars coloured by group.

    Parameters
    ----------
    results : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
        In the order to draw, top to bottom (reader names via :func:`~ldm_core.study.names.model_label`). A missing or
        non-finite metric draws no bar.
    groups : dict of str -> str
        Model -> group label (e.g. "cumulative fixes", "leave-one-out"); one colour and one legend entry per group.
    references : dict of str -> {metric: value}, optional
        Baselines drawn as dashed vertical lines, one colour each. One legend (groups and baselines) below the panels.
    empty_note : str, optional
        The reason shown when ``results`` is empty (no figure, a one-line note).

    Raises
    ------
    ValueError
        If a model has no group.
    """
    names = list(results or {})
    if not names:
        return _nothing_to_plot("no models were given", empty_note)
    missing = [n for n in names if n not in groups]
    if missing:
        raise ValueError(f"ladder_plot: no group for {missing} (groups names {sorted(groups)})")
    labels = list(dict.fromkeys(groups[n] for n in names))
    colour = {g: f"C{i}" for i, g in enumerate(labels)}
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH, 0.28 * len(names) + 1.6), sharey=True,
                             squeeze=False)
    y = np.arange(len(names))
    for ax, m in zip(axes[0], metrics):
        for g in labels:
            idx = [i for i, n in enumerate(names) if groups[n] == g]
            mean, lo, hi = (np.array(v, dtype=float) for v in zip(*(_pooled(results[names[i]], m) for i in idx)))
            ok = np.isfinite(mean)
            err = np.array([np.where(np.isfinite(lo), mean - lo, 0.0), np.where(np.isfinite(hi), hi - mean, 0.0)])
            ax.barh(y[idx][ok], mean[ok], xerr=err[:, ok], color=colour[g], alpha=0.8, capsize=2, label=g)
        for j, (lab, vals) in enumerate((references or {}).items()):
            if m in vals:
                ax.axvline(vals[m], ls="--", lw=1, c=f"C{len(labels) + j}", label=lab)
        ax.set_xlabel(metric_label(m, short=True))
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels([model_label(n) for n in names])
    axes[0, 0].invert_yaxis()
    handles, labels_ = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="outside lower center", ncols=min(len(labels_), 3))
    return fig


def sampler_diagnosis_plot(study, *, empty_note: str | None = None):
    """Two panels: each denoiser's x0 error against t beside the exact Gaussian denoiser's, and the size of x_t
    along each sampling run against the forward process.

    Parameters
    ----------
    study : SamplerStudy
        :func:`ldm_core.study.diagnostics.sampler_study`'s result: ``x0_error_table()`` (index t, one column per model, then
        "exact Gaussian denoiser", drawn dashed grey) and ``trajectories`` ((model, sampler) -> run, each with
        ``t``, ``x_t_rms`` and ``forward_rms``; each run is drawn against its own ``t``). Colour is the model (as in
        the left panel), line style the sampler; the legend keys the samplers in neutral grey, so that no sampler
        key carries one model's colour. One legend below both panels. Returns None (and shows a note) when there
        are no errors and no runs.
    """
    errors = study.x0_error_table() if getattr(study, "errors", None) else None
    trajectories = dict(study.trajectories or {})
    if (errors is None or errors.empty) and not trajectories:
        return _nothing_to_plot("the sampler study has no models", empty_note)
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.0), layout="constrained")
    ax = axes[0]
    model_cols = list(errors.columns[:-1]) if errors is not None and len(errors.columns) else []
    if errors is not None and not errors.empty:
        errors = errors.sort_index()
        for i, name in enumerate(model_cols):
            ax.plot(errors.index, errors[name], "o-", ms=3, c=f"C{i}", label=f"x0 error: {model_label(name)}")
        ax.plot(errors.index, errors.iloc[:, -1], "s--", ms=3, c="0.4", label=f"x0 error: {errors.columns[-1]}")
        ax.set_yscale("log")
    ax.set_xlabel("timestep t (noise level)")
    ax.set_ylabel("x0 error / latent variance")
    ax.grid(alpha=0.3)
    ax = axes[1]
    colours = {name: f"C{i}" for i, name in enumerate(model_cols)}
    styles = {}
    if trajectories:
        first = next(iter(trajectories.values()))
        order = np.argsort(np.asarray(first["t"]))
        ax.plot(np.asarray(first["t"])[order], np.asarray(first["forward_rms"])[order], c="0.4", ls="--", lw=1,
                label="x_t of the forward process")
        for (name, sampler), tr in trajectories.items():
            ls = styles.setdefault(sampler, ("-", ":", "-.")[len(styles) % 3])
            order = np.argsort(np.asarray(tr["t"]))
            ax.plot(np.asarray(tr["t"])[order], np.asarray(tr["x_t_rms"])[order], c=colours.get(name, "k"), ls=ls,
                    lw=1.5)
        ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("timestep t (sampling runs from 999 to 0)")
    ax.set_ylabel("RMS of x_t (colour: model)")
    ax.grid(alpha=0.3)
    handles, names = [], []
    for a in axes:
        for h, lab in zip(*a.get_legend_handles_labels()):
            handles.append(h), names.append(lab)
    for sampler, ls in styles.items():  # line style = sampler, in neutral grey: colour stays the model's
        handles.append(Line2D([], [], c="0.3", ls=ls, lw=1.5)), names.append(f"x_t: {sampler}")
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=2)
    return fig


def neighbour_correlation_plot(curve: dict[int, dict], *, marks: dict[str, float] | None = None,
                               empty_note: str | None = None):
    """Mean across-trial correlation of voxels a given distance apart in file order, with the random-pair level.

    ``curve`` is :func:`ldm_core.study.diagnostics.neighbour_correlation_curve`'s output ({distance: {"adjacent",
    "random"}}, any key order); ``marks`` maps a label to a distance drawn as a dotted vertical line (e.g. the voxels
    of one token). Log distance axis ticked at the smallest and largest measured distance, the powers of ten
    between them and the marks (the tens of measured distances could not all carry a label). Returns None (and shows
    a note) when ``curve`` is empty.

    Raises
    ------
    ValueError
        If a distance is not a finite number > 0.
    """
    if not curve:
        return _nothing_to_plot("no distances were measured", empty_note)
    pts = _keyed("voxel pairs this far apart", curve, log=True, what="curve")
    lags = np.array([x for x, _ in pts])
    fig, ax = plt.subplots(figsize=(0.7 * PAGE_WIDTH, 2.5), layout="constrained")
    ax.plot(lags, [p["adjacent"] for _, p in pts], "o-", ms=3, label="voxel pairs this far apart")
    ax.axhline(pts[0][1]["random"], ls="--", c="0.5", lw=1, label="random voxel pairs")
    for j, (lab, x) in enumerate((marks or {}).items()):
        ax.axvline(x, ls=":", c=f"C{3 + j}", lw=1.2, label=lab)
    ax.set_xscale("log")
    # tens of measured distances cannot all carry a label: tick the powers of ten, the extremes and the marks
    decades = 10.0 ** np.arange(math.ceil(math.log10(lags[0])), math.floor(math.log10(lags[-1])) + 1)
    data_ticks(ax, [lags[0], lags[-1], *decades, *[float(x) for x in (marks or {}).values() if float(x) > 0]])
    ax.set_xlabel("distance in file order (voxels)")
    ax.set_ylabel("mean r over trials")
    ax.grid(alpha=0.3)
    _legend_below(fig)
    return fig


def verdict_bars(counts: dict[str, int], *, xlabel: str = "rows of the ledger", empty_note: str | None = None):
    """Horizontal bars: how many ledger rows (or claims: ``xlabel="claims"``) got each kind of verdict
    (:func:`ldm_core.study.ledger.verdict_counts`). Returns None (and shows a note) when ``counts`` is empty."""
    colours = {"confirmed": "C2", "refuted (below the claim)": "C3", "refuted (above the claim)": "C1",
               "refuted (both sides)": "C4", "inconclusive": "0.6",
               "target levels (not a prediction)": "C9", "untestable": "0.8"}
    names = list(counts or {})
    if not names:
        return _nothing_to_plot("there are no verdicts", empty_note)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH * 0.7, 0.35 * len(names) + 0.8))
    ax.barh(range(len(names)), [counts[n] for n in names], color=[colours.get(n, "C0") for n in names])
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    for i, n in enumerate(names):
        ax.text(counts[n] + 0.2, i, str(counts[n]), va="center", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- perception and distortion

_PD_LABELS = {
    "psnr": "PSNR to the seen image (dB)\nhigher = closer to the target",
    "ssim": "SSIM to the seen image\nhigher = closer to the target",
    "pixel_r": "pixel correlation r with the seen image\nhigher = closer to the target",
    "mse": "MSE to the seen image\nlower = closer to the target",
    "kid_digit": "KID to real digits\n(digit classifier's features)\nlower = closer to real digits",
    "digit_acc": "digit classified as the one seen\n(share of images, higher = better)",
    "feature_id2": "2-way identification in classifier features\nhigher = better",
}
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">", "p", "h", "*")


def perception_distortion_plot(points: dict[str, dict[str, dict]], *, x: str = "psnr", y: str = "kid_digit",
                               xlabel: str | None = None, ylabel: str | None = None, zero_line: bool | None = None,
                               empty_note: str | None = None):
    """The perception-distortion plane (Blau and Michaeli, CVPR 2018): one marker per decoder, 95% CIs both ways.

    Distortion (x, default PSNR to the seen image, higher = closer) against perception (y, default KID between the
    reconstructions and real digits the classifier never saw, in its penultimate features; lower = closer to
    real digits). A decoder that averages samples moves right and up (less distortion, less realistic); a
    sampler moves left and down. Each point has its own marker and colour and is named in the legend, below the
    axes (the plane keeps the page width).

    Parameters
    ----------
    points : dict of str -> {metric: {"mean", "ci_low", "ci_high"}}
        Decoder name -> its metrics (e.g. :func:`ldm_core.metrics.perception_metrics` merged with ``evaluate``).
        A decoder without a finite mean on both axes is not drawn (a note above the axes names it); a missing CI
        draws the point without that bar.
    x, y : str
        The metrics on each axis. Axis labels say the unit and which way is better (``xlabel`` / ``ylabel``
        override them, e.g. for a dataset whose images are not digits).
    zero_line : bool, optional
        Draw the line y = 0 (the KID of two samples of one distribution). Default: when ``y`` starts with "kid".
    empty_note : str, optional
        The reason shown when no decoder can be drawn (no figure, a one-line note).

    Returns
    -------
    matplotlib Figure, or None when no decoder has both metrics.
    """
    points = points or {}
    drawable, skipped = {}, []
    for name, res in points.items():
        px, py = _pooled(res, x), _pooled(res, y)
        if np.isfinite(px[0]) and np.isfinite(py[0]):
            drawable[name] = (px, py)
        else:
            skipped.append(name)
    if not drawable:
        reason = ("no decoders were given" if not points
                  else f"no decoder has both {metric_label(x, short=True)} and {metric_label(y, short=True)}")
        return _nothing_to_plot(reason, empty_note)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.4), layout="constrained")
    for i, (name, ((mx, lx, hx), (my, ly, hy))) in enumerate(drawable.items()):
        xerr = [[mx - lx], [hx - mx]] if np.isfinite(lx) and np.isfinite(hx) else None
        yerr = [[my - ly], [hy - my]] if np.isfinite(ly) and np.isfinite(hy) else None
        ax.errorbar([mx], [my], xerr=xerr, yerr=yerr, fmt=_MARKERS[i % len(_MARKERS)], ms=6, capsize=2.5, lw=1,
                    c=f"C{i % 10}", label=model_label(name))
    zero_label = ("KID 0: indistinguishable from real digits (the unbiased estimate can fall below 0)"
                  if y.startswith("kid") else "0")
    if zero_line if zero_line is not None else y.startswith("kid"):
        ax.axhline(0.0, ls=":", lw=1, c="0.5", label=zero_label)
    ax.set_xlabel(xlabel or _PD_LABELS.get(x, metric_label(x)))
    ax.set_ylabel(ylabel or _PD_LABELS.get(y, metric_label(y)))
    ax.grid(alpha=0.3)
    if skipped:
        ax.set_title("not drawn (a metric missing): " + ", ".join(model_label(n) for n in skipped), fontsize=8,
                     loc="left")
    _legend_below(fig, last=(zero_label,))
    return fig
