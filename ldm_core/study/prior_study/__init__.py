"""The protocol of the image-prior chapter: guard, screens on validation, prior-size curve, baselines, robustness.

Chapter 07 (:mod:`ldm_core.prior`, :mod:`ldm_core.latent_map`, :mod:`ldm_core.prior_ldm`) chooses its model on the
validation trials in three greedy steps -- the kind of fMRI -> latent map, then the number of voxels it reads (both
scored by direct decoding), then the decoding (direct, refinement at several strengths and noise levels, from noise;
then guidance and a single sample for the best) -- and only then trains the chosen configuration with every seed
and scores the test trials. The functions here are those steps and the chapter's analyses (does the prior fit the
stimuli, the perception-distortion plane, the robustness checks), so the notebook holds the narrative and the
calls. Every selection fits on the fitting trials only and reads validation scores; none reads test numbers for a
choice.

Models are named for what they compute (:func:`model_name`): a model is called an LDM only when its decoder samples
with diffusion; trial counts in names come from the data.

Modules: ``guard``, ``naming``, ``fit_check``, ``screens`` (with the baselines), ``tables``, ``perception``,
``robustness``. Every name is imported from here.
"""
from .guard import (guarded_prior_images, guard_summary, prior_phrase, kid_axis_label, val_score, DIRECT,
                    prior_source_text)
from .naming import (decoder_name, is_ldm, model_name, model_names)
from .fit_check import (prior_fit_rule, prior_fit_check, prior_fit_text, prior_fit_table)
from .screens import (budget_check, screen_maps, screen_decoders, prior_size_curve, baseline_decoders,
                      evaluate_baselines, BaselineScores, best_diffusion_pair, budget_display, known_answer_text,
                      epsilon_findings, large_number, RUNAWAY)
from .tables import (leakage_table, prior_table, known_answer_display, voxel_curve, strength_curve,
                     screen_followup_text, prior_size_text)
from .perception import (Perception, perception_model, add_perception, perception_distortion,
                         perception_distortion_text, paired_rows, kid_reference, kid_text, published_comparison)
from .robustness import (guard_at, leak_sensitivity, leak_sensitivity_table, seed_bootstrap_table,
                         selection_stability_table, count_test_uses, stability_choices, resolved_params)

__all__ = ['guarded_prior_images', 'guard_summary', 'prior_phrase', 'kid_axis_label', 'budget_check', 'screen_maps',
           'screen_decoders', 'prior_size_curve', 'baseline_decoders', 'evaluate_baselines', 'BaselineScores',
           'val_score', 'leakage_table', 'prior_table', 'known_answer_display', 'voxel_curve', 'strength_curve',
           'decoder_name', 'is_ldm', 'model_name', 'model_names', 'prior_fit_rule', 'prior_fit_check', 'prior_fit_text',
           'Perception', 'perception_model', 'add_perception', 'perception_distortion', 'perception_distortion_text',
           'paired_rows', 'guard_at', 'leak_sensitivity', 'leak_sensitivity_table', 'seed_bootstrap_table',
           'selection_stability_table', 'count_test_uses', 'best_diffusion_pair', 'stability_choices',
           'prior_fit_table', 'DIRECT', 'budget_display', 'known_answer_text', 'epsilon_findings', 'large_number',
           'screen_followup_text', 'prior_size_text', 'kid_reference', 'kid_text', 'published_comparison',
           'resolved_params', 'RUNAWAY', 'prior_source_text']
