"""Export a checkpoint as a drop-in replacement of the released files, optionally ONNX.

:func:`export_model` loads any checkpoint this project reads (released ``arg:``/``aux:``
files, our checkpoints, Gluon parameter files) into a Gluon network and writes

* ``<out>-symbol.json`` + ``<out>-0000.params``: the released training graph
  (:func:`tusimple_duc.io.symbol.training_symbol`: input ``data``, label ``seg_loss_label``,
  output ``seg_loss_output`` = (N, L, r*r*h*w) softmax probabilities) and the weights under
  the released names. ``mx.mod.Module.load(out, 0)`` then ``bind(data_shapes=[('data',
  (1, 3, H, W))], for_training=False)`` runs it exactly like the original tester, and
  ``mx.mod.Module(sym, data_names=['data'], label_names=['seg_loss_label'])`` trains it like
  the original training script.
* with ``onnx_path``: an ONNX model (``mx.onnx.export_model``, mxnet 1.9.1's mx2onnx, cleaned
  by :func:`tusimple_duc.io.onnx_graph.clean_model`: opset 13, weights as initializers only,
  BatchNorm folded into the convolutions) of the same graph ending in ``softmax(axis=1)``
  instead of ``SoftmaxOutput`` (mx2onnx cannot convert a multi-output SoftmaxOutput, and a
  label input has no place in inference). ONNX Runtime and OpenVINO load it without warnings.
  Input ``data`` (N, 3, H, W) float32 with N, H and W dynamic (any H, W multiple of the
  output stride); output ``seg_prob`` (N, L, r*r*h*w). ``shape`` is the (H, W) used to trace
  the graph.

A comparison system (a preset or :class:`~tusimple_duc.models.systems.SystemSpec` of
:mod:`tusimple_duc.models.systems`) exports the same way with its own graph
(:mod:`tusimple_duc.io.system_symbols`): ``<out>-symbol.json`` is its forward ending in the
released ``SoftmaxOutput`` over (N, L, h, w) scores, and the ONNX output ``seg_prob`` is the
(N, L, h, w) probabilities (h, w dynamic); any H, W that is a multiple of the output stride.
Its resize and adaptive-pooling operators are translated by :mod:`tusimple_duc.io.onnx_ops`.
PSPNet exports its inference network: its auxiliary head (training only) is in neither file, so
test.py reads PSPNet's training checkpoint, not the export.

:func:`export_architecture` says which network that is: a preset, the network of a training
config (``[network]`` + ``[data] ds_rate``, e.g. the run's saved ``train_<time>.cfg``)
or, when neither is given, the checkpoint's own ``<prefix>-symbol.json``
(:func:`tusimple_duc.io.symbol_spec.spec_from_symbol_file`).

:func:`preset_symbol_text` and :func:`write_preset_symbols` produce ``symbols/<preset>-symbol.json``.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import mxnet as mx
import numpy as np
import onnx

from tusimple_duc.config import load_train_config
from tusimple_duc.errors import CheckpointError, ConfigError, OutputError
from tusimple_duc.io.atomic import atomic_write_text, atomic_write_with
from tusimple_duc.io.checkpoint import (LoadReport, checkpoint_arrays, load_checkpoint, load_params_file,
                                        params_path, save_checkpoint, symbol_path)
from tusimple_duc.io.matching import CheckpointMismatchError
from tusimple_duc.io.onnx_deploy import DatasetFacts, check_output, deployment_metadata, deployment_model
from tusimple_duc.io.onnx_graph import clean_model
from tusimple_duc.io.onnx_ops import system_converters
from tusimple_duc.io.paramfile import write_params
from tusimple_duc.io.symbol import (DEFAULT_IGNORE_LABEL, INPUT_NAME, PROBABILITY_NAME,
                                    probability_symbol, symbol_text, training_symbol)
from tusimple_duc.io.symbol_spec import spec_from_symbol_file
from tusimple_duc.io.system_symbols import system_probability_symbol, system_training_symbol
from tusimple_duc.layout import sides_are_multiples
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.presets import PRESETS, ModelSpec, get_model, get_spec
from tusimple_duc.models.systems import SYSTEM_PRESETS, SystemSpec, get_system_spec

Architecture = Union[ModelSpec, SystemSpec]

RELEASED_TEST_SHAPE = (1024, 2048)
EXPORT_EPOCH = 0


@dataclass(frozen=True)
class ExportResult:
    """Files written by :func:`export_model` (``onnx`` None when not requested)."""

    symbol: str
    params: str
    onnx: Optional[str]
    loaded: LoadReport


def export_architecture(prefix: str, epoch: Optional[int], preset: Optional[str] = None,
                        config: Optional[str] = None) -> Tuple[Architecture, str]:
    """The network to export and a phrase naming where it comes from.

    Parameters
    ----------
    prefix, epoch : the checkpoint (see :func:`export_model`).
    preset : a preset name (DUC or comparison system); config : a training config file (INI);
        at most one of them.
        Neither: the spec read from ``<prefix>-symbol.json``.

    Raises
    ------
    ConfigError : both given, unknown preset, invalid config.
    CheckpointError : neither given and no readable ``<prefix>-symbol.json``.
    """
    if preset and config:
        raise ConfigError("give the architecture as a preset or as a training config, not both")
    if preset:
        if preset in SYSTEM_PRESETS:
            return get_system_spec(preset), f"preset {preset}"
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(list(PRESETS) + list(SYSTEM_PRESETS))})")
        return get_spec(preset), f"preset {preset}"
    if config:
        return spec_from_train_config(load_train_config(config)), f"the network of {config}"
    if epoch is None:
        raise ConfigError(f"{prefix}: a params file has no -symbol.json to read the architecture from; "
                          f"give a preset or a training config")
    path = symbol_path(prefix)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no symbol JSON to read the architecture from; give a preset "
                              f"or a training config")
    return spec_from_symbol_file(path), f"the network of {path}"


def export_model(prefix: str, epoch: Optional[int], out: str,
                 model: Union[str, ModelSpec, SystemSpec, None] = None, config: Optional[str] = None,
                 shape: Tuple[int, int] = RELEASED_TEST_SHAPE, onnx_path: Optional[str] = None,
                 ignore_label: int = DEFAULT_IGNORE_LABEL, onnx_output: str = "probabilities",
                 facts: Optional[DatasetFacts] = None, overwrite: bool = False) -> ExportResult:
    """Load ``prefix``/``epoch`` into the network ``model`` and write the released-format files.

    Parameters
    ----------
    prefix, epoch : a checkpoint (``<prefix>-%04d.params``); with ``epoch`` None, ``prefix``
        is a params file path (checkpoint or Gluon format).
    out : output prefix: ``<out>-symbol.json`` and ``<out>-0000.params``.
    model : a preset name, a :class:`ModelSpec` or a ``SystemSpec``; config : a training config file instead;
        neither: the network ``<prefix>-symbol.json`` describes (:func:`export_architecture`).
    shape : (H, W) used to trace the ONNX graph; multiples of the output stride.
    onnx_path : also write the deployment ONNX there (:mod:`tusimple_duc.io.onnx_deploy`).
    ignore_label : the SoftmaxOutput's ignore label.
    onnx_output : its output, one of :data:`~tusimple_duc.io.onnx_deploy.DEPLOY_OUTPUTS`.
    facts : the dataset and input facts its ``metadata_props`` state (None: no metadata).
    overwrite : replace an earlier export's files; without it they are refused (as train.py does).

    Raises
    ------
    CheckpointError : checkpoint missing, corrupt or not of that network.
    ConfigError : unknown preset, a shape that is not a multiple of the output stride, an unknown
        ``onnx_output``, a dataset of another class count.
    OutputError : an output file exists and ``overwrite`` is False.
    """
    if not overwrite:
        refuse_existing([symbol_path(out), params_path(out, EXPORT_EPOCH), onnx_path])
    if isinstance(model, (ModelSpec, SystemSpec)):
        spec, origin = model, "the given network"
    else:
        spec, origin = export_architecture(prefix, epoch, preset=model, config=config)
    if isinstance(spec, SystemSpec) and spec.auxiliary:
        spec = get_system_spec(spec, auxiliary=False)  # the graph is the inference network's
    net = get_model(spec)
    if onnx_path:
        check_shape(net, shape)
        check_output(onnx_output)
        metadata = deployment_metadata(net, onnx_output, facts) if facts else None
    try:
        report = load_params_file(net, prefix) if epoch is None else load_checkpoint(net, prefix, epoch)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(f"{err} (the checkpoint is not {origin}: choose its preset or "
                                      f"training config)", err.path, err.comparison) from None
    if is_system(net):
        sym_file, params_file = save_system_graph(net, out, ignore_label)
    else:
        sym_file, params_file = save_checkpoint(net, out, EXPORT_EPOCH, ignore_label)
    onnx_file = None
    if onnx_path:
        onnx_file = write_onnx(deployment_model(onnx_model(net, shape), net, onnx_output, metadata), onnx_path)
    return ExportResult(sym_file, params_file, onnx_file, report)


def refuse_existing(paths: List[Optional[str]]) -> None:
    """``OutputError`` naming the first of ``paths`` (None entries skipped) that exists."""
    for path in paths:
        if path and os.path.lexists(path):
            raise OutputError(f"{path}: exists (an earlier export); give --overwrite to replace it, "
                              f"or another output prefix")


def is_system(net: Any) -> bool:
    """True for a comparison system's network (``models.systems``), False for a DUC one."""
    return not isinstance(getattr(net, "spec", None), ModelSpec)


def save_system_graph(net: Any, out: str, ignore_label: int = DEFAULT_IGNORE_LABEL) -> Tuple[str, str]:
    """A comparison system's ``<out>-symbol.json`` (:func:`~tusimple_duc.io.system_symbols.system_training_symbol`)
    and ``<out>-0000.params`` holding the arrays that graph reads (PSPNet's auxiliary head, used only
    in training, is left out: ``mx.mod.Module`` refuses arrays its graph lacks)."""
    symbol = system_training_symbol(net, ignore_label)
    inputs = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    arrays = {key: value for key, value in checkpoint_arrays(net).items() if key.split(":", 1)[1] in inputs}
    sym_file, params_file = symbol_path(out), params_path(out, EXPORT_EPOCH)
    atomic_write_text(sym_file, symbol_text(symbol))
    write_params(params_file, arrays)
    return sym_file, params_file


def onnx_model(net: Any, shape: Tuple[int, int]) -> onnx.ModelProto:
    """``net`` (initialised) as a clean ONNX model: ``data`` (N, 3, H, W) -> ``seg_prob``
    (N, L, r*r*h*w) for a DUC network, (N, L, h, w) for a comparison system; opset
    :data:`~tusimple_duc.io.onnx_graph.ONNX_OPSET`, weights as initializers only, BatchNorm
    folded into the convolutions (:func:`tusimple_duc.io.onnx_graph.clean_model`). ``shape``
    (H, W) traces the graph."""
    height, width = check_shape(net, shape)
    params = {key.split(":", 1)[1]: value for key, value in checkpoint_arrays(net).items()}
    system = is_system(net)
    symbol = system_probability_symbol(net) if system else probability_symbol(net)
    with tempfile.TemporaryDirectory(prefix="duc-onnx-") as folder, system_converters():
        traced = os.path.join(folder, "mx2onnx.onnx")
        mx.onnx.export_model(symbol, params, in_shapes=[(1, 3, height, width)],
                             in_types=[np.float32], onnx_file_path=traced, dynamic=True,
                             dynamic_input_shapes=[(None, 3, None, None)])
        traced_model = onnx.load(traced)
    classes = int(net.num_classes)
    output = ("batch", classes, "out_height", "out_width") if system else ("batch", classes, "pixels")
    return clean_model(traced_model, {INPUT_NAME: ("batch", 3, "height", "width")}, {PROBABILITY_NAME: output})


def export_onnx(net: Any, path: str, shape: Tuple[int, int]) -> str:
    """Write :func:`onnx_model` of ``net`` (the project backends' layout) to ``path``; returns ``path``."""
    return write_onnx(onnx_model(net, shape), path)


def write_onnx(model: onnx.ModelProto, path: str) -> str:
    """Write ``model`` to ``path`` atomically; returns ``path``."""
    atomic_write_with(path, lambda tmp_path: onnx.save(model, tmp_path))
    return path


def check_shape(net: Any, shape: Tuple[int, int]) -> Tuple[int, int]:
    """``shape`` as two positive ints that are multiples of ``net.output_stride``."""
    stride = net.output_stride
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"shape must be two integers H,W, got {shape!r}") from None
    if not sides_are_multiples((height, width), stride):
        raise ConfigError(f"shape {height},{width}: H and W must be positive multiples of the "
                          f"output stride {stride}")
    return height, width


def preset_symbol_text(name: str, ignore_label: int = DEFAULT_IGNORE_LABEL) -> str:
    """The released-layout training symbol JSON of preset ``name`` (deterministic text)."""
    return symbol_text(training_symbol(get_spec(name), ignore_label))


def preset_symbol_path(folder: str, name: str) -> str:
    """``<folder>/<name>-symbol.json``."""
    return os.path.join(folder, f"{name}-symbol.json")


def write_preset_symbols(folder: str) -> List[str]:
    """Write ``<folder>/<preset>-symbol.json`` for every preset; returns the paths."""
    paths = []
    for name in PRESETS:
        path = preset_symbol_path(folder, name)
        atomic_write_text(path, preset_symbol_text(name))
        paths.append(path)
    return paths

