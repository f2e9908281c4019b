"""Per-image work of the evaluators in worker processes, results in input order.

Evaluation is bound by PNG decoding and per-image counting, which are independent per image.
:func:`ordered_map` runs them in a pool of forked processes and returns the small per-image
results in the order of the inputs, so the caller sums them in the same order whatever the
worker count: the scores are bitwise identical for 1 and N workers. An error raised in a
worker (e.g. the :class:`~tusimple_duc.errors.EvaluationError` naming a broken file) is raised
again in the caller, unchanged.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
from typing import Callable, Iterator, Optional, Sequence, TypeVar

from tqdm import tqdm

from tusimple_duc.errors import EvaluationError
from tusimple_duc.runtime import physical_core_count

#: glibc ``mallopt`` parameters and the values set in the workers: arrays up to 32 MiB (a decoded
#: 1024x2048 instanceIds map is 4 MiB) come from the heap, and freed heap memory is kept.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_FREED_BYTES, _HEAP_ALLOCATION_BYTES = 1 << 30, 32 << 20

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


def keep_freed_memory() -> None:
    """Pool initializer: SIGTERM's default action (the pool ends its workers with it, whatever
    handler the parent process installed), and let glibc reuse freed image buffers instead of
    returning them to the system.

    Otherwise every decoded image is a fresh ``mmap`` whose pages fault in one by one (measured:
    a fifth of the evaluation's CPU time in system time). No-op without glibc's ``mallopt``.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)
    mallopt(_M_MMAP_THRESHOLD, _HEAP_ALLOCATION_BYTES)


def ordered_map(function: Callable[[Job], Result], jobs: Sequence[Job], workers: Optional[int] = None,
                show_progress: bool = False, desc: str = "") -> Iterator[Result]:
    """Yield ``function(job)`` for every job, in the order of ``jobs``.

    Parameters
    ----------
    function : a module-level function (it is pickled by name for the worker processes).
    jobs : its arguments, one per image.
    workers : processes (None: the physical core count). With 1, or a single job, everything
        runs in this process; otherwise at most ``len(jobs)`` forked processes
        (with :func:`keep_freed_memory`).
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
        with multiprocessing.get_context("fork").Pool(count, initializer=keep_freed_memory) as pool:
            for result in pool.imap(function, jobs, chunksize=1):
                yield result
                progress.update()
