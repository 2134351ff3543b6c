"""Where a chapter's runs are computed: in the notebook's process, or on Dask workers.

A run -- one training group for one seed (:func:`ldm_core.study.experiment.train_and_reconstruct`), or one seed of the
image-prior variants -- is keyed by data fingerprint, configuration, seed and sampling, cached on disk with atomic
writes, and deterministic, so it can be computed anywhere. :func:`map_units` sends a list of such units to any
``concurrent.futures``-style executor (anything with ``submit(fn, *args, **kwargs) -> future``) and gathers the
results in order; with no executor it computes them one after another, as before.

The engine is Dask distributed (:func:`dask_client`): a ``LocalCluster`` on one machine (one worker per core group
or per GPU), a cluster started by ``dask-scheduler`` / ``dask-worker``, or SLURM / PBS through ``dask-jobqueue``
(pass its scheduler address). No pool or queue is written here. Each worker writes into the shared run cache, so a
duplicated unit costs time, never correctness. Workers get a fixed number of torch threads and, with ``gpus``, one
GPU each (``CUDA_VISIBLE_DEVICES`` set before torch touches CUDA), so a result does not depend on which worker made
it: the notebook tests run a chapter sequentially and on a 2-worker cluster and compare every metric and image.

Usage: ``python -m ldm_core.study --workers 2`` (a local cluster for the whole study), ``--scheduler tcp://host:8786``
(an existing one); a notebook takes the same through its ``workers`` / ``scheduler`` parameters.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from distributed import WorkerPlugin

__all__ = ["map_units", "dask_client", "WorkerSetup", "set_default_executor", "default_executor"]

_DEFAULT: list = [None]  # the executor a chapter chose with its workers / scheduler parameters (Chapter.start)


def set_default_executor(executor) -> None:
    """The executor :func:`map_units` uses when none is passed (None: compute in this process)."""
    _DEFAULT[0] = executor


def default_executor():
    """The executor set by :func:`set_default_executor` (None by default)."""
    return _DEFAULT[0]


def map_units(fn: Callable, data: Any, units: Sequence[dict], *, executor=None) -> list:
    """``[fn(data, **unit) for unit in units]``, computed by ``executor`` (default: :func:`default_executor`).

    With a ``distributed.Client`` the (large) ``data`` is scattered to the workers once; the results come back in
    the order of ``units``.
    """
    executor = executor if executor is not None else default_executor()
    if executor is None:
        return [fn(data, **u) for u in units]
    if hasattr(executor, "scatter"):  # distributed.Client: send the data once, not with every task
        data = executor.scatter(data, broadcast=True)
        futures = [executor.submit(fn, data, pure=False, **u) for u in units]
    else:
        futures = [executor.submit(fn, data, **u) for u in units]
    return [f.result() for f in futures]


class WorkerSetup(WorkerPlugin):
    """Dask worker plugin: a fixed number of torch threads and, with ``gpus``, one GPU per worker.

    Parameters
    ----------
    threads : int
        ``torch.set_num_threads`` (and OMP / MKL threads) of each worker.
    gpus : int
        Number of GPUs on the machine; worker k gets GPU k mod gpus. 0: CPU only.
    """

    name = "ldm-core-worker-setup"

    def __init__(self, *, threads: int, gpus: int = 0) -> None:
        super().__init__()
        self.threads, self.gpus = int(threads), int(gpus)

    def setup(self, worker) -> None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(self.threads)
        if self.gpus:
            try:
                index = int(str(worker.name).rsplit("-", 1)[-1])
            except ValueError:
                index = abs(hash(worker.name))
            os.environ["CUDA_VISIBLE_DEVICES"] = str(index % self.gpus)
        import torch

        torch.set_num_threads(self.threads)

    def teardown(self, worker) -> None:  # the plugin interface; nothing to undo
        return None


@contextlib.contextmanager
def dask_client(*, workers: int = 0, scheduler: str = "", threads_per_worker: int | None = None,
                gpus: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``workers`` local workers or an existing ``scheduler``; None when neither.

    Parameters
    ----------
    workers : int
        Start a ``LocalCluster`` of this many worker processes (0: none).
    scheduler : str
        Address of a running scheduler (``dask-scheduler``, ``dask-jobqueue``), e.g. "tcp://10.0.0.1:8786".
    threads_per_worker : int, optional
        Torch threads per worker; default: ``$OMP_NUM_THREADS`` when set (the threads a sequential run of the same
        chapter uses, so that the two give bitwise the same numbers), else the cores divided by ``workers``.
    gpus : int, optional
        GPUs to spread the workers over (one each); default: what torch sees (0 without CUDA).

    Raises
    ------
    ValueError
        If both ``workers`` and ``scheduler`` are given, or ``workers`` is negative.
    """
    if workers and scheduler:
        raise ValueError(f"give workers (a local cluster) or scheduler (an existing one), not both; got workers={workers}, "
                         f"scheduler={scheduler!r}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if not workers and not scheduler:
        yield None
        return
    from distributed import Client, LocalCluster

    if gpus is None:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    env_threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    if scheduler:
        client = Client(scheduler)
        cluster = None
        threads = threads_per_worker or env_threads or 1
    else:
        threads = threads_per_worker or env_threads or max(1, (os.cpu_count() or 1) // workers)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        client = Client(cluster)
    try:
        client.register_plugin(WorkerSetup(threads=threads, gpus=gpus))
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
