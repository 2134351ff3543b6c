"""The study layer: runs and their cache, the chapter protocol, parameters, verdicts, the ledger, plots, and the
analyses that belong to one chapter. It builds on the core (:mod:`ldm_core` outside this subpackage: models,
noise schedule and samplers, losses, metrics, data, the image prior, decoders, training), which never imports it.

``python -m ldm_core.study`` runs the chapters (:mod:`ldm_core.study.runner`).
"""
