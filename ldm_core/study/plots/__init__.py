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

Modules: ``style`` (conventions and ticks), ``grids`` (image grids, CI tables), ``curves``, ``chapters`` (one
chapter's figures). Every name is imported from here.
"""
from .style import (PAGE_WIDTH, use_book_style, DataTickFormatter, data_ticks)
from .grids import (image_grid, ci_table)
from .curves import (metric_ci_plot, training_curves, sensitivity_plot, trajectory_plot, sweep_heatmaps, scaling_plot,
                     prior_training_curves, observation_plot)
from .chapters import (verdict_bars, ladder_plot, sampler_diagnosis_plot, neighbour_correlation_plot,
                       perception_distortion_plot)

from ..names import METRIC_LABELS

__all__ = ['PAGE_WIDTH', 'use_book_style', 'image_grid', 'ci_table', 'metric_ci_plot', 'training_curves',
           'sensitivity_plot', 'trajectory_plot', 'sweep_heatmaps', 'scaling_plot', 'prior_training_curves',
           'observation_plot', 'verdict_bars', 'ladder_plot', 'sampler_diagnosis_plot', 'neighbour_correlation_plot',
           'perception_distortion_plot', 'DataTickFormatter', 'data_ticks', 'METRIC_LABELS']
