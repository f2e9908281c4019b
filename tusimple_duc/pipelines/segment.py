"""test.py's job: segment the images of a list (or any images) and score them on the fly.

For every image: read it, predict result-resolution probabilities with the configured
inference modes (:mod:`tusimple_duc.inference`), and write what the released script wrote,
named as it named them (:func:`output_name`: the last path component of the list line, i.e.
the label file when the line has one, ``jpg`` replaced by ``png``):

* ``score/<name>``: the submission format of the dataset (Cityscapes labelIds for the official
  evaluator, which finds ``city_sequence_frame*.png``; KITTI road ``p * 255``; VOC class indices),
* ``visualization/<name>``: the 2x2 mosaic image | blend / colour result | confidence heat map
  (:mod:`tusimple_duc.viz.released`),
* ``<model_prefix><model_epoch>.txt``: ``image_path<TAB>confidence`` per image, sorted by
  confidence (then path), the number printed as Python 2 printed it (12 significant digits);

and alongside, the project's own: ``color/<name>`` (dataset palette), ``overlay/<name>``
(prediction over the image), optionally ``trainid/<name>`` and ``prob/<stem>.npz`` (float16
``(L, H, W)``), ``confidence.txt`` (list order) and, when ground truth is found, the official
metric of the dataset: ``metrics.json``, the per-class table and ``figures/``.

Sizes: with a ``result_shape`` (the released protocol) an image larger than ``test_shape`` is
segmented on its top-left ``test_shape`` part, as the released script did, and every output
is written at ``result_shape``; with ``result_shape = None``, and with ``--images`` unless a
result shape is given explicitly, every image is segmented and written whole, at its own size.

Folders: a list run writes into ``result_dir``; an ``--images`` run into a folder of its own
(``--out``, or a new ``<result_dir>-images-<time>`` beside it: :mod:`.images_folder`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock
from tqdm import tqdm

from tusimple_duc.config import RELEASED_MODEL_URL, RELEASED_PREFIX, ArchitectureSection, TestConfig
from tusimple_duc.data.lists import ListEntry, read_list, resolve
from tusimple_duc.data.geometry_checks import log_converted_images
from tusimple_duc.data.readers import read_image_header, read_rgb_image
from tusimple_duc.errors import CheckpointError, ConfigError, DataError, OutputError
from tusimple_duc.evaluation.files import size_text
from tusimple_duc.evaluation.report import EvaluationResult, format_tables, write_metrics_json
from tusimple_duc.inference.backends import is_int8, make_forward
from tusimple_duc.inference.fast import int8_fp32_groups
from tusimple_duc.inference.precision_auto import auto_forward
from tusimple_duc.inference.predictor import ForwardFn, InferenceSpec, Prediction, Predictor, spec_from_config
from tusimple_duc.inference.scales import resize_image
from tusimple_duc.io.atomic import atomic_write_text, ensure_writable_dir, remove_temporaries
from tusimple_duc.io.checkpoint import load_checkpoint, params_path, symbol_path
from tusimple_duc.io.symbol_spec import spec_from_symbol_file
from tusimple_duc.models.from_config import spec_from_test_config
from tusimple_duc.models.presets import ModelSpec, get_model
from tusimple_duc.models.systems import SystemSpec
from tusimple_duc.models.segnet import SegmentationNet
from tusimple_duc.pipelines.dataset_outputs import DatasetOutputs, outputs_for
from tusimple_duc.pipelines.images_folder import images_output_dir
from tusimple_duc.viz.colorize import colorize, overlay, write_rgb_png
from tusimple_duc.viz.plots import write_result_figures
from tusimple_duc.viz.released import confidence_heat_map, released_mosaic

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")
Shape = Tuple[int, int]


@dataclass
class SegmentationRun:
    """What :func:`run_test` did.

    Attributes
    ----------
    result_dir : the output folder.
    images : output names (``score/<name>``) of the images segmented, in order.
    image_paths : the image files, in order.
    confidences : mean max-probability of each image.
    metrics : the evaluation (None when no ground truth was found or evaluation is off).
    cropped : list mode: images larger than ``test_shape`` whose top-left part only was segmented.
    resized : images whose outputs were resized to ``result_shape`` from another size.
    converted : image path -> pixel format of the images that are not 8-bit colour (read as
        ``cv2.imread`` converts them).
    """

    result_dir: str
    images: List[str] = field(default_factory=list)
    image_paths: List[str] = field(default_factory=list)
    confidences: List[float] = field(default_factory=list)
    metrics: Optional[EvaluationResult] = None
    cropped: List[str] = field(default_factory=list)
    resized: List[str] = field(default_factory=list)
    converted: Dict[str, str] = field(default_factory=dict)


def select_contexts(gpu: Optional[int]) -> List[mx.Context]:
    """``[mx.gpu(gpu)]``, or ``[mx.cpu()]`` when ``gpu`` is None or negative."""
    if gpu is None or gpu < 0:
        return [mx.cpu()]
    available = mx.context.num_gpus()
    if gpu >= available:
        raise ConfigError(f"[model] gpu={gpu}: this machine has {available} GPU(s) visible to MXNet; "
                          f"use --set model.gpu=-1 for the CPU")
    return [mx.gpu(gpu)]


def check_checkpoint_present(config: TestConfig) -> None:
    """CheckpointError naming the missing checkpoint and where it comes from, when neither its
    ``-symbol.json`` nor its ``-%04d.params`` exists (the released files: the original's link)."""
    prefix = os.path.join(config.model.model_dir, config.model.model_prefix)
    files = (symbol_path(prefix), params_path(prefix, config.model.model_epoch))
    if any(os.path.isfile(path) for path in files):
        return
    if config.model.model_prefix == RELEASED_PREFIX:
        source = (f"the released files {', '.join(os.path.basename(p) for p in files)} come from the original "
                  f"repository's link {RELEASED_MODEL_URL} (docs/DATA.md): put them in {config.model.model_dir}/")
    else:
        source = "train it (train.py) or set [model] model_dir, model_prefix, model_epoch to a checkpoint"
    raise CheckpointError(f"{files[1]}: no such checkpoint (nor {os.path.basename(files[0])}); {source}")


def network_spec(config: TestConfig) -> Union[ModelSpec, SystemSpec]:
    """The network to test: ``[network]`` when the config sets any of its keys, else the
    architecture recorded in the checkpoint's ``-symbol.json`` (as the released script, which
    loaded the symbol), whose class count, output stride and cell width must then agree with
    ``[model] label_num`` and ``[data] ds_rate``, ``cell_width``."""
    check_checkpoint_present(config)
    if config.network != ArchitectureSection():
        return spec_from_test_config(config)
    path = symbol_path(os.path.join(config.model.model_dir, config.model.model_prefix))
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no symbol file, and the config has no [network] section to say which "
                              f"network the checkpoint is (set [network] preset)")
    spec = spec_from_symbol_file(path)
    stated = {"[model] label_num": (config.model.label_num, spec.num_classes),
              "[data] ds_rate": (config.data.ds_rate, spec.output_stride),
              "[data] cell_width": (config.data.cell_width, spec.cell_width)}
    for key, (configured, recorded) in stated.items():
        if configured is not None and configured != recorded:
            raise ConfigError(f"{config.source}: {key} = {configured}, but the checkpoint's {path} has {recorded}")
    return spec


def load_network(config: TestConfig, contexts: Sequence[mx.Context]) -> HybridBlock:
    """Build the network (:func:`network_spec`: a ``SegmentationNet`` or a comparison system's
    ``EncoderDecoderNet``) and load ``model_dir/model_prefix-%04d.params`` (strict)."""
    net = get_model(network_spec(config))
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


def select_forward(config: TestConfig, net: HybridBlock, contexts: Sequence[mx.Context],
                   entries: Sequence[ListEntry], own_images: bool) -> Optional[ForwardFn]:
    """The CPU forward of ``[inference] backend`` at ``precision`` (``auto``: measured,
    :mod:`tusimple_duc.inference.precision_auto`), or None (the plain MXNet forward: GPUs, or
    backend mxnet with ``cpu_fast = False``)."""
    int8_fp32 = int8_fp32_groups(config.inference.int8_fp32, f"{config.source}: [inference] int8_fp32")
    on_cpu = all(c.device_type == "cpu" for c in contexts)
    if not on_cpu:
        if config.inference.precision != "fp32":
            raise ConfigError(f"[inference] precision={config.inference.precision} is implemented for the CPU "
                              f"only; use fp32 on GPUs")
        if config.inference.backend != "mxnet":
            raise ConfigError(f"[inference] backend = {config.inference.backend} runs on the CPU only; "
                              f"use --set model.gpu=-1, or backend = mxnet on GPUs")
        return None
    section = config.inference
    if not isinstance(net, SegmentationNet):
        return system_forward(config, net)
    if section.backend == "mxnet" and not section.cpu_fast:
        return None
    if section.dilated_conv_form == "auto" and section.precision != "auto":
        raise ConfigError(f"{config.source}: [inference] dilated_conv_form = auto is measured with precision = auto "
                          f"(precision is {section.precision}): set dilated_conv_form to direct, taps or phases")
    calibration = None
    if is_int8(section.precision) or section.precision == "auto":
        calibration = calibration_batch(config, entries, own_images, net.output_stride)
    int8_cache = int8_cache_stem(config) if section.int8_cache else None
    if section.precision == "auto":
        window = section.window if section.mode == "sliding" else None
        return auto_forward(net, section.backend, calibration, window, section.batch_windows,
                            section.precision_cache_dir, int8_fp32, conv_form=section.dilated_conv_form,
                            calibration_tile=section.calibration_tile, int8_cache=int8_cache)[1]
    return make_forward(net, section.backend, section.precision, calibration=calibration,
                        int8_fp32=int8_fp32, ctx=contexts[0], conv_form=section.dilated_conv_form,
                        calibration_tile=section.calibration_tile, int8_cache=int8_cache)


def int8_cache_stem(config: TestConfig) -> str:
    """``<model_dir>/<model_prefix>-<epoch>``: the stem of the checkpoint's quantized-model cache
    files (``io/onnx_quantize_cache.py``), next to its ``.params``."""
    return os.path.join(config.model.model_dir, f"{config.model.model_prefix}-{int(config.model.model_epoch):04d}")


#: (backend, precision) a comparison system (``models.systems``) runs with; mxnet's fp32 is the
#: plain forward (FastForward and the int8 calibration are built for the DUC networks' head).
SYSTEM_BACKEND_PRECISIONS: Tuple[Tuple[str, str], ...] = (
    ("mxnet", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"), ("onnxruntime", "fp32"))


def system_forward(config: TestConfig, net: HybridBlock) -> Optional[ForwardFn]:
    """The CPU forward of a comparison system: None (plain MXNet forward) for backend mxnet,
    else the backend on the system's ONNX export (:data:`SYSTEM_BACKEND_PRECISIONS`)."""
    section = config.inference
    if (section.backend, section.precision) not in SYSTEM_BACKEND_PRECISIONS:
        allowed = ", ".join(f"{backend} {precision}" for backend, precision in SYSTEM_BACKEND_PRECISIONS)
        raise ConfigError(f"{config.source}: [inference] backend = {section.backend}, precision = "
                          f"{section.precision}: the comparison systems run with {allowed}")
    if section.dilated_conv_form != "direct":
        raise ConfigError(f"{config.source}: [inference] dilated_conv_form = {section.dilated_conv_form}: the "
                          f"comparison systems run their convolutions direct (the taps rewrite is the DUC head's)")
    if section.backend == "mxnet":
        return None
    return make_forward(net, section.backend, section.precision)


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
    return [ListEntry(index, os.path.abspath(p), "") for index, p in enumerate(files)]


def output_name(image_path: str, label_path: str = "") -> str:
    """The released script's output name of a list line: its last path component (the label
    file when the line has one, else the image), with ``jpg`` replaced by ``png``; any other
    extension becomes ``.png`` (the outputs are PNGs)."""
    name = os.path.basename(label_path or image_path).replace("jpg", "png")
    return name if name.lower().endswith(".png") else os.path.splitext(name)[0] + ".png"


def unique_names(names: Sequence[str]) -> List[str]:
    """``names`` with every repeated name after the first made unique as ``<stem>_2.png``,
    ``_3``, ... (deterministic: by position; never a name used elsewhere in ``names``);
    one warning names the first collision."""
    taken = set(names)
    counts: Counter = Counter()
    seen: set = set()
    result: List[str] = []
    renamed: List[Tuple[str, str]] = []
    for name in names:
        if name not in seen:
            seen.add(name)
            result.append(name)
            continue
        stem, extension = os.path.splitext(name)
        while True:
            counts[name] += 1
            candidate = f"{stem}_{counts[name] + 1}{extension}"
            if candidate not in taken:
                break
        taken.add(candidate)
        result.append(candidate)
        renamed.append((name, candidate))
    if renamed:
        log.warning("%d image(s) share an output name with an earlier one and are written as <stem>_2.png, "
                    "_3, ... instead, e.g. the second %s as %s", len(renamed), renamed[0][0], renamed[0][1])
    return result


def images_spec(spec: InferenceSpec, result_shape: Optional[Shape]) -> InferenceSpec:
    """``--images``: no ``test_shape`` crop; outputs at ``result_shape`` or each image's own size."""
    if result_shape is None:
        log.info("--images: every image is segmented and written whole, at its own size")
    else:
        log.info("--images: every image is segmented whole and its outputs resized to %s", size_text(result_shape))
    return dataclasses.replace(spec, crop=None, result_shape=result_shape)


def run_test(config: TestConfig, images: Optional[Sequence[str]] = None, show_progress: bool = True,
             net: Optional[SegmentationNet] = None, images_result_shape: Optional[Shape] = None,
             entries: Optional[Sequence[ListEntry]] = None, out: Optional[str] = None,
             write_confidences: bool = True) -> SegmentationRun:
    """Segment ``images`` (paths or folders), or ``entries`` (list lines), or the config's ``image_list``;
    see the module doc.

    ``net`` (already loaded) skips building and loading the checkpoint. ``images_result_shape``:
    with ``images``, the (rows, cols) every output is resized to (None: each image's own size).
    The outputs go to ``result_dir``, or with ``images`` to a folder of their own
    (:func:`~tusimple_duc.pipelines.images_folder.images_output_dir` of ``out``), checked to be
    writable before anything is loaded.
    ``write_confidences=False`` leaves the confidence files of an earlier run alone (the original's
    ``ImageListTester.predict_single`` wrote none).
    """
    if images:
        result_dir = images_output_dir(config.model.result_dir, out)
    else:
        result_dir = config.model.result_dir
        ensure_writable_dir(result_dir, "[model] result_dir")
    if net is None:
        check_checkpoint_present(config)
    for path in remove_temporaries(result_dir):
        log.info("removed %s (left by an interrupted write)", path)
    contexts = select_contexts(config.model.gpu)
    if images:
        entries = image_entries(images)
    elif entries is None:
        entries = read_list(config.data.image_list)
    spec = images_spec(spec_from_config(config), images_result_shape) if images else spec_from_config(config)
    names = unique_names([output_name(e.image, e.label) for e in entries])
    net = net if net is not None else load_network(config, contexts)
    forward = select_forward(config, net, contexts, entries, bool(images))
    predictor = Predictor(net, spec, contexts=contexts, forward=forward)
    outputs = outputs_for(config.data.dataset, net.num_classes)
    evaluate = config.output.evaluate and not images
    keep_probabilities = config.output.save_probabilities or outputs.dataset.scores_probabilities
    run = SegmentationRun(result_dir=result_dir)
    evaluated = 0
    for entry, name in tqdm(list(zip(entries, names)), desc="segment", unit="image", disable=not show_progress):
        image_path = entry.image if images else resolve(config.data.test_img_dir, entry.image)
        image = read_rgb_image(image_path, entry.where)
        _note_size(run, spec, image_path, image.shape[:2])
        _note_converted(run, image_path)
        try:
            prediction = predictor.predict(image, keep_probabilities=keep_probabilities)
        except DataError as err:
            raise DataError(f"{image_path}: {err}") from None
        with output_errors(run.result_dir):
            _write_outputs(config, outputs, run.result_dir, name, image, prediction)
        run.images.append(name)
        run.image_paths.append(image_path)
        run.confidences.append(prediction.confidence)
        if evaluate and entry.label:
            gt_path = resolve(config.data.gt_dir, entry.label)
            if os.path.isfile(gt_path):
                outputs.add_to_evaluator(prediction, gt_path, source=os.path.join(run.result_dir, "score", name))
                evaluated += 1
            else:
                log.warning("%s: no ground truth %s; image not evaluated", entry.where, gt_path)
    if write_confidences:
        with output_errors(run.result_dir):
            _write_confidences(config, run)
    _log_sizes(run, spec, config.data.test_shape)
    if run.converted:
        log_converted_images(config.data.image_list if not images else "--images", run.converted)
    if evaluated:
        run.metrics = outputs.evaluator.result()
        with output_errors(run.result_dir):
            write_metrics_json(os.path.join(run.result_dir, "metrics.json"), run.metrics)
            write_result_figures(run.metrics, os.path.join(run.result_dir, "figures"))
    return run


@contextlib.contextmanager
def output_errors(result_dir: str) -> Iterator[None]:
    """An ``OSError`` while writing outputs (a full disk, a quota, permissions) becomes one
    ``OutputError`` line naming the file (the result folder when the error names none) and the
    reason, e.g. ``.../score/a.png: cannot write (no space left on device)``."""
    try:
        yield
    except OSError as err:
        where = err.filename or result_dir
        reason = (err.strerror or str(err)).strip()
        raise OutputError(f"{where}: cannot write ({reason[:1].lower() + reason[1:]})") from None


def _note_size(run: SegmentationRun, spec: InferenceSpec, image_path: str, shape: Shape) -> None:
    if spec.crop is not None and (shape[0] > spec.crop[0] or shape[1] > spec.crop[1]):
        run.cropped.append(f"{image_path} ({size_text(shape)})")
    segmented = shape if spec.crop is None else (min(shape[0], spec.crop[0]), min(shape[1], spec.crop[1]))
    if spec.result_shape is not None and tuple(segmented) != spec.result_shape:
        run.resized.append(f"{image_path} ({size_text(shape)})")


def _note_converted(run: SegmentationRun, image_path: str) -> None:
    """Record an image that is not 8-bit colour (its header; one that PIL cannot read is not counted)."""
    try:
        header = read_image_header(image_path)
    except DataError:
        return
    if header.converted:
        run.converted[image_path] = header.pixel_format


def _log_sizes(run: SegmentationRun, spec: InferenceSpec, test_shape: Shape) -> None:
    if run.cropped:
        log.warning("%d image(s) larger than test_shape %s: only their top-left %s part is segmented, as the "
                    "released script did, e.g. %s", len(run.cropped), size_text(test_shape),
                    size_text(test_shape), run.cropped[0])
    if run.resized:
        log.warning("%d image(s) segmented at another size than result_shape %s: their outputs are resized to "
                    "it, e.g. %s", len(run.resized), size_text(spec.result_shape), run.resized[0])


def python2_float_text(value: float) -> str:
    """``str(value)`` of Python 2 (``%.12g``, ``.0`` added to integral values): the number format
    of the released script's confidence file."""
    text = f"{value:.12g}"
    return text if any(c in text for c in ".eEn") else text + ".0"


def _write_confidences(config: TestConfig, run: SegmentationRun) -> None:
    """``<model_prefix><model_epoch>.txt`` (released: sorted by confidence, then path) and ``confidence.txt``."""
    released = sorted(zip(run.confidences, run.image_paths))
    atomic_write_text(os.path.join(run.result_dir, f"{config.model.model_prefix}{config.model.model_epoch}.txt"),
                      "".join(f"{path}\t{python2_float_text(value)}\n" for value, path in released))
    lines = [f"{name}\t{confidence:.6f}" for name, confidence in zip(run.images, run.confidences)]
    atomic_write_text(os.path.join(run.result_dir, "confidence.txt"), "\n".join(lines) + "\n")


def _write_outputs(config: TestConfig, outputs: DatasetOutputs, result_dir: str, name: str,
                   image: np.ndarray, prediction: Prediction) -> None:
    outputs.write_score(os.path.join(result_dir, "score", name), prediction)
    colour = colorize(prediction.labels, outputs.palette)
    write_rgb_png(os.path.join(result_dir, "visualization", name),
                  released_mosaic(image, colour, confidence_heat_map(prediction.top_probability)))
    if config.output.save_color:
        write_rgb_png(os.path.join(result_dir, "color", name), colour)
    if config.output.save_overlay:
        write_rgb_png(os.path.join(result_dir, "overlay", name), overlay(resize_image(image, colour.shape[:2]), colour))
    if config.output.save_trainids:
        outputs.write_label_png(os.path.join(result_dir, "trainid", name), prediction.labels)
    if config.output.save_probabilities:
        outputs.write_probabilities(os.path.join(result_dir, "prob", os.path.splitext(name)[0] + ".npz"),
                                    prediction.probabilities)


def summary_text(run: SegmentationRun, config: TestConfig) -> str:
    """What test.py prints at the end: where things are, and the metrics table."""
    lines = [f"segmented {len(run.images)} image(s) -> {run.result_dir}"]
    if run.images:
        lines.append(f"  score/ (submission format), visualization/, "
                     f"{config.model.model_prefix}{config.model.model_epoch}.txt, color/, overlay/, confidence.txt "
                     f"(mean confidence {np.mean(run.confidences):.4f})")
    if run.metrics is not None:
        lines += ["", format_tables(run.metrics), "",
                  f"metrics: {os.path.join(run.result_dir, 'metrics.json')}, figures: "
                  f"{os.path.join(run.result_dir, 'figures')}"]
    return "\n".join(lines)
