"""Measurements that answer the report's diagnostic questions (chapter 01).

- :func:`class_decoding`: does the fMRI carry the stimulus class at all? A cross-validated logistic regression
  decoding the class (digit69: six vs nine) from fMRI inside the training trials, with a permutation p-value (scikit-learn's
  ``permutation_test_score``). If fMRI rows were misaligned with their stimuli this would sit at chance.
- :func:`condition_sensitivity`: does the denoiser use the condition and the timestep? The change of its
  output when the fMRI rows are shuffled or t changes, and the gradient of its output with respect to the
  fMRI input.
- :func:`vae_roundtrip`: can the VAE decoder reconstruct anything? Images passed through encoder mean and
  decoder -- the ceiling any latent model with this VAE can reach.
- :func:`parameters_per_sample`: the report's "57,000 parameters per sample" arithmetic, from counts;
  :func:`parameter_table`: the counts of each model by part, per training trial.
- :func:`final_loss_ratio`, :func:`loss_ratio_over_seeds`: the report's "severe overfitting" read on a training
  history -- the validation loss over the training loss in the last epoch of a stage, per seed and over seeds.
- :func:`neighbour_correlation`: does the voxel order of the file carry spatial information? The mean
  across-trial correlation of voxels adjacent in file order against that of random voxel pairs (chapter 04:
  what grouping contiguous voxels into tokens can and cannot mean); :func:`neighbour_correlation_curve` over
  a range of distances.
- :func:`defect_ladder`, :func:`run_ladder`, :func:`leave_one_out_drops`: the original's four defects fixed
  one after another, and each fix removed from the fully fixed model; what each fix is worth on validation.
- :func:`shuffled_fmri_check`: do reconstructions change when a trial gets another trial's fMRI?
- :func:`x0_error_by_timestep`, :func:`sampling_trajectory`, :func:`sampler_comparison`: what a trained denoiser
  does at each noise level, how the size of x_t evolves along a sampler's steps, and what each sampler makes of
  the same model -- set against the exact denoiser of Gaussian latents (:mod:`ldm_core.study.sampler_check`), whose
  samplers' output laws are known in closed form; :func:`sampler_study` runs the three on a few models, and
  :meth:`SamplerStudy.x_t_use` reads from them whether a model's output depends on x_t at all.
- :func:`ledger_note`: what the ledger of chapter 09 will do with a chapter's verdict rows (rows a trivial reference
  would also confirm, rows on the study's own code, proxies, confirmations on validation rows alone).

Modules: ``measures``, ``ladder``, ``sampling``. Every name is imported from here.
"""
from .measures import (class_decoding, condition_sensitivity, vae_roundtrip, parameters_per_sample, parameter_table,
                       neighbour_correlation, neighbour_correlation_curve, final_loss_ratio, loss_ratio_over_seeds)
from .ladder import (LADDER_FIXES, SAMPLER_LABELS, DefectLadder, defect_ladder, LadderRuns, run_ladder,
                     leave_one_out_drops)
from .sampling import (shuffled_fmri_check, x0_error_by_timestep, sampling_trajectory, sampler_comparison, SamplerStudy,
                       sampler_study, ledger_note)

__all__ = ['class_decoding', 'condition_sensitivity', 'vae_roundtrip', 'parameters_per_sample', 'parameter_table',
           'neighbour_correlation', 'neighbour_correlation_curve', 'LADDER_FIXES', 'SAMPLER_LABELS', 'DefectLadder',
           'defect_ladder', 'LadderRuns', 'final_loss_ratio', 'loss_ratio_over_seeds', 'run_ladder',
           'leave_one_out_drops', 'shuffled_fmri_check', 'x0_error_by_timestep', 'sampling_trajectory',
           'sampler_comparison', 'SamplerStudy', 'sampler_study', 'ledger_note']
