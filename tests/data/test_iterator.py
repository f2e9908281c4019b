"""The DataIter: determinism across worker counts, epochs, partial batches, sharding, clean shutdown."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import cv2
import mxnet as mx
import numpy as np
import pytest

from experiments.bench.data_pipeline import format_table, run_benchmark
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter, epoch_order
from tusimple_duc.data.sample import SamplingSpec

SPEC = SamplingSpec(crop_shape=(48, 48), random_bound=(16, 16))


@pytest.fixture(scope="module")
def seven_fold(cityscapes_root):
    """The 21 7-fold entries of the tiny Cityscapes train split."""
    return cityscapes_lists(cityscapes_root)["train_7fold"]


def make_iter(entries, root, batch_size=4, seed=5, **options):
    return SegmentationIter(SegmentationDataset(entries, SPEC, root, root, seed), batch_size, **options)


def collect(iterator, epochs=2):
    """Every batch of ``epochs`` epochs as NumPy: (data, label, pad, index)."""
    batches = []
    for _ in range(epochs):
        for batch in iterator:
            batches.append((batch.data[0].asnumpy(), batch.label[0].asnumpy(), batch.pad, list(batch.index)))
        iterator.reset()
    return batches


def is_gone(pid: int) -> bool:
    """The process no longer exists (or is a zombie waiting for a reaper)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            state = next(line for line in handle if line.startswith("State:"))
    except FileNotFoundError:
        return True
    return "Z" in state.split()[1]


def test_same_batches_for_0_1_2_workers(seven_fold, cityscapes_root):
    results = []
    for workers in (0, 1, 2):
        with make_iter(seven_fold, cityscapes_root, num_workers=workers, prefetch=3) as iterator:
            results.append(collect(iterator))
    assert len(results[0]) == 2 * (21 // 4)
    for other in results[1:]:
        for (data, label, pad, index), (data2, label2, pad2, index2) in zip(results[0], other):
            np.testing.assert_array_equal(data, data2)
            np.testing.assert_array_equal(label, label2)
            assert (pad, index) == (pad2, index2)


def test_batches_match_the_gluon_dataset(seven_fold, cityscapes_root):
    dataset = SegmentationDataset(seven_fold, SPEC, cityscapes_root, cityscapes_root, seed=5)
    with make_iter(seven_fold, cityscapes_root, num_workers=2) as iterator:
        iterator.set_epoch(3)
        batch = next(iterator)
    dataset.set_epoch(3)
    assert isinstance(batch.data[0], mx.nd.NDArray) and isinstance(batch.label[0], mx.nd.NDArray)
    for row, index in enumerate(batch.index):
        image, label = dataset[int(index)]
        np.testing.assert_array_equal(batch.data[0][row].asnumpy(), image)
        np.testing.assert_array_equal(batch.label[0][row].asnumpy(), label)


def test_provide_data_and_label(seven_fold, cityscapes_root):
    iterator = make_iter(seven_fold, cityscapes_root, batch_size=2)
    assert [(d.name, d.shape) for d in iterator.provide_data] == [("data", (2, 3, 48, 48))]
    assert [(d.name, d.shape) for d in iterator.provide_label] == [("seg_loss_label", (2, 24 * 24))]
    renamed = make_iter(seven_fold, cityscapes_root, batch_size=2, label_name="softmax_label")
    assert renamed.provide_label[0].name == "softmax_label"
    batch = next(iterator)
    assert batch.data[0].shape == (2, 3, 48, 48) and batch.label[0].shape == (2, 576)


def test_shuffle_per_epoch_under_the_seed(seven_fold, cityscapes_root):
    orders = [epoch_order(21, seed=5, epoch=e, shuffle=True) for e in (0, 1)]
    assert sorted(orders[0]) == list(range(21)) and not np.array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders[0], epoch_order(21, seed=5, epoch=0, shuffle=True))
    assert not np.array_equal(orders[0], epoch_order(21, seed=6, epoch=0, shuffle=True))
    np.testing.assert_array_equal(epoch_order(21, 5, 0, shuffle=False), np.arange(21))
    iterator = make_iter(seven_fold, cityscapes_root, batch_size=7)
    first = [list(b.index) for b in iterator]
    iterator.reset()
    second = [list(b.index) for b in iterator]
    assert sum(first, []) == list(orders[0]) and sum(second, []) == list(orders[1])


def test_reset_before_any_batch_keeps_the_epoch_and_set_epoch_restarts(seven_fold, cityscapes_root):
    iterator = make_iter(seven_fold, cityscapes_root)
    iterator.reset()
    assert iterator.epoch == 0
    next(iterator)
    iterator.reset()
    assert iterator.epoch == 1
    iterator.set_epoch(7)
    assert list(next(iterator).index) == list(epoch_order(21, 5, 7, True)[:4])


@pytest.mark.parametrize("policy, sizes, pads", [
    ("discard", [4, 4, 4, 4, 4], [0] * 5),
    ("keep", [4, 4, 4, 4, 4, 1], [0] * 6),
    ("pad", [4, 4, 4, 4, 4, 4], [0] * 5 + [3]),
])
def test_last_batch_policies(seven_fold, cityscapes_root, policy, sizes, pads):
    iterator = make_iter(seven_fold, cityscapes_root, last_batch=policy)
    batches = list(iterator)
    assert [b.data[0].shape[0] for b in batches] == sizes
    assert [b.pad for b in batches] == pads
    order = list(epoch_order(21, 5, 0, True))
    if policy == "pad":  # the filler rows are the first samples of the epoch, computed identically
        assert list(batches[-1].index) == order[20:] + order[:3]
        np.testing.assert_array_equal(batches[-1].data[0][1:].asnumpy(), batches[0].data[0][:3].asnumpy())
    else:
        assert sum((list(b.index) for b in batches), []) == order[:sum(sizes)]


def test_sharding_gives_disjoint_equal_parts(seven_fold, cityscapes_root):
    parts = []
    for part in range(3):
        iterator = make_iter(seven_fold, cityscapes_root, batch_size=2, num_parts=3, part_index=part,
                             last_batch="keep")
        parts.append([sorted(int(i) for b in iterator for i in b.index)])
    seen = [set(p[0]) for p in parts]
    assert all(len(s) == 7 for s in seen)
    assert seen[0].isdisjoint(seen[1]) and seen[0].isdisjoint(seen[2]) and seen[1].isdisjoint(seen[2])
    assert set().union(*seen) == set(range(21))
    uneven = [len(epoch_order(22, 0, 0, True, 4, k)) for k in range(4)]
    assert uneven == [5, 5, 5, 5]


def test_close_stops_the_workers(seven_fold, cityscapes_root):
    iterator = make_iter(seven_fold, cityscapes_root, num_workers=2)
    next(iterator)
    pids = iterator.worker_pids
    assert len(pids) == 2 and not any(is_gone(pid) for pid in pids)
    iterator.close()
    assert all(is_gone(pid) for pid in pids)


def test_exception_in_the_consumer_stops_the_workers(seven_fold, cityscapes_root):
    with pytest.raises(ZeroDivisionError):
        with make_iter(seven_fold, cityscapes_root, num_workers=2) as iterator:
            next(iterator)
            pids = iterator.worker_pids
            1 / 0
    assert len(pids) == 2 and all(is_gone(pid) for pid in pids)


def test_dropped_iterator_stops_its_workers(seven_fold, cityscapes_root):
    iterator = make_iter(seven_fold, cityscapes_root, num_workers=2)
    next(iterator)
    pids = iterator.worker_pids
    del iterator
    gc.collect()
    assert all(is_gone(pid) for pid in pids)


SCRIPT = """
import sys, time
import tusimple_duc
from experiments.bench.data_pipeline import format_table, run_benchmark
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter
from tusimple_duc.data.sample import SamplingSpec
root = sys.argv[1]
dataset = SegmentationDataset(cityscapes_lists(root)["train_7fold"], SamplingSpec(crop_shape=(48, 48)), root, root)
iterator = SegmentationIter(dataset, 2, num_workers=2)
next(iterator)
print(" ".join(map(str, iterator.worker_pids)), flush=True)
while True:
    for batch in iterator:
        time.sleep(0.01)
    iterator.reset()
"""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_or_killed_consumer_leaves_no_orphans(cityscapes_root, stop):
    # a runner started in the background of a non-interactive shell ignores SIGINT, and a child that
    # inherits SIG_IGN never raises KeyboardInterrupt: give the consumer Ctrl-C's default disposition
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT), cityscapes_root],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        pids = [int(p) for p in process.stdout.readline().split()]
        assert len(pids) == 2 and not any(is_gone(pid) for pid in pids)
        process.send_signal(stop)
        _, err = process.communicate(timeout=120)  # a hang guard: interpreter shutdown is slow under load
    finally:
        process.kill()
    if stop == signal.SIGINT:
        assert "KeyboardInterrupt" in err
    else:  # no clean-up code ran in the consumer: the workers notice their parent is gone
        assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while not all(is_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(is_gone(pid) for pid in pids)


class FailingDataset(SegmentationDataset):
    """Raises a plain bug (not a DataError) for sample 5."""

    def fill(self, index, epoch, image_out, label_out):
        if index == 5:
            raise ValueError(f"boom in sample {index}")
        super().fill(index, epoch, image_out, label_out)


@pytest.mark.parametrize("workers", [0, 2])
def test_worker_exception_is_raised_in_the_consumer(seven_fold, cityscapes_root, workers):
    dataset = FailingDataset(seven_fold, SPEC, cityscapes_root, cityscapes_root)
    with SegmentationIter(dataset, 3, shuffle=False, num_workers=workers) as iterator:
        next(iterator)
        with pytest.raises(ValueError, match="boom in sample 5") as caught:
            next(iterator)
        if workers:
            assert "raised in a data worker process" in caught.value.__notes__[0]
            assert "in fill" in caught.value.__notes__[0]  # the worker's traceback
        with pytest.raises(StopIteration):  # the error ended the epoch
            next(iterator)
        iterator.reset()
        assert list(next(iterator).index) == [0, 1, 2]  # usable again after the error


class ThreadCountDataset(SegmentationDataset):
    """Writes the OpenCV thread count of the process computing the sample into its first label value."""

    def fill(self, index, epoch, image_out, label_out):
        super().fill(index, epoch, image_out, label_out)
        label_out[0] = cv2.getNumThreads()


def test_workers_run_opencv_single_threaded_and_the_parent_keeps_its_pool(seven_fold, cityscapes_root):
    threads = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        dataset = ThreadCountDataset(seven_fold, SPEC, cityscapes_root, cityscapes_root)
        with SegmentationIter(dataset, 4, num_workers=2) as iterator:
            counts = [batch.label[0].asnumpy()[:, 0] for batch in iterator]
            assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(threads)
    assert np.all(np.concatenate(counts) == 1)


def test_a_killed_worker_is_reported(seven_fold, cityscapes_root):
    with make_iter(seven_fold, cityscapes_root, num_workers=2) as iterator:
        next(iterator)
        victim = iterator.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60  # SIGKILL is delivered asynchronously (slowly on a loaded machine)
        while not is_gone(victim) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(RuntimeError, match="died with exit code -9"):
            for _ in range(30):  # a victim that had already queued all its samples ends the epoch cleanly:
                try:             # the next epoch needs it again and must report it
                    next(iterator)
                except StopIteration:
                    iterator.reset()


def test_benchmark_measures_every_worker_count(seven_fold, cityscapes_root):
    floor, rows = run_benchmark(seven_fold, cityscapes_root, cityscapes_root, SPEC, workers=(0, 2), samples=4)
    assert floor.wall > 0 and floor.cpu > 0
    assert [(row.workers, row.samples) for row in rows] == [(0, 4), (2, 4)]
    assert all(row.samples_per_second > 0 and row.worker_cpu_per_sample >= 0 for row in rows)
    assert rows[1].wall_per_sample == pytest.approx(2 / rows[1].samples_per_second)
    table = format_table(floor, rows, (48, 48)).splitlines()
    assert len(table) == 4 and table[2].split()[0] == "0" and table[3].split()[0] == "2"
