"""The claims ledger: every quantitative claim of the report, the rows that measure it, and one verdict per claim.

The ledger is assembled from the chapters' results files, never from typed numbers:

- each chapter stores the verdict rows it computed (``extra["verdicts"]`` of its ``metrics.json``, rows built by
  :func:`ldm_core.study.claims.claim_row` and its siblings, with the keys of :data:`ldm_core.study.claims.ROW_KEYS`);
  :func:`collect_verdicts` gathers them, tagged with the chapter, and refuses rows written before that schema (the
  error names the chapter to re-run);
- :func:`computed_claims` adds the claims that need numbers from several chapters or are arithmetic
  (claims 2, 11a, 12, 13, 16);
- :func:`untestable_claims` lists what this data cannot test, with the reason and what would be needed.

:func:`ledger` joins the three, ordered by claim number, keeps each measurement once (the same model scored in two
chapters is one row naming both), marks the rows that measure the model a claim is about (:func:`subject_models`)
and gives every row an id ("8.4": the fourth row of claim 8). :func:`claim_verdicts` then gives one verdict per
claim by the rule below, against chapter 00's trivial references (:func:`trivial_references`);
:func:`verdict_counts` counts claims, :func:`summary_prose` writes the answer, :func:`claim_table` the per-claim
table. :func:`trajectory` gives each phase's validation-selected model beside the report's expected range,
:func:`headline_rows` the executive summary's table, :func:`final_model` what the final model is, and
:func:`root_cause_evidence`, :func:`selection_text`, :func:`spatial_sampling_text` and :func:`standing_text` the
first page's computed sentences. :func:`chapter_ref` links a chapter inside a sentence with short text.

Modules: ``base`` (constants, chapter links, the data's facts), ``rows`` (the rows of each source), ``subjects``
(the model a claim is about; :func:`ledger`), ``verdicts`` (one verdict per claim), ``tables`` (what the pages show of
them), ``record`` (trajectory, headline, final model), ``sentences`` (the first page's computed sentences). Every name
is imported from here.

The verdict of a claim
----------------------
"""
from .base import (data_facts, chapter_title, chapter_ref, claim_sort_key, RULE, CLAIM_TEXTS, LEDGER_CHAPTERS,
                   TRIVIAL_REFERENCES, REFERENCE_CLAIMS, VERDICT_KINDS, TARGETS, REPRODUCTION_CLAIMS)
from .rows import (collect_verdicts, computed_claims, untestable_claims, headline_decoders, UNTESTABLE, TARGET_LEVELS)
from .subjects import (ledger, subject_models)
from .verdicts import (claim_verdicts, trivial_references, trivial_passes)
from .tables import (verdict_counts, summary_prose, claim_table, claim_table_markdown, contradictions, annotate)
from .record import (trajectory, headline_rows, final_model, model_reconstructions, baseline_references, class_names,
                     classes_are_digits, is_published_data, prior_description, TRAJECTORY)
from .sentences import (standing_text, root_cause_evidence, root_cause_text, selection_text, spatial_sampling_text,
                        SPATIAL_SAMPLING_KEYS)

__doc__ += RULE  # the rule is declared once: here, and (the same text) on the conclusions page

__all__ = ['collect_verdicts', 'computed_claims', 'untestable_claims', 'ledger', 'claim_verdicts', 'verdict_counts',
           'summary_prose', 'claim_table', 'claim_table_markdown', 'contradictions', 'annotate', 'subject_models',
           'trivial_references', 'trivial_passes', 'trajectory', 'headline_rows', 'headline_decoders', 'final_model',
           'model_reconstructions', 'baseline_references', 'data_facts', 'class_names', 'classes_are_digits',
           'is_published_data', 'prior_description', 'chapter_title', 'chapter_ref', 'standing_text',
           'root_cause_evidence', 'root_cause_text', 'selection_text', 'spatial_sampling_text', 'claim_sort_key',
           'RULE', 'CLAIM_TEXTS', 'LEDGER_CHAPTERS', 'TRAJECTORY', 'UNTESTABLE', 'TRIVIAL_REFERENCES',
           'REFERENCE_CLAIMS', 'VERDICT_KINDS', 'TARGETS', 'TARGET_LEVELS', 'REPRODUCTION_CLAIMS',
           'SPATIAL_SAMPLING_KEYS']
