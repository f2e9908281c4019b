"""Claims 2-3 trained: one run = one network variant and seed, trained in-process, scored per epoch.

Data: synthetic street scenes (``tusimple_duc.synthetic.render``, the demo's generator and size,
unchanged) rendered in memory from the design's data seed; input = RGB minus the training mean.
Training: the engine's :class:`~tusimple_duc.engine.trainer.SegmentationTrainer` (the released
normalised loss and update: rescale_grad = 1 / batch), SGD momentum 0.9, the demo config's weight
decay and clipping, poly learning rate (power 0.9), random horizontal crops and flips; with
``thin_crop_fraction`` > 0 that share of the crops is centred on a random thin-class pixel
(class-balanced sampling); with ``class_weighting = "log-frequency"`` the loss weighs each class by
ENet's ``1 / ln(1.02 + p_c)`` of its frequency in the training labels (mean 1 per pixel), the same
weights for every variant. The data, the crop order and the initialisation are drawn from the
seed, identical for every variant of one seed (paired design).

Every epoch the run scores the val images at full resolution (softmax, bilinear resize, argmax):
mIoU, per-class IoU, thin-class IoU, and the thin-structure band IoU (:mod:`.measures`). At the end
it also measures the gridding spectrum of the last backbone features on uniform regions and keeps
the predicted labels of a few val images for the figures. A run's result is one JSON file
(:func:`save_run`), written atomically, carrying the design's fingerprint.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.config import ModelSection
from tusimple_duc.data.labels import CITYSCAPES_CLASS_NAMES, CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_NUM_CLASSES
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.loss import log_frequency_class_weights, median_frequency_class_weights
from tusimple_duc.engine.schedules import LRSchedule
from tusimple_duc.engine.trainer import SegmentationTrainer
from tusimple_duc.evaluation.confusion import ConfusionAccumulator
from tusimple_duc.io.atomic import atomic_write_json
from tusimple_duc.models.presets import get_model
from tusimple_duc.synthetic.render import render_street_scene
from tusimple_duc.synthetic.street_layout import CITYSCAPES_STYLE
from experiments.claims.measures import SPECTRUM_WINDOW, band_confusion, band_iou, gridding_spectrum, uniform_cells

IGNORE_LABEL = 255
#: The classes narrower than the output stride in the synthetic data (2-6 px at 512 px wide).
THIN_CLASSES: Tuple[str, ...] = ("pole", "traffic light", "traffic sign")
THIN_IDS: Tuple[int, ...] = tuple(CITYSCAPES_CLASS_NAMES.index(name) for name in THIN_CLASSES)
#: Large uniform regions of the gridding measure.
UNIFORM_IDS: Tuple[int, ...] = tuple(CITYSCAPES_CLASS_NAMES.index(name) for name in ("road", "building", "sky"))
#: Val images whose predicted labels are kept for the figures.
KEPT_PREDICTIONS = 4


@dataclass(frozen=True)
class Variant:
    """A network: the tiny backbone with ``head`` and dilation ``schedule``, trained at ``lr``."""

    key: str
    title: str
    short: str
    head: str
    schedule: str
    lr: float


#: DUC 0.4 and bilinear 0.08 are each head's best rate of {0.4, 0.2, 0.08, 0.02} (seed 0, demo tuning;
#: batch 4, rescale_grad 1/4): the DUC loss is averaged over 16x more (sub-)pixels.
DUC_HDC = Variant("duc_hdc", "DUC + HDC (dilation-bigger)", "DUC, HDC", "duc", "dilation-bigger", 0.4)
BILINEAR_HDC = Variant("bilinear_hdc", "bilinear + HDC (dilation-bigger)", "bilinear, HDC", "bilinear",
                       "dilation-bigger", 0.08)
DUC_CONSTANT = Variant("duc_constant", "DUC + constant rates (deeplab)", "DUC, constant", "duc", "deeplab", 0.4)
VARIANTS: Tuple[Variant, ...] = (DUC_HDC, BILINEAR_HDC, DUC_CONSTANT)


@dataclass(frozen=True)
class Design:
    """Everything a run's result depends on (its :meth:`fingerprint` guards saved results).

    image_size: (H, W) px of the synthetic scenes; crop_width: px of the training crops (full height);
    width: base channels of the tiny backbone (blocks 1/1/4/3, deep stem, output stride 8, DUC cell 2);
    band_radius: px of the thin-structure band; weight_decay, clip_gradient: per the demo config;
    class_weighting: ``"none"`` or ``"log-frequency"`` (the loss's class weights, module docstring).
    """

    name: str
    image_size: Tuple[int, int]
    train_images: int
    val_images: int
    data_seed: int
    epochs: int
    batch_size: int
    crop_width: int
    thin_crop_fraction: float
    width: int
    seeds: Tuple[int, ...]
    band_radius: int = 3
    weight_decay: float = 1.25e-4
    clip_gradient: float = 1.25
    class_weighting: str = "none"

    def fingerprint(self) -> str:
        """Hash of every field except the seed list and the name (adding seeds keeps old runs valid)."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("seeds", "name")}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClaimsData:
    """``images`` (N, H, W, 3) uint8 RGB, ``inputs`` (N, 3, H, W) float32 mean-subtracted,
    ``labels`` (N, H, W) uint8 trainIds; train first, then val."""

    images: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray
    train_images: int

    def split(self, name: str) -> slice:
        return slice(0, self.train_images) if name == "train" else slice(self.train_images, None)


def render_data(design: Design) -> ClaimsData:
    """Render the design's train and val scenes (val drawn after train, one generator)."""
    rng = np.random.default_rng(design.data_seed)
    scenes = [render_street_scene(rng, design.image_size, CITYSCAPES_STYLE)
              for _ in range(design.train_images + design.val_images)]
    images = np.stack([scene.image for scene in scenes])
    labels = np.stack([CITYSCAPES_ID_TO_TRAINID[scene.annotation.label_ids] for scene in scenes]).astype(np.uint8)
    inputs = images.transpose(0, 3, 1, 2).astype(np.float32)
    inputs -= inputs[:design.train_images].mean(axis=(0, 2, 3), keepdims=True)
    return ClaimsData(images, inputs, labels, design.train_images)


def build_network(design: Design, variant: Variant):
    """The tiny network of ``variant`` (uninitialised), BatchNorm learning (momentum 0.9)."""
    return get_model("tiny_duc_hdc", num_classes=CITYSCAPES_NUM_CLASSES, head=variant.head,
                     dilation_schedule=variant.schedule, width=design.width, aspp=0, cell_width=2,
                     bn_use_global_stats=False, bn_momentum=0.9)


CLASS_WEIGHTINGS = ("none", "log-frequency", "median-frequency")


def class_weights(design: Design, labels: np.ndarray) -> Optional[np.ndarray]:
    """The loss's (L,) class weights of ``design`` from the training ``labels`` (N, H, W), or None."""
    if design.class_weighting not in CLASS_WEIGHTINGS:
        raise ValueError(f"class_weighting {design.class_weighting!r}: expected one of {', '.join(CLASS_WEIGHTINGS)}")
    if design.class_weighting == "none":
        return None
    weigh = log_frequency_class_weights if design.class_weighting == "log-frequency" else median_frequency_class_weights
    return weigh(labels, CITYSCAPES_NUM_CLASSES, IGNORE_LABEL)


def crop_offsets(labels: np.ndarray, crop_width: int, thin_fraction: float, rng: np.random.Generator) -> List[int]:
    """Left edge of one crop per (H, W) label map: uniform, or with probability ``thin_fraction``
    (when the map has thin-class pixels) centred on a column of a thin class drawn uniformly among
    the thin classes present (class-balanced: lights and signs as often as poles), clamped to the image."""
    offsets = []
    for label in labels:
        span = label.shape[1] - crop_width
        present = [c for c in THIN_IDS if (label == c).any()]
        if rng.random() < thin_fraction and present:
            columns = np.nonzero((label == present[int(rng.integers(len(present)))]).any(axis=0))[0]
            centre = int(rng.choice(columns))
            offsets.append(int(np.clip(centre - crop_width // 2, 0, span)))
        else:
            offsets.append(int(rng.integers(0, span + 1)))
    return offsets


@dataclass
class Score:
    """Val scores of one epoch (fractions; per-class IoU NaN for absent classes)."""

    miou: float
    class_iou: List[float]
    thin_iou: float
    band_iou: float


def score(net, data: ClaimsData, band_radius: int, keep: int = 0) -> Tuple[Score, List[np.ndarray]]:
    """Score ``net`` on the val images; returns the scores and the first ``keep`` predicted label maps."""
    whole = ConfusionAccumulator(CITYSCAPES_NUM_CLASSES, IGNORE_LABEL)
    band = np.zeros((CITYSCAPES_NUM_CLASSES, CITYSCAPES_NUM_CLASSES), dtype=np.int64)
    kept = []
    val = data.split("val")
    for index, (image, label) in enumerate(zip(data.inputs[val], data.labels[val])):
        prediction = net.predict(mx.nd.array(image[None])).argmax(axis=1).asnumpy()[0].astype(np.int64)
        whole.add(prediction, label)
        band += band_confusion(prediction, label, CITYSCAPES_NUM_CLASSES, THIN_IDS, band_radius, IGNORE_LABEL)
        if index < keep:
            kept.append(prediction.astype(np.uint8))
    iou = whole.iou()
    return Score(float(whole.mean_iou()), [float(v) for v in iou], float(np.nanmean(iou[list(THIN_IDS)])),
                 band_iou(band)), kept


def feature_spectrum(net, data: ClaimsData) -> Tuple[np.ndarray, int]:
    """The gridding spectrum (:func:`~.measures.gridding_spectrum`) of the last backbone features,
    summed over the val images; and the number of windows."""
    total, count = np.zeros((SPECTRUM_WINDOW, SPECTRUM_WINDOW)), 0
    val = data.split("val")
    for image, label in zip(data.inputs[val], data.labels[val]):
        features = net.backbone(mx.nd.array(image[None])).asnumpy()[0]
        cells = uniform_cells(label, image.shape[1] // features.shape[1], UNIFORM_IDS)
        spectrum, windows = gridding_spectrum(features, cells)
        total += spectrum
        count += windows
    return total, count


def train_run(design: Design, variant: Variant, seed: int, data: ClaimsData,
              on_epoch: Callable[[Dict], None] = lambda row: None) -> Dict:
    """Train and score one run (module docstring); returns its JSON-ready result. ``on_epoch``
    receives each epoch's row of the learning curve."""
    mx.random.seed(seed)
    rng = np.random.default_rng(seed)
    net = build_network(design, variant)
    net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34))
    train = data.split("train")
    inputs, labels = data.inputs[train], data.labels[train]
    net(mx.nd.array(inputs[:1, :, :, :design.crop_width]))
    net.hybridize(static_alloc=True)
    per_epoch = len(inputs) // design.batch_size
    model = ModelSection(lr=variant.lr, momentum=0.9, weight_decay=design.weight_decay,
                         clip_gradient=design.clip_gradient, num_epochs=design.epochs)
    schedule = LRSchedule(policy="poly", base_lr=variant.lr, updates_per_epoch=per_epoch, num_epochs=design.epochs,
                          factor=1.0, factor_epoch=1.0, power=0.9)
    trainer = SegmentationTrainer(net, DeviceSetup([mx.cpu()], None), schedule, model, IGNORE_LABEL,
                                  design.batch_size, class_weights=class_weights(design, labels))
    curve: List[Dict] = []
    start = time.perf_counter()
    kept: List[np.ndarray] = []
    for epoch in range(design.epochs):
        order = rng.permutation(len(inputs))
        losses = []
        for k in range(per_epoch):
            index = order[k * design.batch_size:(k + 1) * design.batch_size]
            offsets = crop_offsets(labels[index], design.crop_width, design.thin_crop_fraction, rng)
            batch = np.stack([inputs[i, :, :, o:o + design.crop_width] for i, o in zip(index, offsets)])
            target = np.stack([labels[i, :, o:o + design.crop_width] for i, o in zip(index, offsets)])
            if rng.random() < 0.5:
                batch, target = batch[..., ::-1], target[..., ::-1]
            result = trainer.step(np.ascontiguousarray(batch), np.ascontiguousarray(target).astype(np.float32))
            losses.append(result.loss)
        last = epoch == design.epochs - 1
        epoch_score, kept = score(net, data, design.band_radius, KEPT_PREDICTIONS if last else 0)
        curve.append(dict(epoch=epoch + 1, loss=float(np.mean(losses)), **asdict(epoch_score)))
        on_epoch(curve[-1])
    seconds = time.perf_counter() - start
    spectrum, windows = feature_spectrum(net, data)
    final = curve[-1]
    return dict(variant=variant.key, seed=seed, design=design.fingerprint(), seconds=seconds, curve=curve,
                miou=final["miou"], class_iou=final["class_iou"], thin_iou=final["thin_iou"],
                band_iou=final["band_iou"], spectrum=spectrum.tolist(), spectrum_windows=windows,
                predictions=[p.tolist() for p in kept])


def run_path(work_dir: str, variant: Variant, seed: int) -> str:
    return os.path.join(work_dir, "runs", f"{variant.key}-seed{seed}.json")


def save_run(work_dir: str, result: Dict) -> str:
    """Write one run's result atomically; returns its path."""
    path = os.path.join(work_dir, "runs", f"{result['variant']}-seed{result['seed']}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_json(path, result)
    return path


def load_run(work_dir: str, design: Design, variant: Variant, seed: int) -> Optional[Dict]:
    """The saved result of a run of this design, or None (missing, unreadable, or another design's)."""
    path = run_path(work_dir, variant, seed)
    try:
        with open(path) as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        return None
    return result if result.get("design") == design.fingerprint() else None
