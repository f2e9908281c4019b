"""Data, training, scoring and costing of one compared system.

Data: synthetic street scenes (``tusimple_duc.synthetic.render``, Cityscapes style and classes)
rendered in memory at the budget's size; the input is RGB minus the training images' mean. Each
system trains with the engine's :class:`~tusimple_duc.engine.trainer.SegmentationTrainer` (SGD,
momentum 0.9, the released normalised loss; labels at full resolution, nearest-resized to each
output by ``engine.loss``), poly learning rate (power 0.9), random horizontal flips, the same
images, order and number of updates for every system. Scores: Cityscapes-style mIoU over the 19
classes on the validation images at full resolution (softmax, bilinear resize, argmax), and the mean
IoU of the thin classes (pole, traffic light, traffic sign: narrower than the output stride).
Costs are measured at full size in a fresh process per system (:func:`measure_cost`).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.config import ModelSection
from tusimple_duc.data.labels import CITYSCAPES_CLASS_NAMES, CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_NUM_CLASSES
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.schedules import LRSchedule
from tusimple_duc.engine.trainer import SegmentationTrainer
from tusimple_duc.evaluation.confusion import ConfusionAccumulator
from tusimple_duc.models.flops import count_network_macs
from tusimple_duc.models.segnet import count_parameters
from tusimple_duc.synthetic.render import render_street_scene
from tusimple_duc.synthetic.street_layout import CITYSCAPES_STYLE
from experiments.bench.protocol import peak_memory
from experiments.systems.entries import SystemEntry

IGNORE_LABEL = 255
THIN_CLASSES: Tuple[str, ...] = ("pole", "traffic light", "traffic sign")


@dataclass(frozen=True)
class Budget:
    """Image size (H, W), training and validation image counts, epochs, batch size, and the
    size at which latency and memory are measured. ``full``: costs of the full-size networks
    (hybridized), each in its own process; else (the quick budget for CI) the tiny networks,
    imperatively, in the calling process (no memory figure)."""

    name: str
    image_size: Tuple[int, int]
    train_images: int
    val_images: int
    epochs: int
    batch_size: int
    cost_size: Tuple[int, int]
    cost_repeats: int
    full: bool


QUICK = Budget("quick", (32, 64), 4, 2, 1, 2, (32, 64), 1, False)
FULL = Budget("full", (128, 256), 160, 40, 12, 4, (512, 1024), 2, True)
BUDGETS = {budget.name: budget for budget in (QUICK, FULL)}


@dataclass(frozen=True)
class Split:
    """``images`` (N, 3, H, W) float32 mean-subtracted RGB, ``labels`` (N, H, W) float32 trainIds."""

    images: np.ndarray
    labels: np.ndarray


def render_splits(budget: Budget, seed: int = 0) -> Tuple[Split, Split]:
    """Training and validation images of the budget (the validation ones drawn after)."""
    rng = np.random.default_rng(seed)
    scenes = [render_street_scene(rng, budget.image_size, CITYSCAPES_STYLE)
              for _ in range(budget.train_images + budget.val_images)]
    images = np.stack([s.image for s in scenes]).transpose(0, 3, 1, 2).astype(np.float32)
    labels = np.stack([CITYSCAPES_ID_TO_TRAINID[s.annotation.label_ids] for s in scenes]).astype(np.float32)
    mean = images[:budget.train_images].mean(axis=(0, 2, 3), keepdims=True)
    images -= mean
    n = budget.train_images
    return Split(images[:n], labels[:n]), Split(images[n:], labels[n:])


@dataclass(frozen=True)
class Trained:
    """Scores of one trained system: ``miou``, ``thin_iou`` (fractions), per-class ``iou``,
    per-update ``losses`` and training ``seconds``."""

    miou: float
    thin_iou: float
    iou: Tuple[float, ...]
    losses: Tuple[float, ...]
    seconds: float


def train_and_score(entry: SystemEntry, budget: Budget, train: Split, val: Split, seed: int = 0) -> Trained:
    """Train ``entry``'s tiny network on ``train`` and score it on ``val`` (module docstring)."""
    mx.random.seed(seed)
    net = entry.build(CITYSCAPES_NUM_CLASSES, training=True)
    net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34))
    net(mx.nd.array(train.images[:1]))
    net.hybridize(static_alloc=True)  # the engine's way of training
    per_epoch = len(train.images) // budget.batch_size
    model = ModelSection(lr=entry.lr, momentum=0.9, weight_decay=5e-4, clip_gradient=5.0, num_epochs=budget.epochs)
    schedule = LRSchedule(policy="poly", base_lr=entry.lr, updates_per_epoch=per_epoch, num_epochs=budget.epochs,
                          factor=1.0, factor_epoch=1.0, power=0.9)
    trainer = SegmentationTrainer(net, DeviceSetup([mx.cpu()], None), schedule, model, IGNORE_LABEL,
                                  budget.batch_size)
    rng = np.random.default_rng(seed)
    losses: List[float] = []
    start = time.perf_counter()
    for _ in range(budget.epochs):
        order = rng.permutation(len(train.images))
        for k in range(per_epoch):
            index = order[k * budget.batch_size:(k + 1) * budget.batch_size]
            data, label = train.images[index], train.labels[index]
            if rng.random() < 0.5:
                data, label = data[..., ::-1], label[..., ::-1]
            losses.append(trainer.step(np.ascontiguousarray(data), np.ascontiguousarray(label)).loss)
    seconds = time.perf_counter() - start
    inference = entry.build(CITYSCAPES_NUM_CLASSES, training=False)
    trained = net.collect_params()
    for name, param in inference.collect_params().items():
        param.initialize(mx.init.Constant(trained[name].data()))
    confusion = ConfusionAccumulator(CITYSCAPES_NUM_CLASSES, IGNORE_LABEL)
    for image, label in zip(val.images, val.labels):
        prob = inference.predict(mx.nd.array(image[None]))
        confusion.add(prob.argmax(axis=1).asnumpy()[0].astype(np.int64), label.astype(np.int64))
    iou = confusion.iou()
    thin = [iou[CITYSCAPES_CLASS_NAMES.index(name)] for name in THIN_CLASSES]
    return Trained(confusion.mean_iou(), float(np.nanmean(thin)) if not np.isnan(thin).all() else float("nan"),
                   tuple(float(v) for v in iou), tuple(losses), seconds)


@dataclass(frozen=True)
class Cost:
    """Full-size (or, in the quick budget, tiny) network costs on one ``(3, H, W)`` image:
    ``parameters``, conv + deconv ``gmacs`` (``models.flops``), median forward ``latency`` (s, CPU,
    after one warm-up) and ``peak_mb``: the process's peak resident memory above its size before
    the network was built (MiB; NaN in the quick budget)."""

    parameters: int
    gmacs: float
    latency: float
    peak_mb: float


def cost_in_this_process(entry: SystemEntry, budget: Budget) -> Cost:
    """:class:`Cost` of ``entry`` measured in the calling process (a fresh one: ``peak_mb`` is
    its peak resident size above its size at the call; ``VmHWM``, which unlike ``ru_maxrss``
    does not carry the parent's peak over ``exec``)."""
    baseline = peak_memory()["peak_rss_mb"]
    height, width = budget.cost_size
    net = entry.build_full(CITYSCAPES_NUM_CLASSES) if budget.full else entry.build(
        CITYSCAPES_NUM_CLASSES, training=False)
    macs = count_network_macs(net, height, width).gemm
    net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34))
    if budget.full:
        net.hybridize(static_alloc=True)
    x = mx.nd.zeros((1, 3, height, width))
    net(x).wait_to_read()
    times = []
    for _ in range(budget.cost_repeats):
        start = time.perf_counter()
        net(x).wait_to_read()
        times.append(time.perf_counter() - start)
    memory = peak_memory()["peak_rss_mb"] - baseline if budget.full else float("nan")
    return Cost(count_parameters(net), macs / 1e9, float(np.median(times)), memory)


def measure_cost(entry: SystemEntry, budget: Budget) -> Cost:
    """:class:`Cost` of ``entry``; with ``budget.full`` measured in a fresh process (``python -m
    experiments.systems.cost``), so that its peak memory is its own. Raises RuntimeError with the
    child's last error line."""
    if not budget.full:
        return cost_in_this_process(entry, budget)
    done = subprocess.run([sys.executable, "-m", "experiments.systems.cost", entry.key, budget.name],
                          capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{entry.key}: cost measurement failed: {error}")
    return Cost(**json.loads(lines[-1]))
