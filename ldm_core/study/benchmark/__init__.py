"""The benchmark chapter's analyses: identification tables, learning curves against paired trials, samples.

- :func:`identification_table`: 2-way, within-digit 2-way and 10-way identification with permutation p-values
  (:func:`ldm_core.metrics.identification_test`; the same shuffle for every seed of a model).
- :func:`learning_curve`: validation quality against the number of fitting trials for several decoders, each size a
  stratified draw of the fitting trials (:func:`ldm_core.splits.subsample_fit`, fMRI z-scored again with the drawn
  trials' statistics), several draws per size, seeds pooled per image; the decoders are given as *fitters*
  (:func:`ridge_fitter`, :func:`latent_ridge_fitter`, :func:`spatial_ldm_fitter`, :func:`prior_ldm_fitter`): callables
  ``fitter(sub_data, draw) -> validation reconstructions``.
- :func:`gain_per_doubling`: the least-squares slope of a curve in log2(trials), and the extrapolated number of
  trials a target would need (an extrapolation, reported as such).
- :func:`more_trials_rows`: claim-14 proxy rows -- does the last step of a learning curve still gain (paired, per
  image)?
- :func:`week1_sweep`: the report's week-1 grid (learning rate x batch size x encoder width), one seed, validation.
- :func:`grid_edges`: on which axes a grid's best cell sits at the edge of the grid (a grid that does not bracket
  its optimum).
- :func:`compute_table`, :func:`sampling_steps`, :func:`sampling_steps_table`, :func:`steps_range`: parameters and
  seconds per model; reconstruction time and validation quality against the number of DDIM steps
  (:func:`format_seconds`, :func:`device_label` write them for a reader).
- :func:`spatial_samples`, :func:`sample_spread`, :func:`stage_steps`, :func:`chapter01_x0_errors`: does a
  decoder use diffusion at all? How much its samples of one trial differ, against how much the trials' images
  differ (:data:`NEGLIGIBLE_SPREAD`); how many optimiser steps a training took; what chapter 01 measured about the
  x0 estimate of an eps-predicting denoiser (why eps-prediction fails at a short budget).
- :func:`prior_model_names`: the names chapter 07 gives its selected model (``extra.model_names``, contract C5), and
  whether it samples with diffusion; a model is called an LDM only when it does.
- :func:`with_perception`: each model's perception metrics (:func:`ldm_core.metrics.perception_metrics`) beside its
  pixel metrics; :func:`ceiling_note` says for how many decoders a metric sits at its ceiling.
- :func:`test_set_use`: how many models the study scores on the same test images (distinct reconstructions,
  decoders apart from references, plus the models a chapter scores without keeping their reconstructions), one row
  per chapter under its title (:func:`chapter_label`); :func:`comparison_roles` marks the planned comparison and
  the exploratory ones.
- :data:`UNPAIRED_BASELINES`: the baselines that learn from the unpaired prior images (a claim about what paired
  trials alone allow cannot rest on them).
- :func:`curve_sizes`: the learning-curve sizes a dataset allows (the full fitting set is always added).
- :func:`decoder_samples`, :func:`samples_figure`: several samples per trial of a diffusion decoder, beside their
  mean, their spread and the direct decoding.

Modules: ``curves``, ``compute``, ``fitters``, ``test_use``. Every name is imported from here.
"""
from .curves import (identification_table, learning_curve, curve_sizes, gain_per_doubling, more_trials_rows)
from .compute import (week1_sweep, format_seconds, device_label, compute_table, sampling_steps, sampling_steps_table,
                      steps_range, grid_edges, spatial_samples, sample_spread, NEGLIGIBLE_SPREAD, stage_steps,
                      chapter01_x0_errors)
from .fitters import (ridge_fitter, latent_ridge_fitter, spatial_ldm_fitter, prior_ldm_fitter)
from .test_use import (eps_budget_rows, prior_model_names, with_perception, ceiling_note, is_reference,
                       UNPAIRED_BASELINES, chapter_label, test_set_use, SAME_RECONSTRUCTION_ATOL,
                       earlier_reconstructions, comparisons_table, comparison_roles, decoder_samples, samples_figure,
                       PLANNED, EXPLORATORY)

__all__ = ['identification_table', 'eps_budget_rows', 'learning_curve', 'curve_sizes', 'gain_per_doubling',
           'ridge_fitter', 'latent_ridge_fitter', 'spatial_ldm_fitter', 'prior_ldm_fitter', 'more_trials_rows',
           'week1_sweep', 'format_seconds', 'device_label', 'compute_table', 'sampling_steps', 'sampling_steps_table',
           'steps_range', 'grid_edges', 'spatial_samples', 'sample_spread', 'NEGLIGIBLE_SPREAD', 'stage_steps',
           'chapter01_x0_errors', 'prior_model_names', 'with_perception', 'ceiling_note', 'is_reference',
           'UNPAIRED_BASELINES', 'chapter_label', 'test_set_use', 'SAME_RECONSTRUCTION_ATOL', 'earlier_reconstructions',
           'comparisons_table', 'comparison_roles', 'decoder_samples', 'samples_figure', 'PLANNED', 'EXPLORATORY']
