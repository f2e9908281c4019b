"""ImageNet initialisation of the VGG-16 encoders (FCN, SegNet, Dilation, DeepLab v1).

Sources: Gluon's model zoo ``vgg16`` (``mxnet.gluon.model_zoo.vision.vgg16``, file
``vgg16-<hash>.params``) for the ``fcn``, ``dilated`` and ``largefov`` variants, and ``vgg16_bn``
(BatchNorm after every conv) for ``segnet``. The mapping is
:func:`~tusimple_duc.models.vgg.vgg16_model_zoo_arrays` (convs in order, fc6/fc7 made
convolutional, DeepLab's decimation for ``largefov``); the first conv's input channels are
rescaled as for the ResNets (``io.pretrained``: the zoo's ``(x / 255 - mean) / std`` input becomes
this project's ``x - mean``). The original systems started from the Caffe VGG-16 (BGR, no std),
the same weights up to that input scaling. Only full-width backbones fit (``vgg_width = 64``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import mxnet as mx

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.checkpoint import assign_parameter
from tusimple_duc.io.matching import compare_shapes, raise_if_mismatch
from tusimple_duc.io.paramfile import read_params
from tusimple_duc.io.pretrained import PretrainedReport, _rescale_input_channels, locate_model_file
from tusimple_duc.models.vgg import VGG16Backbone, vgg16_model_zoo_arrays

VGG_SOURCES: Tuple[str, ...] = ("vgg16", "vgg16_bn")


def vgg_encoder(net: Any) -> Optional[VGG16Backbone]:
    """``net.encoder`` when it is a VGG-16 backbone, else None."""
    encoder = getattr(net, "encoder", None)
    return encoder if isinstance(encoder, VGG16Backbone) else None


def load_vgg16_pretrained(net: Any, source: Optional[str], path: Optional[str] = None,
                          root: Optional[str] = None) -> PretrainedReport:
    """Initialise ``net.encoder`` (a :class:`VGG16Backbone`) from a model-zoo VGG-16 file.

    Parameters
    ----------
    net : an ``EncoderDecoderNet`` with a VGG-16 encoder.
    source : ``vgg16`` or ``vgg16_bn`` (None: ``vgg16_bn`` for ``segnet``, else ``vgg16``).
    path : the params file; default: the one ``<root>/<source>-*.params``.
    root : folder of downloaded models (``$MXNET_HOME/models`` by default).

    Raises
    ------
    CheckpointError : one line naming the file: not a VGG-16 file of that kind, or weights
        that do not fit the encoder (e.g. a reduced ``vgg_width``).
    """
    encoder = vgg_encoder(net)
    if encoder is None:
        raise CheckpointError(f"{path or source}: VGG-16 weights need a network with a VGG-16 encoder")
    wanted = "vgg16_bn" if encoder.variant == "segnet" else "vgg16"
    source = source or wanted
    if source not in VGG_SOURCES:
        raise CheckpointError(f"unknown VGG source {source!r} (known: {', '.join(VGG_SOURCES)})")
    if source != wanted:
        raise CheckpointError(f"{path or source}: the {encoder.variant} encoder needs {wanted}, not {source}")
    path = path or locate_model_file(source, root)
    try:
        values = vgg16_model_zoo_arrays(read_params(path), encoder)
    except ValueError as err:
        raise CheckpointError(f"{path}: not a {source} file: {err}") from None
    _rescale_input_channels(values, "conv1_1_weight")
    params = encoder.collect_params()
    comparison = compare_shapes({name: tuple(p.shape) for name, p in params.items()},
                                {name: v.shape for name, v in values.items()})
    raise_if_mismatch(comparison, path, f"{source} weights do not fit the network's VGG-16 encoder")
    for name, value in values.items():
        assign_parameter(params[name], mx.nd.array(value, dtype=value.dtype))
    mapping: Dict[str, str] = {name: name for name in values}
    untouched = tuple(name for name in net.collect_params() if name not in values)
    return PretrainedReport(source, path, mapping, (), untouched)
