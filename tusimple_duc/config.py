"""One typed config schema for training and testing.

The original TuSimple-DUC INI files (``configs/train/train_cityscapes.cfg``,
``configs/test/test_full_image.cfg``) are read unchanged; new keys have defaults so
old files keep their meaning. Every section is a dataclass whose type hints define
how a value is parsed; no value is ever evaluated as code.

Errors name the file, the ``[section] key`` and the problem, in one line::

    configs/x.cfg: [data] crop_shape: expected 2 integers like '800,800', got '800'

Relative paths are kept as written and resolved against the current directory,
as the original scripts did.
"""
from __future__ import annotations

import configparser
import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from tusimple_duc.config_values import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RANGE, Range, format_value, key,
                                        parse_value, range_problem)
from tusimple_duc.errors import ConfigError
from tusimple_duc.layout import CELL_WIDTHS, OUTPUT_STRIDES, duc_ratio, sides_are_multiples

__all__ = ["format_value", "parse_value"]  # re-exported: part of this module's interface

#: the paper's multi-scale test scales
PAPER_TEST_SCALES: Tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
#: mean subtracted from the network input, RGB (the released model's)
RELEASED_RGB_MEAN: Tuple[float, float, float] = (122.675, 116.669, 104.008)
#: training scale augmentation of the released config
RELEASED_SCALE_FACTORS: Tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
#: prefix of the released Cityscapes checkpoint (``-symbol.json``, ``-0020.params``)
RELEASED_PREFIX = "ResNet_DUC_HDC_CityScapes"
#: where the original repository's README links the released checkpoint
RELEASED_MODEL_URL = "https://drive.google.com/open?id=0B72xLTlRb0SoREhISlhibFZTRmM"
#: segmentation head types (``tusimple_duc.models.heads``)
HeadKind = Literal["duc", "bilinear", "deconv"]
HEADS: Tuple[str, ...] = typing.get_args(HeadKind)

# ----------------------------------------------------------------------------- train


@dataclass(frozen=True)
class EnvSection:
    """[env]: devices and kvstore."""

    use_cpu: bool = False
    #: GPU ids, e.g. ``0,1,2,3``; one context per GPU, the batch split across them.
    gpus: Tuple[int, ...] = key((0,), NON_NEGATIVE)
    #: Number of CPU contexts when ``use_cpu`` (tests the multi-device path without GPUs).
    cpus: int = key(1, AT_LEAST_ONE)
    kv_store: Literal["local", "device", "nccl", "dist_sync", "dist_device_sync", "dist_async"] = "local"
    #: Original key: load data in parallel. True means ``[data] num_workers`` defaults to the core count.
    multi_thread: bool = False
    #: Seed of every random choice (sampling, augmentation, initialisation).
    seed: int = key(0, Range(0, 2**32 - 1))


@dataclass(frozen=True)
class ArchitectureSection:
    """Architecture keys shared by train and test configs: ``preset`` names a model
    (``tusimple_duc.models.presets``); every other key, when set, overrides the preset."""

    preset: str = "resnet101_duc_hdc_released"
    #: Number of ASPP branches in the head (0 = a single 3x3 conv); unset = the preset's.
    aspp: Optional[int] = key(None, NON_NEGATIVE)
    #: ASPP dilation step: branch i has rate aspp_stride * (i + 1); unset = the preset's.
    aspp_stride: Optional[int] = key(None, AT_LEAST_ONE)
    depth: Optional[int] = key(None, AT_LEAST_ONE)
    stem: Optional[Literal["deep", "classic"]] = None
    head: Optional[HeadKind] = None
    #: A name of ``models.hdc.NAMED_SCHEDULES`` or explicit rates; for the comparison systems
    #: pspnet and deeplab_v3: ``deeplab`` (default, the authors') or ``gluoncv`` (GluonCV's layout).
    dilation_schedule: Optional[str] = None
    width: Optional[int] = key(None, AT_LEAST_ONE)
    blocks_per_stage: Optional[Tuple[int, ...]] = key(None, AT_LEAST_ONE)


@dataclass(frozen=True)
class NetworkSection(ArchitectureSection):
    """[network] of a train config: the architecture plus the original training keys."""

    label_num: int = key(19, AT_LEAST_ONE)
    #: DUC cell width c (1, 2, 4); unset = the preset's.
    cell_width: Optional[int] = key(None, AT_LEAST_ONE)
    #: Label value excluded from loss and metrics (labels are 8-bit images).
    ignore_label: int = key(255, Range(0, 255))
    #: Frozen BatchNorm statistics (released); unset = the preset's (True for all presets).
    bn_use_global_stats: Optional[bool] = None
    #: Momentum of the BatchNorm running statistics when they learn; unset = the preset's
    #: (0.9995, the original network code).
    bn_momentum: Optional[float] = key(None, Range(0, 1, high_open=True))


@dataclass(frozen=True)
class ModelSection:
    """[model]: optimisation, checkpoints and initialisation."""

    num_epochs: int = key(50, AT_LEAST_ONE)
    model_dir: str = "models"
    save_model_prefix: str = RELEASED_PREFIX
    checkpoint_interval: int = key(1, AT_LEAST_ONE)
    lr: float = key(1e-4, POSITIVE)
    lr_policy: Literal["step", "poly"] = "step"
    #: step: multiply the lr by this every ``lr_factor_epoch`` epochs. poly: the released code
    #: used this key as the power when ``poly_power`` is unset.
    lr_factor: float = key(0.5, POSITIVE)
    lr_factor_epoch: float = key(5.0, POSITIVE)
    #: Power of the poly policy (paper: 0.9); unset = ``lr_factor`` (released behaviour).
    poly_power: Optional[float] = key(None, NON_NEGATIVE)
    momentum: float = key(0.9, Range(0, 1, high_open=True))
    weight_decay: float = key(5e-5, NON_NEGATIVE)
    #: Gradient clipping threshold (element-wise, as MXNet's SGD ``clip_gradient``); 0 disables.
    clip_gradient: float = key(5.0, NON_NEGATIVE)
    load_model_dir: Optional[str] = None
    load_model_prefix: Optional[str] = None
    load_epoch: Optional[int] = key(None, NON_NEGATIVE)
    #: ImageNet initialisation: a GluonCV ``resnet{50,101,152}_v1s`` (deep stem) or Gluon
    #: model-zoo ``resnet{50,101,152}_v1`` (classic stem) .params file or source name
    #: (looked up in ``$MXNET_HOME/models``); ignored when resuming from a checkpoint.
    #: MXNet's symbol ``resnet-101-0000.params`` files are pre-activation ResNet v2 and are refused.
    pretrained: Optional[str] = None
    #: Which network a loaded checkpoint trains: ``checkpoint`` (the original solver: the
    #: checkpoint's ``-symbol.json`` replaces ``[network]``) or ``config`` (``[network]`` defines
    #: it and the checkpoint only supplies weights; e.g. ResNet-152 phase 2, BatchNorm frozen).
    network_from: Literal["checkpoint", "config"] = "checkpoint"
    #: Training and validation metrics to log, as the released solver's names: ``acc`` (MXNet's
    #: ``Accuracy``, logged as ``accuracy``), ``acc_ignore``, ``IoU`` (``engine/metrics.py``).
    eval_metric: Tuple[str, ...] = ("acc_ignore", "IoU")
    #: Log a training-metrics line every this many batches.
    log_interval: int = key(20, AT_LEAST_ONE)


@dataclass(frozen=True)
class DataSection:
    """[data]: training data, sampling and augmentation."""

    data_dir: str = ""
    label_dir: str = ""
    train_list: str = ""
    use_val: bool = False
    val_list: Optional[str] = None
    rgb_mean: Tuple[float, float, float] = key(RELEASED_RGB_MEAN, Range(0, 255))
    #: Samples per update of one worker, split over its devices as MXNet's ``Module`` splits
    #: them (3 over 2 devices: 2 + 1); a size ``Module`` cannot split (6 over 4) stops train.py.
    batch_size: int = key(1, AT_LEAST_ONE)
    #: Downsampling rate (output stride) of the network: 4, 8 or 16; unset = the preset's.
    ds_rate: Optional[int] = key(None, AT_LEAST_ONE)
    convert_label: bool = True
    scale_factors: Tuple[float, ...] = key(RELEASED_SCALE_FACTORS, POSITIVE)
    crop_shape: Tuple[int, int] = key((800, 800), AT_LEAST_ONE)
    use_mirror: bool = True
    use_random_crop: bool = True
    #: Half-size (rows, cols) of the box the crop centre is jittered in, at scale 1 (pixels).
    random_bound: Tuple[int, int] = key((120, 120), NON_NEGATIVE)
    dataset: Literal["cityscapes", "kitti", "voc"] = "cityscapes"
    #: '7fold' crops ``crop_shape`` around each list centre; '12fold' takes a random
    #: ``inner_crop`` from the ``crop_shape`` patch around each centre.
    patch_scheme: Literal["7fold", "12fold"] = "7fold"
    inner_crop: Tuple[int, int] = key((544, 544), AT_LEAST_ONE)
    #: Prefetch worker processes; unset = 0, or the core count when ``multi_thread``.
    num_workers: Optional[int] = key(None, NON_NEGATIVE)
    last_batch: Literal["discard", "pad", "keep"] = "discard"
    skip_bad: bool = False


@dataclass(frozen=True)
class MiscSection:
    """[misc]."""

    #: Write a layer-by-layer summary of the network (``<prefix>-summary.txt``) next to the checkpoints.
    draw_network: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """A parsed training config."""

    env: EnvSection = field(default_factory=EnvSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    misc: MiscSection = field(default_factory=MiscSection)
    source: str = "<defaults>"


# ----------------------------------------------------------------------------- test


@dataclass(frozen=True)
class TestModelSection:
    """[model] of a test config."""

    __test__ = False  # not a pytest class

    model_dir: str = "models"
    model_prefix: str = RELEASED_PREFIX
    model_epoch: int = key(20, NON_NEGATIVE)
    #: GPU id; -1 or empty = CPU.
    gpu: Optional[int] = key(0, Range(-1))
    result_dir: str = "results"
    label_num: int = key(19, AT_LEAST_ONE)
    #: Original key (unused there). True = test at the paper's scales 0.5..2.0
    #: when ``[data] test_scales`` is a single scale.
    multi_scales: bool = False


@dataclass(frozen=True)
class TestDataSection:
    """[data] of a test config."""

    __test__ = False

    image_list: str = ""
    test_img_dir: str = ""
    gt_dir: str = ""
    #: Output stride of the network; unset = the preset's.
    ds_rate: Optional[int] = key(None, AT_LEAST_ONE)
    #: DUC cell width; unset = the preset's.
    cell_width: Optional[int] = key(None, AT_LEAST_ONE)
    #: (rows, cols) the images are expected at (the released script bound the network for it);
    #: with ``result_shape`` set, a larger image is segmented on its top-left test_shape part
    #: as released, with a warning (``tusimple_duc/inference/predictor.py`` ``crop``).
    test_shape: Tuple[int, int] = key((1024, 2048), AT_LEAST_ONE)
    #: (rows, cols) of the probabilities and label maps written; None = each image's own size.
    result_shape: Optional[Tuple[int, int]] = key((1024, 2048), AT_LEAST_ONE)
    rgb_mean: Tuple[float, float, float] = key(RELEASED_RGB_MEAN, Range(0, 255))
    test_scales: Tuple[float, ...] = key((1.0,), POSITIVE)
    dataset: Literal["cityscapes", "kitti", "voc"] = "cityscapes"


#: ``[inference] calibration_tile`` default, (rows, cols) pixels
CALIBRATION_TILE_DEFAULT: Tuple[int, int] = (512, 1024)


@dataclass(frozen=True)
class InferenceSection:
    """[inference]: modes beyond the released whole-image protocol."""

    mode: Literal["whole", "sliding"] = "whole"
    window: Tuple[int, int] = key((800, 800), AT_LEAST_ONE)
    stride: Tuple[int, int] = key((600, 600), AT_LEAST_ONE)
    batch_windows: int = key(1, AT_LEAST_ONE)
    flip: bool = False
    crf: bool = False
    crf_iterations: int = key(10, AT_LEAST_ONE)
    crf_sigma_alpha: float = key(15.0, POSITIVE)
    crf_sigma_beta: float = key(3.0, POSITIVE)
    crf_sigma_gamma: float = key(1.0, POSITIVE)
    crf_w1: float = key(3.0, NON_NEGATIVE)
    crf_w2: float = key(3.0, NON_NEGATIVE)
    #: On the CPU: run the oneDNN-fused static graph (``tusimple_duc/inference/fast.py``, same
    #: results as the plain forward within 1e-4); ignored on GPUs.
    cpu_fast: bool = True
    #: Who runs the network on the CPU: ``mxnet`` (the reference), ``openvino`` or
    #: ``onnxruntime`` on the project's ONNX export (``tusimple_duc/inference/backends.py``).
    backend: Literal["mxnet", "openvino", "onnxruntime"] = "mxnet"
    #: CPU arithmetic: fp32, bf16 (AVX512-BF16 / AMX) or int8 (calibrated on list images);
    #: ``auto``: the fastest of them on this machine that keeps >= 99 % of fp32's argmax on the
    #: calibration images, measured once and cached (``inference/precision_auto.py``).
    precision: Literal["fp32", "bf16", "int8", "int8-bf16", "auto"] = "fp32"
    #: openvino / onnxruntime: the DUC head's dilated 3x3 convolutions run ``direct``, as
    #: ``taps`` (nine shifted 1x1 convolutions, exact) or as ``phases`` (one dense 3x3 convolution
    #: on the d x d phases moved into the batch, exact, about a ninth of the taps' memory); each is
    #: faster for some runtimes, precisions and CPUs, slower for others; ``auto`` (with
    #: ``precision = auto``): measured, every form.
    dilated_conv_form: Literal["direct", "taps", "phases", "auto"] = "direct"
    #: precision = auto: folder of the per-machine cache ``precision.json``; empty =
    #: ``~/.cache/tusimple_duc``.
    precision_cache_dir: str = ""
    #: int8: how many of the first images calibrate the quantization ranges.
    calibration_images: int = key(4, AT_LEAST_ONE)
    #: int8 with backend openvino / onnxruntime: (rows, cols) pixels of the tiles the calibration
    #: images are cut into for the calibration session (its memory follows the tile, not the
    #: image; ``io/onnx_quantize.py`` ``calibration_tiles``); a side at least the image's keeps it whole.
    calibration_tile: Tuple[int, int] = key(CALIBRATION_TILE_DEFAULT, AT_LEAST_ONE)
    #: int8 with backend openvino / onnxruntime: keep the quantized ONNX next to the checkpoint
    #: (``<model_prefix>-<epoch>.int8-<key>.onnx``, ``io/onnx_quantize_cache.py``) and read it
    #: instead of quantizing again when the checkpoint and the int8 settings are the same.
    int8_cache: bool = True
    #: int8: layer groups kept in fp32 (``head``, ``residual``, ``last_stage``; ``none`` =
    #: quantize all), checked where the fast forward is built (``inference/fast.py``
    #: ``INT8_FP32_GROUPS``); speed and accuracy of each choice: docs/PERFORMANCE.md.
    int8_fp32: Optional[Tuple[str, ...]] = ("head", "residual", "last_stage")


@dataclass(frozen=True)
class OutputSection:
    """[output]: what test.py writes besides ``score/`` labelIds PNGs."""

    save_color: bool = True
    save_overlay: bool = True
    save_trainids: bool = False
    save_probabilities: bool = False
    #: Evaluate on the fly when ground truth is found.
    evaluate: bool = True


@dataclass(frozen=True)
class TestConfig:
    """A parsed test config."""

    __test__ = False

    model: TestModelSection = field(default_factory=TestModelSection)
    network: ArchitectureSection = field(default_factory=ArchitectureSection)
    data: TestDataSection = field(default_factory=TestDataSection)
    inference: InferenceSection = field(default_factory=InferenceSection)
    output: OutputSection = field(default_factory=OutputSection)
    source: str = "<defaults>"

    @property
    def scales(self) -> Tuple[float, ...]:
        """The test scales in effect (``multi_scales`` expands a single scale to the paper's)."""
        if self.model.multi_scales and len(self.data.test_scales) == 1:
            return PAPER_TEST_SCALES
        return self.data.test_scales


# ----------------------------------------------------------------------------- parsing

T = TypeVar("T")


def _section_fields(cls: type) -> Dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_range(cls: type, name: str) -> Optional[Range]:
    """The :class:`Range` declared for key ``name`` of section class ``cls`` (None: none)."""
    return {f.name: f.metadata.get(RANGE) for f in dataclasses.fields(cls)}[name]


def _build_section(cls: Type[T], raw: Mapping[str, str], source: str, section: str) -> T:
    """Parse one section; keys are case-insensitive (ConfigParser lower-cases them)."""
    fields = _section_fields(cls)
    values: Dict[str, Any] = {}
    for name, text in raw.items():
        name = name.lower()
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}: [{section}] {name}: unknown key (known: {known})")
        try:
            value = parse_value(fields[name], text)
        except ValueError as err:
            raise ConfigError(f"{source}: [{section}] {name}: {err}") from None
        problem = range_problem(field_range(cls, name), value)
        if problem:
            raise ConfigError(f"{source}: [{section}] {name}: {problem}")
        values[name] = value
    return cls(**values)


def parse_overrides(overrides: Sequence[str]) -> Dict[str, Dict[str, str]]:
    """``['data.batch_size=4', ...]`` -> ``{'data': {'batch_size': '4'}}`` (keys lower-cased,
    section names kept as written, like the INI file's)."""
    parsed: Dict[str, Dict[str, str]] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        section, dot, option = name.strip().partition(".")
        if not sep or not dot or not section or not option:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        parsed.setdefault(section, {})[option.lower()] = value
    return parsed


def _read_ini(path: str) -> Dict[str, Dict[str, str]]:
    if os.path.isdir(path):
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    # As the original's RawConfigParser: keys lower-cased (case-insensitive), section names as written.
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#",))
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise ConfigError(f"{path}: not a valid INI file: {first_line}") from None
    return {name: dict(parser[name]) for name in parser.sections()}


def _assemble(cls: Type[T], raw: Dict[str, Dict[str, str]], source: str) -> T:
    sections = {f.name: f.type for f in dataclasses.fields(cls) if f.name != "source"}
    hints = typing.get_type_hints(cls)
    built: Dict[str, Any] = {}
    for name, values in raw.items():
        if name not in sections:
            known = ", ".join(f"[{s}]" for s in sections)
            raise ConfigError(f"{source}: [{name}]: unknown section (known: {known})")
        built[name] = _build_section(hints[name], values, source, name)
    return cls(source=source, **built)


def _merged(path: Optional[str], overrides: Sequence[str]) -> Tuple[Dict[str, Dict[str, str]], str]:
    raw = _read_ini(path) if path else {}
    for section, values in parse_overrides(overrides).items():
        raw.setdefault(section, {}).update(values)
    return raw, path or "<defaults>"


def load_train_config(path: Optional[str], overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a training INI file (original or new keys) plus ``--set`` overrides, validated."""
    raw, source = _merged(path, overrides)
    config = _assemble(TrainConfig, raw, source)
    validate_train_config(config)
    return config


def load_test_config(path: Optional[str], overrides: Sequence[str] = ()) -> TestConfig:
    """Read a test INI file (original or new keys) plus ``--set`` overrides, validated."""
    raw, source = _merged(path, overrides)
    config = _assemble(TestConfig, raw, source)
    validate_test_config(config)
    return config


# ----------------------------------------------------------------------------- validation


def _check(condition: bool, source: str, where: str, problem: str) -> None:
    if not condition:
        raise ConfigError(f"{source}: {where}: {problem}")


def _words(values: Sequence[int]) -> str:
    """``(4, 8, 16)`` -> ``4, 8 or 16``."""
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}"


def _check_geometry(source: str, ds_rate: Optional[int], cell_width: Optional[int], cell_section: str) -> None:
    """Checks the values that are set; the model spec validates the combination with the preset."""
    if ds_rate is not None:
        _check(ds_rate in OUTPUT_STRIDES, source, "[data] ds_rate", f"must be {_words(OUTPUT_STRIDES)}, got {ds_rate}")
    if cell_width is not None:
        _check(cell_width in CELL_WIDTHS, source, f"[{cell_section}] cell_width",
               f"must be {_words(CELL_WIDTHS)}, got {cell_width}")
        if ds_rate is not None:
            try:
                duc_ratio(ds_rate, cell_width)
            except ValueError as err:
                raise ConfigError(f"{source}: [{cell_section}] cell_width: {err} ([data] ds_rate)") from None


def validate_train_config(config: TrainConfig) -> None:
    """Cross-field checks of a training config (raises :class:`ConfigError`); each key's own
    range was checked when it was read."""
    src, env, net, model, data = config.source, config.env, config.network, config.model, config.data
    _check(env.use_cpu or len(env.gpus) > 0, src, "[env] gpus", "empty while use_cpu is False")
    _check_geometry(src, data.ds_rate, net.cell_width, "network")
    _check(model.load_model_prefix is None or model.load_epoch is not None,
           src, "[model] load_epoch", "must be set when load_model_prefix is set")
    crop_key = "inner_crop" if data.patch_scheme == "12fold" else "crop_shape"
    crop = getattr(data, crop_key)
    _check(data.ds_rate is None or sides_are_multiples(crop, data.ds_rate), src, f"[data] {crop_key}",
           f"sides must be positive multiples of ds_rate {data.ds_rate}, got {crop}")
    _check(not data.use_val or bool(data.val_list), src, "[data] val_list", "must be set when use_val is True")
    _check(bool(data.train_list), src, "[data] train_list", "is required")


def validate_test_config(config: TestConfig) -> None:
    """Cross-field checks of a test config (raises :class:`ConfigError`); each key's own
    range was checked when it was read."""
    src, data, inf = config.source, config.data, config.inference
    _check_geometry(src, data.ds_rate, data.cell_width, "data")
    _check(bool(data.image_list), src, "[data] image_list", "is required")
    if inf.mode == "sliding":
        for side, step in zip(inf.window, inf.stride):
            _check(step <= side, src, "[inference] stride", "must be in 1..window")
    _check(inf.precision == "fp32" or inf.cpu_fast or inf.backend != "mxnet", src, "[inference] precision",
           f"{inf.precision} needs cpu_fast = True")


def to_ini(config: Any) -> str:
    """The resolved config as INI text (every key, defaults included)."""
    lines: List[str] = []
    for section in dataclasses.fields(config):
        if section.name == "source":
            continue
        lines.append(f"[{section.name}]")
        values = getattr(config, section.name)
        for item in dataclasses.fields(values):
            lines.append(f"{item.name} = {format_value(getattr(values, item.name))}")
        lines.append("")
    return "\n".join(lines)
