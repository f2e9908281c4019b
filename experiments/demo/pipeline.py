"""The demo, step by step: synthetic Cityscapes -> lists -> train -> test -> figures.

``tools/demo.py`` runs :func:`run_demo`; each step is a function of its own:

1. :func:`write_dataset`: a synthetic Cityscapes (exact release layout) under ``<out>/cityscapes``;
2. :func:`write_dataset_lists`: its lists (``train_7fold``, ``train_12fold``, ``val``, ...) in ``<out>/lists``;
3. :func:`train_model`: ``train.py``'s code path (:func:`tusimple_duc.engine.run.train`) with
   ``configs/train/demo_synthetic.cfg``; checkpoints, log and metrics in the run folder
   ``<out>/model/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/``;
4. :func:`evaluate_model`: ``test.py``'s code path (:func:`tusimple_duc.pipelines.segment.run_test`)
   with ``configs/test/demo_synthetic.cfg`` on the val split, scored by the official Cityscapes
   protocol; ``<out>/results/{score,color,overlay}/``, ``metrics.json``, ``figures/``;
5. :func:`majority_baseline`: the trivial predictor "the most frequent training class at each pixel
   position", scored the same way (``<out>/baseline/metrics.json``);
6. optionally :func:`segment_with_released`: the user's released ResNet-101 checkpoint on the same
   images (``<out>/released/``);
7. :func:`write_mosaics`: ``image | ground truth | prediction [| released]`` per val image
   (``<out>/mosaic/``) and all of them stacked (``<out>/mosaic.png``); training curves
   (``<out>/training_curves.png``).

Everything is a function of the seed: the data, the sample order and augmentation, the
initialisation.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tusimple_duc.config import ArchitectureSection, TestConfig, TrainConfig, load_test_config, load_train_config
from tusimple_duc.data.datasets import write_lists
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.data.labels import CITYSCAPES_NUM_CLASSES, CITYSCAPES_TRAINID_TO_ID
from tusimple_duc.data.readers import LabelCodec, read_rgb_image
from tusimple_duc.synthetic.cityscapes import SyntheticFrame, SyntheticSummary, write_synthetic_cityscapes
from tusimple_duc.viz.curves import plot_training_log
from tusimple_duc.engine.run import TrainResult, train
from tusimple_duc.data.png import read_png
from tusimple_duc.errors import CheckpointError, EvaluationError
from tusimple_duc.evaluation.cityscapes import CityscapesEvaluator, instance_path
from tusimple_duc.evaluation.report import EvaluationResult, format_tables, write_metrics_json
from tusimple_duc.io.checkpoint import params_path
from tusimple_duc.pipelines.segment import SegmentationRun, output_name, run_test
from tusimple_duc.viz.colorize import colorize, mosaic, segmentation_mosaic, write_rgb_png

RELEASED_PRESET = "resnet101_duc_hdc_released"
RELEASED_EPOCH = 20


@dataclass(frozen=True)
class DemoData:
    """Size of the synthetic dataset: images per split, (H, W) in pixels, seed."""

    train_images: int = 64
    val_images: int = 8
    image_size: Tuple[int, int] = (256, 512)
    seed: int = 0


#: ``--quick``: a few small images, one short epoch (the tests).
QUICK_DATA = DemoData(train_images=2, val_images=2, image_size=(64, 128))
QUICK_TRAIN_OVERRIDES: Tuple[str, ...] = (
    "model.num_epochs=1", "data.crop_shape=64,64", "data.random_bound=8,8", "data.batch_size=2",
    "model.log_interval=2")


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo writes: every folder and file below ``out``."""

    out: str

    def _under(self, name: str) -> str:
        return os.path.join(self.out, name)

    @property
    def dataset(self) -> str:
        return self._under("cityscapes")

    @property
    def lists(self) -> str:
        return self._under("lists")

    @property
    def model(self) -> str:
        return self._under("model")

    @property
    def results(self) -> str:
        return self._under("results")

    @property
    def baseline(self) -> str:
        return self._under("baseline")

    @property
    def released(self) -> str:
        return self._under("released")

    @property
    def mosaics(self) -> str:
        return self._under("mosaic")

    @property
    def mosaic(self) -> str:
        return self._under("mosaic.png")

    @property
    def curves(self) -> str:
        return self._under("training_curves.png")


@dataclass
class DemoResult:
    """What :func:`run_demo` produced (paths, metrics, seconds per step)."""

    paths: DemoPaths
    train: TrainResult
    test: SegmentationRun
    baseline: EvaluationResult
    chance_miou: float
    released: Optional[SegmentationRun] = None
    mosaics: List[str] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)

    @property
    def miou(self) -> float:
        return float(self.test.metrics.summary["mIoU"])


# ---------------------------------------------------------------------------- steps 1-2: data
def write_dataset(paths: DemoPaths, data: DemoData) -> SyntheticSummary:
    """Step 1: the synthetic Cityscapes train and val splits under ``paths.dataset``."""
    return write_synthetic_cityscapes(paths.dataset, {"train": data.train_images, "val": data.val_images},
                                      image_size=data.image_size, seed=data.seed)


def write_dataset_lists(paths: DemoPaths, data: DemoData) -> Dict[str, int]:
    """Step 2: the Cityscapes lists of the dataset (12-fold patches of the image height) in ``paths.lists``;
    returns the line count of each list."""
    return write_lists(cityscapes_lists(paths.dataset, patch=min(data.image_size)), paths.lists)


# ---------------------------------------------------------------------------- steps 3-4: train, test
def demo_train_config(config_path: str, paths: DemoPaths, overrides: Sequence[str] = ()) -> TrainConfig:
    """The training config of the demo with its folders moved under ``paths`` (then ``overrides``)."""
    folders = [f"data.data_dir={paths.dataset}", f"data.label_dir={paths.dataset}",
               f"data.train_list={os.path.join(paths.lists, 'train_7fold.lst')}",
               f"data.val_list={os.path.join(paths.lists, 'val.lst')}", f"model.model_dir={paths.model}"]
    return load_train_config(config_path, folders + list(overrides))


def demo_test_config(config_path: str, paths: DemoPaths, train_config: TrainConfig, data: DemoData,
                     overrides: Sequence[str] = ()) -> TestConfig:
    """The test config of the demo for the last checkpoint of ``train_config``, on the val list;
    its ``model_dir`` is the training's ``model_dir`` until :func:`for_run` names the run folder."""
    model = train_config.model
    height, width = data.image_size
    settings = [f"model.model_dir={model.model_dir}", f"model.model_prefix={model.save_model_prefix}",
                f"model.model_epoch={model.num_epochs}", f"model.result_dir={paths.results}",
                f"data.image_list={os.path.join(paths.lists, 'val.lst')}", f"data.test_img_dir={paths.dataset}",
                f"data.gt_dir={paths.dataset}", f"data.test_shape={height},{width}",
                f"data.result_shape={height},{width}"]
    return load_test_config(config_path, settings + list(overrides))


def train_model(config: TrainConfig) -> TrainResult:
    """Step 3: train as ``train.py`` does (progress bars and log on stderr), into a new run
    folder ``<model_dir>/<save_model_prefix>/<time>/``; earlier demos' runs stay."""
    return train(config)


def for_run(config: TestConfig, run_dir: str) -> TestConfig:
    """``config`` reading its checkpoint from the run folder ``run_dir``."""
    return dataclasses.replace(config, model=dataclasses.replace(config.model, model_dir=run_dir))


def evaluate_model(config: TestConfig, show_progress: bool = True) -> SegmentationRun:
    """Step 4: segment and score as ``test.py`` does."""
    return run_test(config, show_progress=show_progress)


# ---------------------------------------------------------------------------- step 5: trivial baseline
def majority_label_map(train_labels: Sequence[str]) -> np.ndarray:
    """The most frequent trainId at every pixel position over the training label files.

    ``train_labels``: ``*_gtFine_labelIds.png`` paths of equal size (H, W). Ignored pixels do not
    vote; a position no image labels gets the most frequent trainId overall; ties go to the
    lower trainId. Returns (H, W) uint8 trainIds.
    """
    codec = LabelCodec("cityscapes")
    votes: Optional[np.ndarray] = None
    for path in train_labels:
        train_ids = codec.lut[codec.read(path)]
        if votes is None:
            votes = np.zeros((CITYSCAPES_NUM_CLASSES,) + train_ids.shape, dtype=np.int32)
        for class_id in range(CITYSCAPES_NUM_CLASSES):
            votes[class_id] += train_ids == class_id
    if votes is None:
        raise ValueError("majority_label_map needs at least one training label")
    majority = votes.argmax(axis=0).astype(np.uint8)
    unlabelled = votes.sum(axis=0) == 0
    majority[unlabelled] = votes.sum(axis=(1, 2)).argmax()
    return majority


def score_label_maps(frames: Sequence[SyntheticFrame], predict: Callable[[np.ndarray], np.ndarray],
                     source: str) -> EvaluationResult:
    """Score a predictor that needs no image with the official Cityscapes protocol (with iIoU).

    ``predict`` maps a frame's ground-truth trainIds (H, W) to predicted trainIds (H, W) (a fixed map,
    or a function of the ground truth such as an upsampling ceiling); ``source`` names it in errors.
    """
    codec = LabelCodec("cityscapes")
    evaluator = CityscapesEvaluator()
    for frame in frames:
        gt_path = frame.files["gtFine_labelIds"]
        label_ids = codec.read(gt_path)
        instances = read_png(instance_path(gt_path), ("I;16", "I"), "ground-truth instanceIds",
                             error=EvaluationError)
        prediction = CITYSCAPES_TRAINID_TO_ID[predict(codec.lut[label_ids])]
        evaluator.add(prediction, label_ids, instances, source=source)
    return evaluator.result()


def majority_baseline(summary: SyntheticSummary, out_dir: str) -> EvaluationResult:
    """Step 5: score :func:`majority_label_map` of the train split on every val image with the
    official Cityscapes protocol (as test.py scores a network); writes ``out_dir/metrics.json``."""
    majority = majority_label_map([frame.files["gtFine_labelIds"] for frame in summary.frames["train"]])
    result = score_label_maps(summary.frames["val"], lambda ground_truth: majority, "majority baseline")
    write_metrics_json(os.path.join(out_dir, "metrics.json"), result)
    return result


def chance_miou(class_pixels: np.ndarray) -> float:
    """Expected mIoU of guessing one of the L classes uniformly at random at every pixel.

    With ``g`` the fraction of the evaluated pixels of a class, its expected counts are
    TP = g / L, FP = (1 - g) / L, FN = g (L - 1) / L (per pixel), so IoU = g / (1 + (L - 1) g);
    the mean is over the classes present. ``class_pixels``: (L,) ground-truth pixel counts.
    """
    counts = np.asarray(class_pixels, dtype=np.float64)
    fractions = counts[counts > 0] / counts.sum()
    return float(np.mean(fractions / (1.0 + (len(counts) - 1) * fractions)))


# ---------------------------------------------------------------------------- step 6: released model
def released_test_config(config: TestConfig, prefix: str, epoch: int, result_dir: str) -> TestConfig:
    """``config`` running the released ResNet-101-DUC-HDC checkpoint ``prefix``-``epoch`` instead
    (its own architecture: the released preset, no [network] overrides), written to ``result_dir``."""
    model = dataclasses.replace(config.model, model_dir=os.path.dirname(prefix) or ".",
                                model_prefix=os.path.basename(prefix), model_epoch=epoch, result_dir=result_dir)
    data = dataclasses.replace(config.data, ds_rate=None, cell_width=None)
    return dataclasses.replace(config, model=model, data=data, network=ArchitectureSection(preset=RELEASED_PRESET))


def check_released(prefix: str, epoch: int) -> None:
    """Raise CheckpointError unless ``prefix-%04d.params`` exists (checked before training starts)."""
    if not os.path.isfile(params_path(prefix, epoch)):
        raise CheckpointError(f"{params_path(prefix, epoch)}: released checkpoint not found "
                              f"(--released PREFIX names PREFIX-symbol.json and PREFIX-{epoch:04d}.params)")


def segment_with_released(config: TestConfig, prefix: str, epoch: int, result_dir: str,
                          show_progress: bool = True) -> SegmentationRun:
    """Step 6: the released checkpoint on the images of ``config``, at their resolution."""
    check_released(prefix, epoch)
    return run_test(released_test_config(config, prefix, epoch, result_dir), show_progress=show_progress)


# ---------------------------------------------------------------------------- step 7: figures
def write_mosaics(frames: Sequence[SyntheticFrame], predictions: Sequence[Tuple[str, str]], mosaic_dir: str,
                  combined_path: str) -> List[str]:
    """``image | ground truth | prediction`` for every frame, one more panel per extra prediction.

    ``predictions``: ``(title, result_dir)`` pairs whose ``score/`` holds labelIds PNGs named as
    test.py names them; the first is the main prediction. Writes ``mosaic_dir/<name>.png`` per
    frame and all of them stacked top to bottom into ``combined_path``; returns the per-frame paths.
    """
    codec = LabelCodec("cityscapes")
    rows, written = [], []
    for frame in frames:
        image = read_rgb_image(frame.image)
        name = output_name(frame.image, frame.files["gtFine_labelIds"])
        scores = [codec.read(os.path.join(result_dir, "score", name)) for _, result_dir in predictions]
        row = segmentation_mosaic(image, codec.read(frame.files["gtFine_labelIds"]), scores[0],
                                  "cityscapes_label_ids")
        extra = [mosaic([colorize(score, "cityscapes_label_ids")], [title])
                 for (title, _), score in zip(predictions[1:], scores[1:])]
        row = mosaic([row] + extra) if extra else row
        path = os.path.join(mosaic_dir, name)
        write_rgb_png(path, row)
        rows.append(row)
        written.append(path)
    write_rgb_png(combined_path, np.concatenate(rows, axis=0))
    return written


# ---------------------------------------------------------------------------- all steps
def run_demo(paths: DemoPaths, train_config_path: str, test_config_path: str, data: DemoData = DemoData(),
             train_overrides: Sequence[str] = (), released: Optional[Tuple[str, int]] = None,
             show_progress: bool = True, say: Callable[[str], None] = lambda message: None) -> DemoResult:
    """Every step of the demo (module docstring) into ``paths.out``.

    ``train_overrides``: ``section.key=value`` settings on top of the training config (``--quick``
    uses :data:`QUICK_TRAIN_OVERRIDES`); ``released``: ``(prefix, epoch)`` of the released
    checkpoint to add to the mosaics; ``say`` receives one line per step.
    """
    seconds: Dict[str, float] = {}
    clock = time.time()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = time.time() - clock
        clock = time.time()

    train_config = demo_train_config(train_config_path, paths, [f"env.seed={data.seed}", *train_overrides])
    test_config = demo_test_config(test_config_path, paths, train_config, data)
    if released is not None:
        check_released(*released)
    say(f"[1/7] writing a synthetic Cityscapes ({data.train_images} train + {data.val_images} val images, "
        f"{data.image_size[0]}x{data.image_size[1]}) to {paths.dataset}")
    summary = write_dataset(paths, data)
    lap("data")
    counts = write_dataset_lists(paths, data)
    say(f"[2/7] lists in {paths.lists}: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    lap("lists")
    say(f"[3/7] training {train_config.network.preset} ({train_config.model.num_epochs} epochs of "
        f"{counts['train_7fold']} 7-fold patches) -> {paths.model}")
    trained = train_model(train_config)
    assert trained.run_dir is not None  # a single process is the chief
    test_config = for_run(test_config, trained.run_dir)
    lap("train")
    say(f"[4/7] segmenting and scoring the val split -> {paths.results}")
    tested = evaluate_model(test_config, show_progress)
    lap("test")
    say("[5/7] trivial baseline: the most frequent training class at each pixel position")
    baseline = majority_baseline(summary, paths.baseline)
    lap("baseline")
    predictions = [("prediction", paths.results)]
    released_run = None
    if released is not None:
        say(f"[6/7] the released ResNet-101-DUC-HDC {released[0]}-{released[1]:04d} on the val images -> "
            f"{paths.released}")
        released_run = segment_with_released(test_config, released[0], released[1], paths.released, show_progress)
        predictions.append(("released ResNet-101", paths.released))
        lap("released")
    say(f"[7/7] mosaics and training curves -> {paths.mosaic}, {paths.curves}")
    mosaics = write_mosaics(summary.frames["val"], predictions, paths.mosaics, paths.mosaic)
    plot_training_log(os.path.join(trained.run_dir, train_config.model.save_model_prefix) + "-metrics.jsonl",
                      paths.curves, title="demo training")
    lap("figures")
    return DemoResult(paths, trained, tested, baseline, chance_miou(summary.train_id_pixel_counts("val")),
                      released_run, mosaics, seconds)


def summary_text(result: DemoResult) -> str:
    """What ``tools/demo.py`` prints at the end: the metrics table, the comparison, where everything is."""
    paths, tested = result.paths, result.test
    lines = [format_tables(tested.metrics), ""]
    lines.append(f"mIoU on the synthetic val split ({tested.metrics.num_images} images, official Cityscapes "
                 f"protocol): {100 * result.miou:.1f}%  (majority class per pixel position: "
                 f"{100 * result.baseline.summary['mIoU']:.1f}%; uniform random guess: "
                 f"{100 * result.chance_miou:.1f}%)")
    if result.released is not None and result.released.metrics is not None:
        released_miou = result.released.metrics.summary["mIoU"]
        lines.append(f"released ResNet-101 on the same images: mIoU {100 * released_miou:.1f}%")
    lines += [
        "",
        f"dataset        {paths.dataset}",
        f"lists          {paths.lists}",
        f"checkpoints    {result.train.checkpoint} (log, config: {result.train.run_dir})",
        f"predictions    {paths.results}/score (labelIds), color/, overlay/, confidence.txt",
        f"metrics        {os.path.join(paths.results, 'metrics.json')}, "
        f"figures: {os.path.join(paths.results, 'figures')}",
        f"baseline       {os.path.join(paths.baseline, 'metrics.json')}",
    ]
    if result.released is not None:
        lines.append(f"released       {paths.released}")
    lines += [f"mosaics        {paths.mosaic} (all val images), {paths.mosaics}/ (one per image)",
              f"curves         {paths.curves}",
              "time           " + ", ".join(f"{step} {sec:.0f} s" for step, sec in result.seconds.items())
              + f" (total {sum(result.seconds.values()):.0f} s)"]
    return "\n".join(lines)
