"""Per-image work of the evaluators in worker processes, results in input order.

Evaluation is bound by PNG decoding and per-image counting, which are independent per image.
:func:`ordered_map` runs them in a pool of forked processes and returns the small per-image
results in the order of the inputs, so the caller sums them in the same order whatever the
worker count: the scores are bitwise identical for 1 and N workers. An error raised in a
worker (e.g. the :class:`~tusimple_duc.errors.EvaluationError` naming a broken file) is raised
again in the caller, unchanged.
"""
from __future__ import annotations

import multiprocessing
from typing import Callable, Iterator, Optional, Sequence, TypeVar

from tqdm import tqdm

from tusimple_duc.errors import EvaluationError
from tusimple_duc.runtime import physical_core_count

Job = TypeVar("Job")
Result = TypeVar("Result")


def resolve_workers(workers: Optional[int]) -> int:
    """The worker count to use: ``workers``, or the physical core count when None.

    Raises
    ------
    EvaluationError
        If ``workers`` is smaller than 1.
    """
    if workers is None:
        return physical_core_count()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise EvaluationError(f"--workers {workers}: expected a whole number >= 1")
    return workers


def ordered_map(function: Callable[[Job], Result], jobs: Sequence[Job], workers: Optional[int] = None,
                show_progress: bool = False, desc: str = "") -> Iterator[Result]:
    """Yield ``function(job)`` for every job, in the order of ``jobs``.

    Parameters
    ----------
    function : a module-level function (it is pickled by name for the worker processes).
    jobs : its arguments, one per image.
    workers : processes (None: the physical core count). With 1, or a single job, everything
        runs in this process; otherwise at most ``len(jobs)`` forked processes.
    show_progress : draw a tqdm bar on stderr, labelled ``desc``.
    """
    count = min(resolve_workers(workers), len(jobs))
    progress = tqdm(total=len(jobs), disable=not show_progress, desc=desc, unit="image")
    with progress:
        if count <= 1:
            for job in jobs:
                yield function(job)
                progress.update()
            return
        # fork: the workers start at once with the modules already imported (no re-import per worker).
        with multiprocessing.get_context("fork").Pool(count) as pool:
            for result in pool.imap(function, jobs, chunksize=1):
                yield result
                progress.update()
