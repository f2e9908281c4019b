"""Throughput of the training data pipeline against the cost of just decoding the PNGs.

The *decode floor* is the time to decode one image and its label (``cv2.imread``,
unchanged), which every sample must pay. A worker's per-sample time is
``workers / (samples per second)``; the pipeline is efficient when that is close to the
floor (target: at most 1.5x). Worker start-up is excluded (one warm-up batch).

On a shared machine wall-clock times depend on the other load, so CPU times are reported
too: the floor's CPU time, the workers' CPU time per sample (from ``/proc/<pid>/stat``,
Linux) and the consumer's (this process: batching and the copy into ``mx.nd``). With 0
workers everything runs in this process, OpenCV using its thread pool.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.data.iterator import SegmentationDataset, SegmentationIter
from tusimple_duc.data.lists import ListEntry, resolve
from tusimple_duc.data.sample import SamplingSpec
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes


@dataclass(frozen=True)
class Floor:
    """Decoding one image + label pair: median wall seconds and mean CPU seconds."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class BenchRow:
    """One measured configuration.

    Attributes
    ----------
    workers : worker processes (0 = in the consumer process).
    samples : samples timed.
    samples_per_second : throughput of the iterator (wall clock).
    wall_per_sample : per-worker wall seconds of one sample, ``max(workers, 1) / throughput``.
    worker_cpu_per_sample : CPU seconds the workers (0 workers: this process) spent per sample.
    consumer_cpu_per_sample : CPU seconds this process spent per sample (0 workers: everything).
    """

    workers: int
    samples: int
    samples_per_second: float
    wall_per_sample: float
    worker_cpu_per_sample: float
    consumer_cpu_per_sample: float


def write_cityscapes_like(root: str, images: int, image_size=(1024, 2048)) -> List[ListEntry]:
    """Write ``images`` synthetic Cityscapes train images under ``root``; their 7-fold entries."""
    write_synthetic_cityscapes(root, splits={"train": images}, image_size=tuple(image_size))
    return cityscapes_lists(root)["train_7fold"]


def decode_floor(entries: Sequence[ListEntry], data_dir: str, label_dir: str, repeats: int = 3) -> Floor:
    """Cost of decoding one image + label pair of ``entries`` (each distinct pair, ``repeats`` times)."""
    pairs = sorted({(resolve(data_dir, e.image), resolve(label_dir, e.label)) for e in entries})
    times = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        for image, label in pairs:
            start = time.perf_counter()
            cv2.imread(image, cv2.IMREAD_UNCHANGED)
            cv2.imread(label, cv2.IMREAD_UNCHANGED)
            times.append(time.perf_counter() - start)
    return Floor(float(np.median(times)), (time.process_time() - cpu_start) / len(times))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_iterator(dataset: SegmentationDataset, workers: int, samples: int) -> BenchRow:
    """Time ``samples`` batch-size-1 batches with ``workers`` workers, after one warm-up batch."""
    with SegmentationIter(dataset, 1, shuffle=True, num_workers=workers) as iterator:
        next(iterator)
        pids = iterator.worker_pids
        worker_cpu = sum(process_cpu_seconds(pid) for pid in pids)
        consumer_cpu = time.process_time()
        taken = 0
        start = time.perf_counter()
        while taken < samples:
            try:
                next(iterator)
                taken += 1
            except StopIteration:
                iterator.reset()
        wall = time.perf_counter() - start
        consumer = (time.process_time() - consumer_cpu) / taken
        worker = (sum(process_cpu_seconds(pid) for pid in pids) - worker_cpu) / taken if pids else consumer
    rate = taken / wall
    return BenchRow(workers, taken, rate, max(workers, 1) / rate, worker, consumer)


def run_benchmark(entries: Sequence[ListEntry], data_dir: str, label_dir: str, spec: SamplingSpec,
                  workers: Sequence[int] = (0, 1, 2), samples: int = 40) -> Tuple[Floor, List[BenchRow]]:
    """The decode floor and one :class:`BenchRow` per worker count."""
    floor = decode_floor(entries, data_dir, label_dir)
    dataset = SegmentationDataset(list(entries), spec, data_dir, label_dir)
    return floor, [measure_iterator(dataset, count, samples) for count in workers]


def format_table(floor: Floor, rows: Sequence[BenchRow], crop: Sequence[int]) -> str:
    """The benchmark as a small text table (times in ms, ratios to the decode floor)."""
    lines = [f"decode floor (image + label PNG): {floor.wall * 1000:.1f} ms wall, {floor.cpu * 1000:.1f} ms CPU; "
             f"crops {crop[0]}x{crop[1]}, batch 1",
             f"{'workers':>7} {'samples/s':>9} {'wall ms/sample/worker':>21} {'x floor':>7} "
             f"{'worker CPU ms/sample':>20} {'x floor':>7} {'consumer CPU ms/sample':>22}"]
    for row in rows:
        lines.append(f"{row.workers:>7} {row.samples_per_second:>9.2f} {row.wall_per_sample * 1000:>21.1f} "
                     f"{row.wall_per_sample / floor.wall:>7.2f} {row.worker_cpu_per_sample * 1000:>20.1f} "
                     f"{row.worker_cpu_per_sample / floor.cpu:>7.2f} {row.consumer_cpu_per_sample * 1000:>22.1f}")
    return "\n".join(lines)
