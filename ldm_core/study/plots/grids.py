"""Image grids (one row per model, colour bars for value maps) and tables of means with their 95% CIs (:func:`ci_table`).
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...data import LABEL_NAMES
from ..names import ci_text, metric_label, model_label
from .style import PAGE_WIDTH, _note


# ----------------------------------------------------------------------------- images


def _column_heads(n: int, labels, class_names, column_titles) -> list[str] | None:
    """The titles over the first row's ``n`` columns: ``column_titles``, else the class names of ``labels``."""
    if column_titles is not None:
        heads = [str(t) for t in column_titles]
        if len(heads) < n:
            raise ValueError(f"column_titles has {len(heads)} titles for {n} columns")
        return heads
    if labels is not None:
        return [class_names.get(int(labels[c]), str(labels[c])) for c in range(n)]
    return None


def _image_row(fig, axes_row, data: np.ndarray, heads, colour: tuple[str, str] | None) -> None:
    """One row of images, no ticks or spines, titled with ``heads``; ``colour``: (colormap, colour bar label)."""
    kw = (dict(cmap="gray", vmin=0, vmax=1) if colour is None
          else dict(cmap=colour[0], vmin=0, vmax=max(float(np.nanmax(data[:len(axes_row)])), 1e-6)))
    for c, ax in enumerate(axes_row):
        im = ax.imshow(data[c], **kw)
        ax.set_xticks([]), ax.set_yticks([])
        for sp in ax.spines.values():
            sp.set_visible(False)
        if heads:
            ax.set_title(heads[c], fontsize=9)
    if colour is not None:
        cb = fig.colorbar(im, ax=list(axes_row), location="right", fraction=0.04, pad=0.02, aspect=6)
        cb.set_ticks([0, kw["vmax"]])
        cb.ax.set_yticklabels(["0", f"{kw['vmax']:.2g}"], fontsize=7)
        cb.set_label(textwrap.fill(colour[1], 10), fontsize=7)


def image_grid(rows: dict[str, np.ndarray], *, labels: np.ndarray | None = None, max_cols: int = 10,
               class_names: dict[int, str] | None = None, colour_rows: dict[str, str] | None = None,
               colour_labels: dict[str, str] | None = None, column_titles: list[str] | None = None,
               empty_note: str | None = None):
    """One row per entry of ``rows`` (name -> (N, S, S)), one column per image, upright, at most :data:`PAGE_WIDTH`.

    Each row's name stands above its images; up to 10 columns get 0.66 inch per image, more share the page width.

    Parameters
    ----------
    rows : dict of str -> ndarray (N, S, S)
        Images in [0, 1] (grey scale, 0 black) unless the row is in ``colour_rows``. Every row shows its first
        ``min(max_cols, shortest row)`` images.
    labels : ndarray (N,), optional
        Class codes of the columns; titles them with ``class_names`` (default digit69's :data:`LABEL_NAMES`).
    column_titles : list of str, optional
        A title per shown column instead (e.g. "six, r = 0.99"); wins over ``labels``.
    colour_rows : dict of str -> str, optional
        Rows drawn with this colormap from 0 to the row's maximum (e.g. a per-pixel standard deviation), each with
        a colour bar labelled ``colour_labels[row]`` (default: the row's name).
    empty_note : str, optional
        Why there may be nothing to show: when ``rows`` is empty or a row holds no image, the Markdown line "No
        images to show: <empty_note>" replaces the grid (a default reason names the empty rows).

    Returns
    -------
    matplotlib Figure, or None when there was nothing to show.
    """
    colour_rows, colour_labels = colour_rows or {}, colour_labels or {}
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
    heads = _column_heads(n, labels, LABEL_NAMES if class_names is None else class_names, column_titles)
    top = 0.2 * (1 + max(h.count("\n") for h in heads[:n])) if heads else 0.0  # titles over the first row
    fig = plt.figure(figsize=(width, 0.1 + top + sum(name_h) + cell * len(names)), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.02, wspace=0.08, hspace=0.0)  # images close, not padded apart
    gs = fig.add_gridspec(2 * len(names), n, height_ratios=[v for r in range(len(names)) for v in (name_h[r], cell)])
    # the image axes first, row by row (fig.axes[:n] is the first row), then the colour bars and the row names
    axes = np.array([[fig.add_subplot(gs[2 * r + 1, c]) for c in range(n)] for r in range(len(names))])
    for r, name in enumerate(names):
        colour = (colour_rows[name], colour_labels.get(name, model_label(name))) if name in colour_rows else None
        _image_row(fig, axes[r], np.asarray(rows[name]), heads if r == 0 else None, colour)
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
