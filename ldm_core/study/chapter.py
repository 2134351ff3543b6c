"""The protocol of a chapter notebook: parameters checked first, results written where they belong.

A chapter notebook has three cells before any work::

    from ldm_core.study.chapter import Chapter
    ch = Chapter("02_unet_fix", globals())     # imports cell: remembers the names defined so far

    data_dir: str = ""  # ...                   # the papermill `parameters` cell (and papermill's injected cell)

    ch.start(globals())                         # checks, then says where the results go

:meth:`Chapter.start`

1. takes every name the parameters cell (and papermill's injected overrides) added to the notebook and refuses
   unknown or misspelled ones -- papermill itself only warns about them and runs on, ignoring the value;
2. validates every value against :data:`ldm_core.study.parameters.CHAPTER_PARAMS` (type, range, list shape),
   naming the parameter, before anything is loaded or trained;
3. checks that the earlier chapters it reads have results (and that each pair of results files is whole);
4. decides where this run writes:

   - ``results_root`` given: ``<results_root>/<chapter>/`` (tests, the study runner's scratch runs);
   - ``publish=True`` (what ``make study`` passes): the published record ``results/<chapter>/``, and only when
     the values are the ``profile``'s (``params/<chapter>.<profile>.yaml`` over the defaults) unless
     ``publish_unprofiled=True`` says otherwise -- that flag is recorded in the results' provenance;
   - otherwise a scratch folder ``runs/<chapter>/<UTC time>-<hash of the values>/`` (git-ignored), so that
     trying another learning rate never overwrites the published record;

   and where it reads earlier chapters' results: ``inputs_root`` if given, else ``results_root`` if given, else
   the published ``results/``;
5. shows the parameters as one short table a reader can read (reader names, values written for people, empty
   values left out; the full record is in ``metrics.json``) and says, with paths relative to the project, where
   results go.

:meth:`Chapter.glue_data` glues the data's counts and class names for the page (``{glue:text}`n_fit```: never a
typed "90 training trials"). A chapter writes its prose in Markdown cells and glues what it computed into it:
:meth:`Chapter.glue_values`, :meth:`Chapter.glue_scores` and :meth:`Chapter.glue_estimates` for numbers
(``{glue:text}`base_psnr:.2f```) and for plain words that depend on them (a verdict, a model's name), shown as
written; a clause with Markdown or a role in it (``{doc}``) goes through :meth:`Chapter.glue_md` and is pasted with
``{glue:md}`key:myst```, or its markup would show raw.
:meth:`Chapter.answer` glues what follows the answer at the top of the page, and appends, by itself, a warning when
chapter 00 found test stimuli repeated among the training stimuli (``extra.test_in_training`` > 0): identification
then measures retrieval, not reconstruction. :meth:`Chapter.inputs` reads an earlier chapter's results;
:meth:`Chapter.write` writes this chapter's.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path

import numpy as np

from ..io import content_key
from .param_labels import PARAM_FORMATTERS, param_label, param_value
from .parameters import CHAPTER_PARAMS, RUN_PARAMS, ParameterError, requirements, validate
from .results import load_results, project_root, results_files_ok, write_results

__all__ = ["Chapter", "ParameterError", "relative", "classes_text", "repeat_warning"]

PLAIN_TYPES = (str, int, float, bool, list, dict, tuple)  # values a parameters cell holds (papermill injects only these)
DATA_CHAPTER = "00_data_and_metrics"  # publishes extra.test_in_training, read by every later chapter's answer


def classes_text(class_names: dict) -> str:
    """ "six and nine"; "class 21, class 22 and class 23" (ascending codes)."""
    from .names import join_words

    return join_words(class_names[c] for c in sorted(class_names))


def repeat_warning(count: int, n_test: int | None = None, threshold: float | None = None, *,
                   source: str = "chapter 0") -> str:
    """The warning appended to a chapter's answer when test stimuli repeat among the training stimuli.

    ``threshold`` is the pixel r of the count (default :data:`ldm_core.splits.REPEAT_THRESHOLD`); ``source`` names
    where the count comes from (empty in chapter 0 itself)."""
    if threshold is None:
        from ..splits import REPEAT_THRESHOLD as threshold
    of = f"{count} of the {n_test} test images" if n_test else f"{count} test image{'s' if count != 1 else ''}"
    verb = "also occurs" if count == 1 and not n_test else "also occur"
    where = f"pixel r > {threshold:g}" + (f"; {source}" if source else "")
    return (f"**Caution:** {of} {verb} among the training images ({where}), so "
            "identification then measures retrieval, not reconstruction: a decoder can recognise the training trial "
            "and copy its image, and the nearest-fMRI copy is the floor to beat.")


def relative(path: str | os.PathLike, root: Path | None = None) -> str:
    """``path`` relative to the project root when it lies inside it, else its last two parts (never a full machine path)."""
    p = Path(path).resolve()
    root = (root or project_root()).resolve()
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(Path("…", *p.parts[-2:]))


def _canonical(v):
    if isinstance(v, (list, tuple)):
        return [_canonical(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _canonical(x) for k, x in v.items()}
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


class _ChapterProse:
    """The prose a chapter glues for its page: values, the data's facts, the answer (part of :class:`Chapter`)."""

    @staticmethod
    def glue_md(key: str, text: str) -> None:
        """Make the Markdown ``text`` available to the page as ``{glue:md}`key``` (myst-nb glue, not displayed here)."""
        from IPython.display import Markdown
        from myst_nb import glue

        glue(key, Markdown(text), display=False)

    @staticmethod
    def glue(key: str, value) -> None:
        """Make ``value`` (its text form) available to the page as ``{glue:text}`key```, not displayed here. A numpy
        scalar (or 0-d array) is glued as the Python value, so that a format spec applies (``{glue:text}`key:.2f```)."""
        from myst_nb import glue

        if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
            value = value.item()
        glue(key, value, display=False)

    def glue_values(self, **values) -> None:
        """:meth:`glue` each value under its keyword: ``ch.glue_values(best_lr=1e-4)`` -> ``{glue:text}`best_lr:g```."""
        for key, value in values.items():
            self.glue(key, value)

    def glue_estimates(self, **estimates: dict) -> None:
        """Glue each estimate ``{"mean", "ci_low", "ci_high"}`` as ``<key>``, ``<key>_low`` and ``<key>_high``."""
        for key, est in estimates.items():
            self.glue_values(**{key: est["mean"], f"{key}_low": est["ci_low"], f"{key}_high": est["ci_high"]})

    def glue_scores(self, **scores: dict) -> None:
        """Glue each model's mean scores (``{metric: {"mean", ...}}``, e.g. a pooled entry) as ``<key>_psnr``,
        ``<key>_ssim`` and ``<key>_pixel_r``."""
        for key, s in scores.items():
            self.glue_values(**{f"{key}_{m}": s[m]["mean"] for m in ("psnr", "ssim", "pixel_r")})

    def glue_data(self, data, *, val_idx=None) -> dict:
        """Glue the data's facts for the page and return them.

        Parameters
        ----------
        data : StudyData or Digit69
            From :func:`ldm_core.splits.prepare_data` (model chapters) or :func:`ldm_core.data.load_digit69`.
        val_idx : array of int, optional
            For a ``Digit69``: the validation trials, so that ``n_fit`` and ``n_val`` can be glued too.

        Returns
        -------
        dict
            ``n_train`` (all training trials), ``n_test``, ``n_fit`` and ``n_val`` (when known), ``n_voxels``,
            ``image_size`` (text, e.g. "28×28"), ``n_pixels``, ``n_classes``, ``classes`` (e.g. "six and nine"),
            ``dataset`` (the file's name); each glued under its key, for ``{glue:text}`n_fit``` in Markdown.

        Raises
        ------
        ValueError
            When chapter 00's results (``inputs_root``) were computed on another data file than ``data``.
        """
        raw = getattr(data, "raw", data)
        S = int(raw.images_train.shape[1])
        facts = {"n_train": int(len(raw.labels_train)), "n_test": int(len(raw.labels_test))}
        if hasattr(data, "n_fit"):
            facts.update(n_fit=data.n_fit, n_val=data.n_val)
        elif val_idx is not None:
            facts.update(n_fit=facts["n_train"] - len(val_idx), n_val=int(len(val_idx)))
        facts.update(n_voxels=int(raw.fmri_train.shape[1]), image_size=f"{S}×{S}", n_pixels=S * S,
                     n_classes=len(raw.class_names), classes=classes_text(raw.class_names), dataset=raw.path.name)
        for key, value in facts.items():
            self.glue(key, value)
        self.data_facts = facts
        if getattr(self, "_data_sha256", None) and self._data_sha256 != raw.sha256:
            raise ValueError(f"chapter {self.name} reads chapter {DATA_CHAPTER}'s results from "
                             f"{relative(self.inputs_root)}/, computed on another data file (sha256 "
                             f"{self._data_sha256[:12]}…, this chapter's {raw.path.name} is {raw.sha256[:12]}…): its "
                             f"floors, counts and warnings would not describe this data. Run {DATA_CHAPTER} on this "
                             "data first, or point inputs_root at its results.")
        return facts

    def answer(self, text: str = "", *, test_in_training: int | dict | None = None) -> None:
        """Glue the chapter's answer paragraph (the page shows it at the top: ``{glue:md}`answer```), kept in
        :attr:`answer_text` (nothing is returned, so the call displays nothing). A chapter whose answer is written in
        its Markdown, with glued numbers, passes no text: the glued answer is then the warning below, or empty.

        When test stimuli repeat among the training stimuli, a warning sentence is appended: identification then
        measures retrieval, not reconstruction. Every chapter after 00 knows the count from chapter 00's
        ``extra.test_in_training`` (read by :meth:`Chapter.start`); chapter 00 passes the count it has just computed.

        Parameters
        ----------
        text : str, optional
            The answer, Markdown; empty when the page's Markdown holds it.
        test_in_training : int or dict, optional
            The count (or :func:`ldm_core.splits.test_in_training`'s result); default: chapter 00's.
        """
        detail = dict(getattr(self, "_repeat_detail", {}) or {})
        if isinstance(test_in_training, dict):
            detail = test_in_training
            count = int(test_in_training["count"])
        elif test_in_training is not None:
            count = int(test_in_training)
        else:
            count = getattr(self, "test_in_training", None)
        if count:
            n_test = detail.get("n_test") or getattr(self, "data_facts", {}).get("n_test")
            source = "" if self.name == DATA_CHAPTER else "chapter 0"
            warning = repeat_warning(count, n_test, detail.get("threshold"), source=source)
            text = (text.rstrip() + "\n\n" + warning) if text.strip() else warning
        self.answer_text = text
        self.glue_md("answer", text)


class Chapter(_ChapterProse):
    """One execution of a chapter notebook (see the module docstring).

    Parameters
    ----------
    name : str
        The chapter, e.g. ``"02_unet_fix"`` (a key of ``CHAPTER_PARAMS``).
    namespace : dict
        The notebook's ``globals()`` before the parameters cell runs.

    Attributes (after :meth:`start`)
    ----------
    params : dict
        Every parameter, validated (the location parameters included).
    out_dir : Path
        Where :meth:`write` puts ``metrics.json`` and ``reconstructions.npz``.
    inputs_root : Path
        Folder whose ``<chapter>/`` subfolders hold the earlier chapters' results.
    cache_dir : Path
        This chapter's run cache, ``<cache_root>/<chapter>``.
    kind : {"published", "scratch", "results_root"}
    """

    def __init__(self, name: str, namespace: dict) -> None:
        if name not in CHAPTER_PARAMS:
            raise ParameterError(f"unknown chapter {name!r}; chapters: {sorted(CHAPTER_PARAMS)}")
        self.name = name
        self._before = set(namespace)
        self._t0 = time.time()
        self.params: dict | None = None

    # ------------------------------------------------------------------ start

    def start(self, namespace: dict, *, show: bool = True) -> "Chapter":
        """Check the parameters, locate inputs and outputs, and (``show``) display both; see the module docstring.

        Raises
        ------
        ParameterError
            Unknown parameter, bad value, or publishing values that are not the profile's.
        FileNotFoundError
            An earlier chapter's results are missing from ``inputs_root`` (the chapter to run is named).
        """
        given = {k: v for k, v in namespace.items() if k not in self._before and not k.startswith("_")
                 and (v is None or isinstance(v, PLAIN_TYPES))}  # what a parameters cell or papermill can assign
        self.params = p = validate(self.name, given)
        root = project_root()
        science = self.science_params()
        digest = content_key(_canonical(science), digits=8)
        if p["results_root"]:
            self.kind, self.out_dir = "results_root", Path(p["results_root"]) / self.name
        elif p["publish"]:
            self._check_profile(science)
            self.kind, self.out_dir = "published", root / "results" / self.name
        else:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            self.kind, self.out_dir = "scratch", root / "runs" / self.name / f"{stamp}-{digest}"
        if p["publish"] and p["results_root"]:
            raise ParameterError(f"chapter {self.name}: publish=True writes the published results/ and cannot be "
                                 f"combined with results_root={p['results_root']!r}; drop one of them.")
        self.inputs_root = Path(p["inputs_root"] or p["results_root"] or root / "results")
        self.cache_dir = Path(p["cache_root"] or root / "cache") / self.name
        self.cache_root = Path(p["cache_root"] or root / "cache")
        self.params_digest = digest
        for needed in requirements(self.name):
            folder = self.inputs_root / needed
            if not (folder / "metrics.json").is_file():
                raise FileNotFoundError(
                    f"chapter {self.name} reads the results of chapter {needed}, but {relative(folder)} holds none: "
                    f"run {needed} first (python -m ldm_core.study --only {needed}), or point inputs_root at a folder "
                    "that has them.")
            results_files_ok(folder)
        self._read_data_chapter()
        self._open_executor()
        self._page_settings()
        if show:
            self.show()
        return self

    def _read_data_chapter(self) -> None:
        """Chapter 00's ``extra.test_in_training`` (count and detail) and data checksum, when its results are there."""
        self.test_in_training: int | None = None
        self._repeat_detail: dict = {}
        self._data_sha256: str | None = None
        self.data_facts: dict = {}
        if self.name == DATA_CHAPTER:
            return
        path = self.inputs_root / DATA_CHAPTER / "metrics.json"
        if not path.is_file():
            return
        extra = json.loads(path.read_text()).get("extra", {}) or {}
        if extra.get("test_in_training") is not None:
            self.test_in_training = int(extra["test_in_training"])
            self._repeat_detail = dict(extra.get("test_in_training_detail") or {})
        self._data_sha256 = extra.get("data_sha256")

    @staticmethod
    def _page_settings() -> None:
        """Figures sized for the page; tables that never truncate a claim's text with "..."."""
        import pandas as pd

        from .plots import use_book_style

        use_book_style()
        pd.set_option("display.max_colwidth", None)

    def _open_executor(self) -> None:
        """A Dask client for the ``workers`` / ``scheduler`` parameters, used by every run of this chapter."""
        from .cluster import dask_client, set_default_executor

        self._client_cm = None
        if self.params["workers"] or self.params["scheduler"]:
            self._client_cm = dask_client(workers=self.params["workers"], scheduler=self.params["scheduler"])
            set_default_executor(self._client_cm.__enter__())

    def close(self) -> None:
        """Close the chapter's Dask client, if any (:meth:`write` does it)."""
        from .cluster import set_default_executor

        if getattr(self, "_client_cm", None) is not None:
            set_default_executor(None)
            self._client_cm.__exit__(None, None, None)
            self._client_cm = None

    def science_params(self) -> dict:
        """The parameters that change what is computed (all but the location ones)."""
        return {k: v for k, v in self.params.items() if k not in RUN_PARAMS}

    def _check_profile(self, science: dict) -> None:
        from .parameters import defaults
        from .runner import load_params

        p = self.params
        if not p["profile"]:
            raise ParameterError(f"chapter {self.name}: publish=True needs profile='full' or 'quick' (the params file "
                                 "the values come from); the study runner sets both.")
        expected = {**defaults(self.name), **load_params(self.name, p["profile"])}
        differ = {k: (v, expected[k]) for k, v in science.items() if _canonical(v) != _canonical(expected[k])}
        if differ and not p["publish_unprofiled"]:
            raise ParameterError(
                f"chapter {self.name}: refusing to publish into results/ a run whose values differ from profile "
                f"{p['profile']!r}: " + ", ".join(f"{k}={v!r} (profile: {e!r})" for k, (v, e) in differ.items())
                + ". Drop publish=True to write a scratch run, or pass publish_unprofiled=True to publish it "
                "anyway (recorded in the results' provenance).")
        self.unprofiled = sorted(differ)

    def param_table(self, *, resolved: dict[str, str] | None = None) -> "pd.DataFrame":
        """The parameters a reader sees: reader names, values written for people, empty values left out.

        One row per parameter that changes what is computed and has a value (an empty ``data_dir`` or
        ``class_names`` says "the default" and is omitted); the full record, with every internal name and raw value,
        is ``params`` in ``metrics.json``. ``resolved`` maps a parameter to the text shown instead of its value (what a
        placeholder such as ``auto`` or 0 stood for in this run).
        """
        import pandas as pd

        spec = CHAPTER_PARAMS[self.name]
        rows: dict[str, str] = {}
        for name, value in self.science_params().items():
            if value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0):
                continue
            p = spec[name]
            label = param_label(name, p.doc)
            if label in rows:  # two parameters would read alike: keep them apart
                label = f"{label} ({name.replace('_', ' ')})"
            rows[label] = ((resolved or {}).get(name) or (PARAM_FORMATTERS[name](value) if name in PARAM_FORMATTERS
                           else param_value(value, p.doc, kind=p.kind)))
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)}).rename_axis("parameter")

    def show(self, *, resolved: dict[str, str] | None = None) -> None:
        """Display where results go and the parameters of this run, as one short table (:meth:`param_table`, with
        ``resolved`` values); a chapter that resolves placeholders calls ``start(..., show=False)``, then this."""
        from IPython.display import Markdown, display

        where = {"published": f"the published record `{relative(self.out_dir)}/` (profile {self.params['profile']})",
                 "scratch": f"the scratch folder `{relative(self.out_dir)}/` (the published `results/` is not touched)",
                 "results_root": f"`{relative(self.out_dir)}/`"}[self.kind]
        display(Markdown(f"Results of this run go to {where}; earlier chapters are read from "
                         f"`{relative(self.inputs_root)}/`."))
        display(self.param_table(resolved=resolved))

    # ------------------------------------------------------------------ results

    def inputs(self, chapter: str):
        """``(metrics, reconstructions, targets, labels)`` of an earlier chapter, from :attr:`inputs_root`."""
        return load_results(self.inputs_root / chapter)

    def write(self, *, metrics: dict, reconstructions: dict, targets, labels, extra: dict | None = None,
              device: str | None = None) -> Path:
        """Write this chapter's results pair into :attr:`out_dir` (see :func:`ldm_core.study.results.write_results`)."""
        if self.params is None:
            raise RuntimeError("Chapter.write called before Chapter.start")
        publication = {"kind": self.kind, "profile": self.params["profile"] or None,
                       "unprofiled": getattr(self, "unprofiled", []) if self.kind == "published" else None,
                       "params_digest": self.params_digest}
        try:
            return write_results(self.out_dir, chapter=self.name, metrics=metrics, reconstructions=reconstructions,
                                 targets=targets, labels=labels, params=self.science_params(),
                                 wall_time_s=time.time() - self._t0, extra=extra, device=device,
                                 publication={**publication, "workers": self.params["workers"],
                                              "scheduler": bool(self.params["scheduler"])})
        finally:
            self.close()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the chapter started (its imports cell)."""
        return time.time() - self._t0
