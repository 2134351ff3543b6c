"""The page's figure conventions: the book style and width, legends below the panels, a note instead of an empty
figure, readable keys, and ticks at the data's own values (:class:`DataTickFormatter`, :func:`data_ticks`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
from matplotlib import ticker as mticker


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


def _thinned(n_labels: int, display_order: list, largest: int, is_clear, position) -> list[bool]:
    """Which labels to keep: walk ``display_order`` keeping each label that ``is_clear(kept, i)`` of the last kept one.

    ``largest`` is the largest value's label index; ``position[i]`` is label i's place along the axis."""
    kept = [display_order[0]]
    for i in display_order[1:]:
        if is_clear(kept[-1], i):
            kept.append(i)
    if largest not in kept:  # keep the largest value's label; drop its overlapping neighbours instead
        kept = [i for i in kept if (is_clear(i, largest) if position[i] <= position[largest] else is_clear(largest, i))]
        kept.append(largest)
    return [i in kept for i in range(n_labels)]


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
        axis, ax = self.axis, self.axis.axes
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
        largest = max(idx, key=lambda i: values[i])
        return labels, angle, set(), _thinned(len(values), order, largest, fits(labels, angle), pos)


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
