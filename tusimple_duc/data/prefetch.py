"""Computing samples ahead of the consumer, in this process or in worker processes.

A *filler* computes sample ``index`` of ``epoch`` into preallocated arrays (its randomness
depends only on ``(seed, epoch, index)``), so where it runs does not change the result.
``fetch`` yields the samples of an index sequence in that order, whatever order the
workers finish in.

Worker processes (``multiprocessing``, start method ``fork``; they use NumPy and OpenCV,
single-threaded, never MXNet) write each sample into a slot of an anonymous shared memory map created
before they are forked, so no sample is pickled; the queues carry only slot numbers.
At most ``capacity`` samples are in flight (the queues are bounded by it). Workers are
daemonic, ignore SIGINT (the consumer handles Ctrl-C), exit when their parent is gone,
and are terminated and joined by :meth:`ProcessFetcher.close` (also called on garbage
collection and, through the owning iterator, on exceptions and KeyboardInterrupt).
A :class:`~tusimple_duc.errors.DataError` in a worker comes back as the item's
``error``; any other exception is re-raised in the consumer with its message and the
worker's traceback as a note.
"""
from __future__ import annotations

import logging
import mmap
import multiprocessing as mp
import os
import pickle
import queue
import signal
import traceback
from dataclasses import dataclass
from typing import Iterator, List, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np

from tusimple_duc.errors import DataError

logger = logging.getLogger(__name__)

#: Seconds between checks that the workers (consumer side) or the parent (worker side) are alive.
POLL_SECONDS = 0.5


class SampleFiller(Protocol):
    """Anything that computes sample ``index`` of ``epoch`` into preallocated float32 arrays."""

    image_shape: Tuple[int, ...]
    label_shape: Tuple[int, ...]

    def fill(self, index: int, epoch: int, image_out: np.ndarray, label_out: np.ndarray) -> None:
        ...


@dataclass
class Fetched:
    """One fetched sample. ``image`` and ``label`` are views valid until the next item is requested."""

    index: int
    image: Optional[np.ndarray]
    label: Optional[np.ndarray]
    error: Optional[DataError] = None


class InProcessFetcher:
    """Computes each sample when it is requested, in the calling process."""

    def __init__(self, filler: SampleFiller) -> None:
        self.filler = filler
        self._image = np.empty(filler.image_shape, dtype=np.float32)
        self._label = np.empty(filler.label_shape, dtype=np.float32)

    @property
    def worker_pids(self) -> List[int]:
        """No worker processes."""
        return []

    def fetch(self, indices: Sequence[int], epoch: int) -> Iterator[Fetched]:
        """Yield the samples ``indices`` of ``epoch`` in order."""
        for index in indices:
            try:
                self.filler.fill(int(index), epoch, self._image, self._label)
            except DataError as error:
                yield Fetched(int(index), None, None, error)
                continue
            yield Fetched(int(index), self._image, self._label)

    def close(self) -> None:
        """Nothing to release."""


class SlotArena:
    """``count`` pairs of float32 (image, label) arrays in one anonymous shared memory map."""

    def __init__(self, count: int, image_shape: Tuple[int, ...], label_shape: Tuple[int, ...]) -> None:
        image_items, label_items = int(np.prod(image_shape)), int(np.prod(label_shape))
        slot_bytes = (image_items + label_items) * 4
        self.memory = mmap.mmap(-1, max(1, count * slot_bytes))  # MAP_SHARED | MAP_ANONYMOUS
        self.images = [np.frombuffer(self.memory, np.float32, image_items, i * slot_bytes).reshape(image_shape)
                       for i in range(count)]
        self.labels = [np.frombuffer(self.memory, np.float32, label_items, i * slot_bytes + image_items * 4)
                       .reshape(label_shape) for i in range(count)]


def _worker_main(filler: SampleFiller, arena: SlotArena, tasks: mp.Queue, results: mp.Queue,
                 parent_pid: int) -> None:
    """Worker loop: ``(generation, position, index, epoch, slot)`` in, ``(..., slot, report)`` out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            task = tasks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:
                return
            continue
        if task is None:
            return
        generation, position, index, epoch, slot = task
        try:
            filler.fill(index, epoch, arena.images[slot], arena.labels[slot])
            report = None
        except DataError as error:
            report = ("data", str(error))
        except Exception as error:  # re-raised in the consumer
            try:
                payload = pickle.dumps(error)
            except Exception:
                payload = None
            report = ("other", f"{type(error).__name__}: {error}", traceback.format_exc(), payload)
        results.put((generation, position, slot, report))


def _rebuild_exception(report: tuple) -> BaseException:
    _, summary, trace, payload = report
    error: BaseException
    try:
        error = pickle.loads(payload) if payload is not None else RuntimeError(summary)
    except Exception:
        error = RuntimeError(summary)
    error.add_note(f"raised in a data worker process:\n{trace}")
    return error


class ProcessFetcher:
    """Computes samples in ``num_workers`` daemonic worker processes, ``capacity`` samples ahead.

    Workers start at the first :meth:`fetch` and serve every later epoch.
    """

    def __init__(self, filler: SampleFiller, num_workers: int, capacity: int) -> None:
        if num_workers < 1 or capacity < 1:
            raise ValueError(f"need num_workers >= 1 and capacity >= 1, got {num_workers}, {capacity}")
        self.filler = filler
        self.num_workers = num_workers
        self.capacity = capacity
        self._context = mp.get_context("fork")
        self._arena: Optional[SlotArena] = None
        self._workers: List[mp.process.BaseProcess] = []
        self._tasks: Optional[mp.Queue] = None
        self._results: Optional[mp.Queue] = None
        self._free: List[int] = []
        self._generation = 0
        self._closed = False

    @property
    def worker_pids(self) -> List[int]:
        """PIDs of the worker processes started so far."""
        return [worker.pid for worker in self._workers if worker.pid is not None]

    def _start(self) -> None:
        if self._closed:
            raise RuntimeError("the sample fetcher is closed")
        if self._workers:
            return
        self._arena = SlotArena(self.capacity, self.filler.image_shape, self.filler.label_shape)
        self._tasks = self._context.Queue(maxsize=self.capacity)
        self._results = self._context.Queue(maxsize=self.capacity)
        self._free = list(range(self.capacity))
        # OpenCV's thread pool does not survive fork: a child that touches it may join threads that
        # exist only in the parent. Stop the pool while forking; the workers then run single-threaded.
        parent_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for number in range(self.num_workers):
                worker = self._context.Process(
                    target=_worker_main, name=f"duc-data-{number}", daemon=True,
                    args=(self.filler, self._arena, self._tasks, self._results, os.getpid()))
                worker.start()
                self._workers.append(worker)
        finally:
            cv2.setNumThreads(parent_threads)

    def _check_workers(self) -> None:
        for worker in self._workers:
            if not worker.is_alive():
                code = worker.exitcode
                self.close()
                raise RuntimeError(f"data worker {worker.name} (pid {worker.pid}) died with exit code {code}")

    def _receive(self, generation: int, arrived: dict) -> None:
        """Wait for one result; keep it in ``arrived`` if it is of ``generation``, else free its slot."""
        self._check_workers()
        while True:
            try:
                result_generation, position, slot, report = self._results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._check_workers()
                continue
            if result_generation == generation:
                arrived[position] = (slot, report)
            else:
                self._free.append(slot)
            return

    def _cancel_queued(self) -> None:
        """Take back the tasks no worker has started, freeing their slots.

        A task already taken is finished by its worker; its result is recognised as stale
        by its generation, and only then is its slot reused.
        """
        while True:
            try:
                task = self._tasks.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            self._free.append(task[4])

    def fetch(self, indices: Sequence[int], epoch: int) -> Iterator[Fetched]:
        """Yield the samples ``indices`` of ``epoch`` in order (computed up to ``capacity`` ahead)."""
        self._start()
        self._generation += 1
        generation = self._generation
        arrived: dict = {}
        submitted = 0
        held: Optional[int] = None
        try:
            for position, index in enumerate(indices):
                while True:
                    while submitted < len(indices) and self._free and submitted - position < self.capacity:
                        slot = self._free.pop()
                        self._tasks.put((generation, submitted, int(indices[submitted]), epoch, slot))
                        submitted += 1
                    if position in arrived:
                        break
                    self._receive(generation, arrived)
                held, report = arrived.pop(position)
                if report is None:
                    yield Fetched(int(index), self._arena.images[held], self._arena.labels[held])
                elif report[0] == "data":
                    yield Fetched(int(index), None, None, DataError(report[1]))
                else:
                    raise _rebuild_exception(report)
                self._free.append(held)
                held = None
        finally:
            if not self._closed:
                if held is not None:
                    self._free.append(held)
                self._free.extend(slot for slot, _ in arrived.values())
                self._cancel_queued()

    def close(self) -> None:
        """Terminate and join the workers; idempotent."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            if worker.is_alive():
                worker.terminate()
        for worker in self._workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for channel in (self._tasks, self._results):
            if channel is not None:
                channel.cancel_join_thread()
                channel.close()
        logger.debug("data workers %s stopped", self.worker_pids)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
