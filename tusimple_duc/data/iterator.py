"""Training data over a list file: a Gluon Dataset and an ``mx.io.DataIter`` with multi-process prefetch.

Randomness: the order of an epoch is a permutation drawn from ``(seed, epoch)``; sample
``i`` (its line number in the list) of an epoch is computed with the generator
``sample_rng(seed, epoch, i)``. Batches therefore depend only on the seed, the epoch and
the settings, never on the number of workers.

Sharding: with ``num_parts`` parts, every part draws the same permutation and part ``k``
takes positions ``[k*n, (k+1)*n)`` with ``n = len(list) // num_parts``, so the parts are
disjoint and have the same number of batches (needed by ``kvstore dist_sync``); the last
``len(list) % num_parts`` positions of the permutation are left out of that epoch.

Last partial batch: ``'discard'`` drops it, ``'keep'`` yields a smaller batch, ``'pad'``
fills it with the first samples of the epoch's order and sets ``DataBatch.pad`` to the
number of filler rows.

Bad samples: a :class:`~tusimple_duc.errors.DataError` stops the epoch with that error,
unless ``skip_bad`` is set: then the sample is logged, counted in ``num_skipped`` and the
batch is filled with the next samples.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from mxnet.gluon.data import Dataset

from tusimple_duc.data.lists import ListEntry, read_list
from tusimple_duc.data.prefetch import InProcessFetcher, ProcessFetcher
from tusimple_duc.data.geometry_checks import check_list_geometry
from tusimple_duc.data.label_tally import OutsideTableTally
from tusimple_duc.data.sample import SamplingSpec, make_sample_into, sample_rng
from tusimple_duc.errors import DataError
from tusimple_duc.io.symbol import LABEL_NAME

logger = logging.getLogger(__name__)

LAST_BATCH_POLICIES = ("discard", "pad", "keep")
#: Name of the label input of the released network.
RELEASED_LABEL_NAME = LABEL_NAME


class SegmentationDataset(Dataset):
    """Index -> ``(image (3, rows, cols) float32, label float32)`` training samples of a list.

    The list's centres are checked against the image sizes at once
    (:func:`~tusimple_duc.data.geometry_checks.check_list_geometry`: a centre outside its image is a
    DataError, images smaller than the crop are reported in one warning).

    Parameters
    ----------
    entries : the list entries, or the path of a list file.
    spec : how samples are made.
    data_dir, label_dir : roots of the list's relative image and label paths.
    seed : seed of the per-sample randomness.
    epoch : epoch whose randomness ``__getitem__`` uses (see :meth:`set_epoch`).
    """

    def __init__(self, entries: Union[str, Sequence[ListEntry]], spec: SamplingSpec, data_dir: str = "",
                 label_dir: str = "", seed: int = 0, epoch: int = 0) -> None:
        self.source = entries if isinstance(entries, str) else "list"
        self.entries: List[ListEntry] = read_list(entries) if isinstance(entries, str) else list(entries)
        if not self.entries:
            raise DataError(f"{self.source}: list is empty")
        check_list_geometry(self.entries, spec.crop_shape, data_dir, label_dir, self.source)
        self.spec = spec
        self.outside_table = OutsideTableTally(self.source, spec.codec.table_name, spec.ignore_label)
        self.data_dir = data_dir
        self.label_dir = label_dir
        self.seed = seed
        self.epoch = epoch

    @property
    def image_shape(self) -> Tuple[int, ...]:
        """(3, rows, cols) of every image."""
        return self.spec.image_shape

    @property
    def label_shape(self) -> Tuple[int, ...]:
        """Shape of every label."""
        return self.spec.label_shape

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Use the randomness of ``epoch`` in ``__getitem__``."""
        self.epoch = epoch

    def fill(self, index: int, epoch: int, image_out: np.ndarray, label_out: np.ndarray) -> None:
        """Compute sample ``index`` of ``epoch`` into preallocated arrays (raises DataError)."""
        make_sample_into(self.entries[index], sample_rng(self.seed, epoch, index), self.spec,
                         image_out, label_out, self.data_dir, self.label_dir, self.outside_table)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        image = np.empty(self.image_shape, dtype=np.float32)
        label = np.empty(self.label_shape, dtype=np.float32)
        self.fill(index, self.epoch, image, label)
        return image, label


def epoch_order(num_samples: int, seed: int, epoch: int, shuffle: bool, num_parts: int = 1,
                part_index: int = 0) -> np.ndarray:
    """Sample indices of one part of one epoch (see the module docstring)."""
    if shuffle:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, 0, 2])))
        order = rng.permutation(num_samples)
    else:
        order = np.arange(num_samples)
    part = num_samples // num_parts
    return order[part_index * part:(part_index + 1) * part]


class SegmentationIter(mx.io.DataIter):
    """Batches of a :class:`SegmentationDataset` as ``mx.io.DataBatch`` (data and label as ``mx.nd``).

    Parameters
    ----------
    dataset : the samples.
    batch_size : samples per batch ([data] batch_size).
    shuffle : draw a new order every epoch.
    num_workers : worker processes; 0 computes samples in this process.
    last_batch : 'discard', 'pad' or 'keep' (module docstring).
    num_parts, part_index : read only part ``part_index`` of ``num_parts`` disjoint parts.
    skip_bad : skip samples whose files are bad (counted in ``num_skipped``) instead of raising.
    data_name, label_name : names in ``provide_data`` / ``provide_label``.
    prefetch : samples computed ahead by the workers (default ``2 * max(batch_size, num_workers)``).
    epoch : the first epoch.

    Use it as a context manager, or call :meth:`close`, to stop the workers; they are
    also stopped when the iterator is garbage-collected or the interpreter exits.
    """

    def __init__(self, dataset: SegmentationDataset, batch_size: int, shuffle: bool = True, num_workers: int = 0,
                 last_batch: str = "discard", num_parts: int = 1, part_index: int = 0, skip_bad: bool = False,
                 data_name: str = "data", label_name: str = RELEASED_LABEL_NAME, prefetch: Optional[int] = None,
                 epoch: int = 0) -> None:
        super().__init__(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if last_batch not in LAST_BATCH_POLICIES:
            raise ValueError(f"last_batch must be one of {LAST_BATCH_POLICIES}, got {last_batch!r}")
        if not 0 <= part_index < num_parts:
            raise ValueError(f"part_index {part_index} is not in 0..{num_parts - 1}")
        if len(dataset) < num_parts:
            raise DataError(f"{dataset.source}: {len(dataset)} samples cannot be split into {num_parts} parts")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.shuffle = shuffle
        self.last_batch = last_batch
        self.num_parts = num_parts
        self.part_index = part_index
        self.skip_bad = skip_bad
        self.data_name = data_name
        self.label_name = label_name
        self.num_skipped = 0
        self._epoch = epoch
        self._batches_taken = 0
        self._stream: Optional[Iterator[mx.io.DataBatch]] = None
        capacity = prefetch if prefetch is not None else 2 * max(batch_size, num_workers)
        self._fetcher = ProcessFetcher(dataset, num_workers, capacity) if num_workers else InProcessFetcher(dataset)

    # -------------------------------------------------------------- DataIter API
    @property
    def provide_data(self) -> List[mx.io.DataDesc]:
        return [mx.io.DataDesc(self.data_name, (self.batch_size,) + self.dataset.image_shape, np.float32, "NCHW")]

    @property
    def provide_label(self) -> List[mx.io.DataDesc]:
        return [mx.io.DataDesc(self.label_name, (self.batch_size,) + self.dataset.label_shape, np.float32)]

    @property
    def epoch(self) -> int:
        """The epoch being iterated (or about to be)."""
        return self._epoch

    @property
    def worker_pids(self) -> List[int]:
        """PIDs of the worker processes (empty before the first batch and with 0 workers)."""
        return self._fetcher.worker_pids

    def order(self) -> np.ndarray:
        """Sample indices of this part in the current epoch, in batch order (before skipping)."""
        return epoch_order(len(self.dataset), self.dataset.seed, self._epoch, self.shuffle, self.num_parts,
                           self.part_index)

    def set_epoch(self, epoch: int) -> None:
        """Restart iteration at the beginning of ``epoch``."""
        self._close_stream()
        self._epoch = epoch
        self._batches_taken = 0

    def reset(self) -> None:
        """Start the next epoch (or restart the current one if no batch of it was taken)."""
        self.set_epoch(self._epoch + 1 if self._batches_taken else self._epoch)

    def next(self) -> mx.io.DataBatch:
        """The next batch; StopIteration at the end of the epoch, also after an error ended it.

        Ctrl-C (KeyboardInterrupt) while waiting for a batch also stops the workers.
        """
        if self._stream is None:
            self._stream = self._batches(self._epoch)
        try:
            batch = next(self._stream)
        except StopIteration:  # the epoch's end: label values convert_label ignored, once per run
            self.dataset.outside_table.report()
            raise
        except KeyboardInterrupt:
            self.close()
            raise
        self._batches_taken += 1
        return batch

    def __next__(self) -> mx.io.DataBatch:
        return self.next()

    def close(self) -> None:
        """Stop the worker processes; the iterator cannot be used afterwards."""
        self._close_stream()
        self._fetcher.close()

    def __enter__(self) -> "SegmentationIter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -------------------------------------------------------------- batching
    def _close_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()

    def _good_samples(self, indices: Sequence[int], epoch: int) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
        with contextlib.closing(self._fetcher.fetch(indices, epoch)) as fetched:
            for item in fetched:
                if item.error is None:
                    yield item.index, item.image, item.label
                elif self.skip_bad:
                    self.num_skipped += 1
                    logger.warning("skipping bad sample %d: %s", item.index, item.error)
                else:
                    raise item.error

    def _batches(self, epoch: int) -> Iterator[mx.io.DataBatch]:
        order = self.order()
        images, labels = self._new_buffers()
        rows: List[int] = []
        good = 0
        for index, image, label in self._good_samples(order, epoch):
            images[len(rows)], labels[len(rows)] = image, label
            rows.append(index)
            good += 1
            if len(rows) == self.batch_size:
                yield self._batch(images, labels, rows, pad=0)
                images, labels = self._new_buffers()
                rows = []
        if not good:
            raise DataError(f"{self.dataset.source}: all {len(order)} samples of epoch {epoch} are bad")
        if not rows or self.last_batch == "discard":
            return
        if self.last_batch == "keep":
            yield self._batch(images, labels, rows, pad=0)
            return
        real = len(rows)
        while len(rows) < self.batch_size:
            wrap = order[:self.batch_size - len(rows)]
            for index, image, label in self._good_samples(wrap, epoch):
                images[len(rows)], labels[len(rows)] = image, label
                rows.append(index)
            order = np.roll(order, -len(wrap))
        yield self._batch(images, labels, rows, pad=self.batch_size - real)

    def _new_buffers(self) -> Tuple[np.ndarray, np.ndarray]:
        """Fresh batch arrays: each batch's NDArrays take them over without a copy."""
        return (np.empty((self.batch_size,) + self.dataset.image_shape, dtype=np.float32),
                np.empty((self.batch_size,) + self.dataset.label_shape, dtype=np.float32))

    def _batch(self, images: np.ndarray, labels: np.ndarray, rows: List[int], pad: int) -> mx.io.DataBatch:
        count = len(rows)
        data = mx.nd.from_numpy(images[:count], zero_copy=True)
        label = mx.nd.from_numpy(labels[:count], zero_copy=True)
        return mx.io.DataBatch(
            data=[data], label=[label], pad=pad, index=np.array(rows),
            provide_data=[mx.io.DataDesc(self.data_name, data.shape, np.float32, "NCHW")],
            provide_label=[mx.io.DataDesc(self.label_name, label.shape, np.float32)])

