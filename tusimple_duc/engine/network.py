"""The network of a training config: build, initialise, load, describe.

Architecture: ``[network] preset`` with the keys that are set on top
(:func:`tusimple_duc.models.from_config.spec_from_train_config`) -- unless the config loads a
checkpoint (``load_model_prefix`` set and ``load_epoch > 0``, the released solver's rule):
then the checkpoint's ``-symbol.json`` defines the network, as the released solver replaced
its symbol by the checkpoint's (:func:`tusimple_duc.io.symbol_spec.spec_from_symbol_file`).
``[network]`` settings that contradict it are reported in one warning line; the
checkpoint's network is the one trained. A checkpoint without a ``-symbol.json`` (only the
params) keeps the config's network.

Initialisation, in the released solver's order of precedence:

1. every parameter: ``Xavier(factor_type='in', magnitude=2.34)`` for weights (released
   initializer), MXNet ``Module``'s defaults for the others (biases and BatchNorm beta 0,
   gamma 1, moving mean 0, moving variance 1), drawn after ``mx.random.seed(seed)``;
2. ``[model] pretrained``: ImageNet weights of the backbone (``tusimple_duc.io.pretrained``);
3. the checkpoint above: every array it holds; parameters it lacks keep step 1's values
   (``Module.fit(allow_missing=True)``) and are listed in the log; arrays the network does
   not have, or of another shape, are a :class:`~tusimple_duc.io.matching.CheckpointMismatchError`.
   ``load_epoch = 0`` loads nothing (the released ``load_epoch > 0`` test).

A resumed run skips 2 and 3 and loads its own checkpoint instead.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from typing import Any, Dict, List, Optional, Sequence

import mxnet as mx

from tusimple_duc.config import ModelSection, TrainConfig
from tusimple_duc.engine.logs import get_logger
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.checkpoint import load_checkpoint, symbol_path
from tusimple_duc.io.matching import raise_if_mismatch
from tusimple_duc.io.symbol_spec import spec_from_symbol_file
from tusimple_duc.layout import sides_are_multiples
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.hdc import resolve_schedule
from tusimple_duc.models.presets import ModelSpec, build_model
from tusimple_duc.models.segnet import SegmentationNet
from tusimple_duc.models.systems import SystemSpec, build_system

#: The released solver's initializer of every parameter not loaded from a file.
XAVIER = dict(rnd_type="uniform", factor_type="in", magnitude=2.34)


def load_prefix(model: ModelSection) -> Optional[str]:
    """``<load_model_dir>/<load_model_prefix>`` when ``[model]`` loads a checkpoint
    (prefix set and ``load_epoch > 0``), else None."""
    if model.load_model_prefix is None or not model.load_epoch or model.load_epoch <= 0:
        return None
    return os.path.join(model.load_model_dir or "", model.load_model_prefix)


def network_spec(config: TrainConfig) -> ModelSpec:
    """The architecture trained: the loaded checkpoint's ``-symbol.json`` if there is one and
    ``[model] network_from = checkpoint``, else ``[network]`` (see the module docstring)."""
    prefix = load_prefix(config.model)
    if prefix is not None and config.model.network_from == "checkpoint" and os.path.exists(symbol_path(prefix)):
        return spec_from_symbol_file(symbol_path(prefix))
    return spec_from_train_config(config)


def spec_differences(configured: ModelSpec, trained: ModelSpec) -> List[str]:
    """``"field: config X, checkpoint Y"`` for every architecture setting that differs
    (block counts and per-block dilations compared as resolved, not by how they are named)."""
    def resolved(spec: ModelSpec) -> Dict[str, Any]:
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
                  if f.name not in ("depth", "blocks_per_stage", "dilation_schedule")}
        fields["blocks"] = spec.blocks
        fields["dilations"] = resolve_schedule(spec.dilation_schedule, spec.blocks, spec.output_stride)
        return fields

    ours, theirs = resolved(configured), resolved(trained)
    return [f"{name}: config {ours[name]}, checkpoint {theirs[name]}" for name in ours if ours[name] != theirs[name]]


#: ``[network]`` keys recorded from the trained network's spec field of the same name
_RECORDED_SPEC_KEYS = ("aspp", "aspp_stride", "depth", "stem", "head", "width", "blocks_per_stage", "cell_width",
                       "bn_use_global_stats", "bn_momentum")


def trained_config(config: TrainConfig) -> TrainConfig:
    """``config`` with ``[network]`` and ``[data] ds_rate`` describing the network it trains.

    They differ when a loaded checkpoint's ``-symbol.json`` defines the network
    (:func:`network_spec`): the run's saved config then records the checkpoint's
    ``label_num``, head and backbone keys, so that it rebuilds the network trained (export
    ``--config``, a new run from the copy). Otherwise ``config`` is returned unchanged.
    """
    trained = network_spec(config)
    if load_prefix(config.model) is None or isinstance(trained, SystemSpec):
        return config
    configured = spec_from_train_config(config)
    if isinstance(configured, SystemSpec) or not spec_differences(configured, trained):
        return config
    values: Dict[str, Any] = {key: getattr(trained, key) for key in _RECORDED_SPEC_KEYS}
    if isinstance(trained.dilation_schedule, str):
        values["dilation_schedule"] = trained.dilation_schedule
    network = dataclasses.replace(config.network, label_num=trained.num_classes, **values)
    return dataclasses.replace(config, network=network,
                               data=dataclasses.replace(config.data, ds_rate=trained.output_stride))


def build_network(config: TrainConfig) -> SegmentationNet:
    """The uninitialised network of ``config`` (:func:`network_spec`); its ``spec`` holds the
    resolved architecture.

    Raises :class:`ConfigError` naming the key for an invalid architecture, or a crop
    that is not a multiple of the output stride; :class:`CheckpointError` for a loaded
    checkpoint's unusable ``-symbol.json``.
    """
    spec = network_spec(config)
    data = config.data
    crop, key = (data.inner_crop, "inner_crop") if data.patch_scheme == "12fold" else (data.crop_shape, "crop_shape")
    if isinstance(spec, SystemSpec):
        # PSPNet trains with its auxiliary loss; the inference network has the same parameters.
        net = build_system(dataclasses.replace(spec, auxiliary=spec.system == "pspnet"))
        stride = net.output_stride
    else:
        net, stride = None, spec.output_stride
    if not sides_are_multiples(crop, stride):
        raise ConfigError(f"{config.source}: [data] {key}: sides must be multiples of the output stride "
                          f"{stride} of the network, got {crop}")
    return net if net is not None else build_model(spec)


def initialise(net: SegmentationNet, contexts: Sequence[mx.Context], seed: int,
               input_shape: Sequence[int]) -> None:
    """Step 1: Xavier/default initialisation on ``contexts`` (identical on all), shapes
    resolved with one forward pass of zeros of ``input_shape`` (N, 3, H, W)."""
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(**XAVIER), ctx=list(contexts))
    net(mx.nd.zeros(tuple(input_shape), ctx=contexts[0]))


def load_initial_weights(net: SegmentationNet, config: TrainConfig) -> Optional[str]:
    """Steps 2 and 3; returns a description of what was loaded (None: nothing).

    Logs (training logger) the ``[network]`` settings the loaded checkpoint's symbol
    overrides and the parameters the checkpoint lacks.
    """
    model, log = config.model, get_logger()
    loaded = None
    if model.pretrained:
        from tusimple_duc.io.pretrained import load_pretrained

        load_pretrained(net, model.pretrained)
        loaded = f"ImageNet weights {model.pretrained}"
    prefix = load_prefix(model)
    if prefix is not None:
        configured = spec_from_train_config(config)
        differences = [] if isinstance(configured, SystemSpec) else spec_differences(configured, net.spec)
        if differences and model.network_from == "checkpoint":
            log.warning("%s defines the network trained (as the released solver); [network] of %s differs: %s",
                        symbol_path(prefix), config.source, "; ".join(differences))
        report = load_checkpoint(net, prefix, model.load_epoch, allow_missing=True)
        comparison = report.comparison
        if comparison.mismatched:
            raise_if_mismatch(dataclasses.replace(comparison, missing=()), report.params_file,
                              "does not match its network")
        if comparison.missing:
            log.info("%d parameters not in %s keep their initial values: %s", len(comparison.missing),
                     report.params_file, ", ".join(comparison.missing))
        loaded = f"checkpoint {report.params_file} ({len(report.loaded)} arrays)"
    return loaded


def write_summary(net: SegmentationNet, path: str, input_shape: Sequence[int]) -> None:
    """``mx.viz.print_summary`` of ``net`` for ``input_shape`` (N, 3, H, W), written to ``path``."""
    symbol = net(mx.sym.var("data"))
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        mx.viz.print_summary(symbol, shape={"data": tuple(input_shape)}, line_length=140)
    atomic_write_text(path, text.getvalue())
