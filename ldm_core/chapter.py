"""The protocol of a chapter notebook: parameters checked first, results written where they belong.

A chapter notebook has three cells before any work::

    from ldm_core.chapter import Chapter
    ch = Chapter("02_unet_fix", globals())     # imports cell: remembers the names defined so far

    data_dir: str = ""  # ...                   # the papermill `parameters` cell (and papermill's injected cell)

    ch.start(globals())                         # checks, then says where the results go

:meth:`Chapter.start`

1. takes every name the parameters cell (and papermill's injected overrides) added to the notebook and refuses
   unknown or misspelled ones -- papermill itself only warns about them and runs on, ignoring the value;
2. validates every value against :data:`ldm_core.parameters.CHAPTER_PARAMS` (type, range, list shape),
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
5. shows the parameters as one small table and says, with paths relative to the project, where results go.

:meth:`Chapter.inputs` reads an earlier chapter's results; :meth:`Chapter.write` writes this chapter's.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from pathlib import Path

from .parameters import CHAPTER_PARAMS, RUN_PARAMS, ParameterError, requirements, validate
from .results import load_results, project_root, results_files_ok, write_results

__all__ = ["Chapter", "ParameterError", "relative"]

PLAIN_TYPES = (str, int, float, bool, list, dict, tuple)  # values a parameters cell holds (papermill injects only these)


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


class Chapter:
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
        self.params = validate(self.name, given)
        p = self.params
        root = project_root()
        science = self.science_params()
        digest = hashlib.sha256(json.dumps(_canonical(science), sort_keys=True).encode()).hexdigest()[:8]
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
        self._open_executor()
        self._page_settings()
        if show:
            self.show()
        return self

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
        from .study import load_params

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

    def show(self) -> None:
        """Display where results go and the parameters of this run, as one table."""
        import pandas as pd
        from IPython.display import Markdown, display

        where = {"published": f"the published record `{relative(self.out_dir)}/` (profile {self.params['profile']})",
                 "scratch": f"the scratch folder `{relative(self.out_dir)}/` (the published `results/` is not touched)",
                 "results_root": f"`{relative(self.out_dir)}/`"}[self.kind]
        display(Markdown(f"Results of this run go to {where}; earlier chapters are read from "
                         f"`{relative(self.inputs_root)}/`."))
        rows = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in self.science_params().items()}
        display(pd.DataFrame({"value": rows}).rename_axis("parameter"))

    # ------------------------------------------------------------------ prose for the page

    @staticmethod
    def glue_md(key: str, text: str) -> None:
        """Make the Markdown ``text`` available to the page as ``{glue:md}`key``` (myst-nb glue, not displayed here)."""
        from IPython.display import Markdown
        from myst_nb import glue

        glue(key, Markdown(text), display=False)

    @staticmethod
    def glue(key: str, value) -> None:
        """Make ``value`` (its text form) available to the page as ``{glue:text}`key```, not displayed here."""
        from myst_nb import glue

        glue(key, value, display=False)

    def answer(self, text: str) -> None:
        """The chapter's answer paragraph, generated from its results; the page shows it at the top (``{glue:md}`answer```)."""
        self.glue_md("answer", text)

    # ------------------------------------------------------------------ results

    def inputs(self, chapter: str):
        """``(metrics, reconstructions, targets, labels)`` of an earlier chapter, from :attr:`inputs_root`."""
        return load_results(self.inputs_root / chapter)

    def write(self, *, metrics: dict, reconstructions: dict, targets, labels, extra: dict | None = None,
              device: str | None = None) -> Path:
        """Write this chapter's results pair into :attr:`out_dir` (see :func:`ldm_core.results.write_results`)."""
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
