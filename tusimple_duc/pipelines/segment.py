"""test.py's job: segment the images of a list (or any images) and score them on the fly.

For every image: read it, predict full-resolution probabilities with the configured
inference modes (:mod:`tusimple_duc.inference`), and write

* ``score/<image name>.png``: the submission format of the dataset (Cityscapes labelIds for
  the official evaluator, KITTI road probabilities ``p * 255``, VOC class indices),
* ``color/<name>.png`` (dataset palette) and ``overlay/<name>.png`` (prediction over the image),
* optionally ``trainid/<name>.png`` and ``prob/<name>.npz`` (float16 ``(L, H, W)``),
* ``confidence.txt``: the mean max-probability per image (the released script's confidence),

and, when ground truth is found, accumulate the official metric of the dataset: at the end
``metrics.json``, the per-class table and ``figures/`` (confusion matrix, per-class IoU).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import mxnet as mx
import numpy as np
from tqdm import tqdm

from tusimple_duc.config import TestConfig
from tusimple_duc.data.lists import ListEntry, read_list, resolve
from tusimple_duc.data.readers import read_rgb_image
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.evaluation.report import EvaluationResult, format_tables, write_metrics_json
from tusimple_duc.inference.fast import FastForward
from tusimple_duc.inference.predictor import ForwardFn, Prediction, Predictor, spec_from_config
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.checkpoint import load_checkpoint
from tusimple_duc.models.from_config import spec_from_test_config
from tusimple_duc.models.presets import build_model
from tusimple_duc.models.segnet import SegmentationNet
from tusimple_duc.pipelines.dataset_outputs import DatasetOutputs, outputs_for
from tusimple_duc.viz.colorize import colorize, overlay, write_rgb_png
from tusimple_duc.viz.plots import write_result_figures

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


@dataclass
class SegmentationRun:
    """What :func:`run_test` did.

    Attributes
    ----------
    result_dir : the output folder.
    images : names of the images segmented, in order.
    confidences : mean max-probability of each image.
    metrics : the evaluation (None when no ground truth was found or evaluation is off).
    resized : images whose size differed from ``[data] test_shape``.
    """

    result_dir: str
    images: List[str] = field(default_factory=list)
    confidences: List[float] = field(default_factory=list)
    metrics: Optional[EvaluationResult] = None
    resized: List[str] = field(default_factory=list)


def select_contexts(gpu: Optional[int]) -> List[mx.Context]:
    """``[mx.gpu(gpu)]``, or ``[mx.cpu()]`` when ``gpu`` is None or negative."""
    if gpu is None or gpu < 0:
        return [mx.cpu()]
    available = mx.context.num_gpus()
    if gpu >= available:
        raise ConfigError(f"[model] gpu={gpu}: this machine has {available} GPU(s) visible to MXNet; "
                          f"use --set model.gpu=-1 for the CPU")
    return [mx.gpu(gpu)]


def load_network(config: TestConfig, contexts: Sequence[mx.Context]) -> SegmentationNet:
    """Build the config's network and load ``model_dir/model_prefix-%04d.params`` (strict)."""
    net = build_model(spec_from_test_config(config))
    prefix = os.path.join(config.model.model_dir, config.model.model_prefix)
    load_checkpoint(net, prefix, config.model.model_epoch, ctx=list(contexts))
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def calibration_batch(config: TestConfig, entries: Sequence[ListEntry], own_images: bool,
                      stride: int) -> np.ndarray:
    """int8 calibration inputs ``(K, 3, h, w)``: the first ``calibration_images`` images,
    mean-subtracted, cropped to their common size rounded down to a multiple of ``stride``."""
    chosen = entries[:config.inference.calibration_images]
    mean = np.asarray(config.data.rgb_mean, dtype=np.float32)
    images = [read_rgb_image(e.image if own_images else resolve(config.data.test_img_dir, e.image), e.where)
              for e in chosen]
    height = min(i.shape[0] for i in images) // stride * stride
    width = min(i.shape[1] for i in images) // stride * stride
    if height == 0 or width == 0:
        raise DataError(f"{chosen[0].where or chosen[0].image}: calibration images are smaller than the "
                        f"output stride {stride}")
    crops = [(i[:height, :width].astype(np.float32) - mean).transpose(2, 0, 1) for i in images]
    return np.ascontiguousarray(np.stack(crops))


def select_forward(config: TestConfig, net: SegmentationNet, contexts: Sequence[mx.Context],
                   entries: Sequence[ListEntry], own_images: bool) -> Optional[ForwardFn]:
    """The optimized CPU forward (``[inference] cpu_fast``, ``precision``) or None (plain)."""
    on_cpu = all(c.device_type == "cpu" for c in contexts)
    if not on_cpu:
        if config.inference.precision != "fp32":
            raise ConfigError(f"[inference] precision={config.inference.precision} is implemented for the CPU "
                              f"only; use fp32 on GPUs")
        return None
    if not config.inference.cpu_fast:
        return None
    calibration = None
    if config.inference.precision == "int8":
        calibration = calibration_batch(config, entries, own_images, net.output_stride)
    return FastForward(net, precision=config.inference.precision, calibration=calibration,
                       int8_fp32=config.inference.int8_fp32 or (), ctx=contexts[0])


def image_entries(paths: Sequence[str]) -> List[ListEntry]:
    """List entries (without labels) for image files and folders of images (sorted)."""
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise DataError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise DataError(f"{path}: no such image or folder")
    return [ListEntry(index, os.path.abspath(p), "", None, p) for index, p in enumerate(files)]


def output_name(image_path: str) -> str:
    """``score/<name>.png`` name of an image: its file name with a .png extension.

    Named after the image (not the label, as the released script did), so that the official
    Cityscapes evaluator matches it by ``city_sequence_frame``.
    """
    return os.path.splitext(os.path.basename(image_path))[0] + ".png"


def run_test(config: TestConfig, images: Optional[Sequence[str]] = None, show_progress: bool = True,
             net: Optional[SegmentationNet] = None) -> SegmentationRun:
    """Segment ``images`` (paths or folders) or the config's ``image_list``; see the module doc.

    ``net`` (already loaded) skips building and loading the checkpoint.
    """
    contexts = select_contexts(config.model.gpu)
    entries = image_entries(images) if images else read_list(config.data.image_list)
    net = net if net is not None else load_network(config, contexts)
    forward = select_forward(config, net, contexts, entries, bool(images))
    predictor = Predictor(net, spec_from_config(config), contexts=contexts, forward=forward)
    outputs = outputs_for(config.data.dataset, net.num_classes)
    evaluate = config.output.evaluate and not images
    run = SegmentationRun(result_dir=config.model.result_dir)
    evaluated = 0
    for entry in tqdm(entries, desc="segment", unit="image", disable=not show_progress):
        image_path = resolve(config.data.test_img_dir, entry.image) if not images else entry.image
        image = read_rgb_image(image_path, entry.where)
        if tuple(image.shape[:2]) != tuple(config.data.test_shape):
            run.resized.append(image_path)
        prediction = predictor.predict(image)
        name = output_name(image_path)
        _write_outputs(config, outputs, run.result_dir, name, image, prediction)
        run.images.append(name)
        run.confidences.append(prediction.confidence)
        if evaluate and entry.label:
            gt_path = resolve(config.data.gt_dir, entry.label)
            if os.path.isfile(gt_path):
                outputs.add_to_evaluator(prediction, gt_path, source=os.path.join(run.result_dir, "score", name))
                evaluated += 1
            else:
                log.warning("%s: no ground truth %s; image not evaluated", entry.where, gt_path)
    lines = [f"{name}\t{confidence:.6f}" for name, confidence in zip(run.images, run.confidences)]
    atomic_write_text(os.path.join(run.result_dir, "confidence.txt"), "\n".join(lines) + "\n")
    if run.resized:
        log.warning("%d image(s) differ from test_shape %s and were processed at their own size, e.g. %s",
                    len(run.resized), config.data.test_shape, run.resized[0])
    if evaluated:
        run.metrics = outputs.evaluator.result()
        write_metrics_json(os.path.join(run.result_dir, "metrics.json"), run.metrics)
        write_result_figures(run.metrics, os.path.join(run.result_dir, "figures"))
    return run


def _write_outputs(config: TestConfig, outputs: DatasetOutputs, result_dir: str, name: str,
                   image: np.ndarray, prediction: Prediction) -> None:
    outputs.write_score(os.path.join(result_dir, "score", name), prediction)
    colour = None
    if config.output.save_color or config.output.save_overlay:
        colour = colorize(prediction.labels, outputs.palette)
    if config.output.save_color:
        write_rgb_png(os.path.join(result_dir, "color", name), colour)
    if config.output.save_overlay:
        shown = image if image.shape[:2] == colour.shape[:2] else _resize_rgb(image, colour.shape[:2])
        write_rgb_png(os.path.join(result_dir, "overlay", name), overlay(shown, colour))
    if config.output.save_trainids:
        outputs.write_label_png(os.path.join(result_dir, "trainid", name), prediction.labels)
    if config.output.save_probabilities:
        outputs.write_probabilities(os.path.join(result_dir, "prob", os.path.splitext(name)[0] + ".npz"),
                                    prediction.probabilities)


def _resize_rgb(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def summary_text(run: SegmentationRun) -> str:
    """What test.py prints at the end: where things are, and the metrics table."""
    lines = [f"segmented {len(run.images)} image(s) -> {run.result_dir}",
             f"  score/ (submission format), color/, overlay/, confidence.txt "
             f"(mean confidence {np.mean(run.confidences):.4f})" if run.images else ""]
    if run.metrics is not None:
        lines += ["", format_tables(run.metrics), "",
                  f"metrics: {os.path.join(run.result_dir, 'metrics.json')}, figures: "
                  f"{os.path.join(run.result_dir, 'figures')}"]
    return "\n".join(line for line in lines if line is not None)
