"""The network of a training config: build, initialise, describe.

Architecture: ``[network] preset`` with the keys that are set on top
(:func:`tusimple_duc.models.from_config.spec_from_train_config`).

Initialisation, in the released solver's order of precedence:

1. every parameter: MXNet defaults for BatchNorm (gamma 1, beta 0, statistics 0 / 1) and
   biases (0), ``Xavier(factor_type='in', magnitude=2.34)`` for weights (released
   initializer), drawn after ``mx.random.seed(seed)``;
2. ``[model] pretrained``: ImageNet weights of the backbone (``tusimple_duc.io.pretrained``);
3. ``[model] load_model_prefix`` / ``load_epoch``: a checkpoint in the released format
   (``allow_missing``: parameters absent from it, e.g. a new head, keep step 1's values).

A resumed run skips 2 and 3 and loads its own checkpoint instead.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Optional, Sequence

import mxnet as mx

from tusimple_duc.config import TrainConfig
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.checkpoint import load_checkpoint
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.presets import build_model
from tusimple_duc.models.segnet import SegmentationNet

#: The released solver's initializer of every parameter not loaded from a file.
XAVIER = dict(rnd_type="uniform", factor_type="in", magnitude=2.34)


def build_network(config: TrainConfig) -> SegmentationNet:
    """The uninitialised network of ``config``; its ``spec`` holds the resolved architecture.

    Raises :class:`ConfigError` naming the key for an invalid architecture, or a crop
    that is not a multiple of the output stride.
    """
    spec = spec_from_train_config(config)
    data = config.data
    crop, key = (data.inner_crop, "inner_crop") if data.patch_scheme == "12fold" else (data.crop_shape, "crop_shape")
    if any(side % spec.output_stride for side in crop):
        raise ConfigError(f"{config.source}: [data] {key}: sides must be multiples of the output stride "
                          f"{spec.output_stride} of preset {config.network.preset}, got {crop}")
    return build_model(spec)


def initialise(net: SegmentationNet, contexts: Sequence[mx.Context], seed: int,
               input_shape: Sequence[int]) -> None:
    """Step 1: Xavier/default initialisation on ``contexts`` (identical on all), shapes
    resolved with one forward pass of zeros of ``input_shape`` (N, 3, H, W)."""
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(**XAVIER), ctx=list(contexts))
    net(mx.nd.zeros(tuple(input_shape), ctx=contexts[0]))


def load_initial_weights(net: SegmentationNet, config: TrainConfig) -> Optional[str]:
    """Steps 2 and 3; returns a description of what was loaded (None: nothing)."""
    model = config.model
    loaded = None
    if model.pretrained:
        from tusimple_duc.io.pretrained import load_pretrained

        load_pretrained(net, model.pretrained)
        loaded = f"ImageNet weights {model.pretrained}"
    if model.load_model_prefix:
        prefix = os.path.join(model.load_model_dir or "", model.load_model_prefix)
        report = load_checkpoint(net, prefix, model.load_epoch, allow_missing=model.allow_missing)
        loaded = f"checkpoint {report.params_file} ({len(report.loaded)} arrays)"
    return loaded


def write_summary(net: SegmentationNet, path: str, input_shape: Sequence[int]) -> None:
    """``mx.viz.print_summary`` of ``net`` for ``input_shape`` (N, 3, H, W), written to ``path``."""
    symbol = net(mx.sym.var("data"))
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        mx.viz.print_summary(symbol, shape={"data": tuple(input_shape)}, line_length=140)
    atomic_write_text(path, text.getvalue())
