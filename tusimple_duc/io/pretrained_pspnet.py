"""GluonCV's trained PSPNet files (``psp_resnet101_citys`` ...) into the ``pspnet`` system.

GluonCV's ``PSPNet`` (``gluoncv/model_zoo/pspnet.py``) is a ``SegBaseModel`` holding the layers of
its dilated ``resnet{50,101}_v1s`` at the top level (``conv1``, ``bn1``, ``layer1`` .. ``layer4``,
the same structural keys as the ImageNet ResNetV1s), the pyramid-pooling head ``head`` and, when
trained with ``aux=True`` (the model-zoo files), the auxiliary head ``auxlayer``. Its model-zoo
files are ``save_parameters`` files (structural keys). Mapping:

==========================================  ==========================================
GluonCV ``PSPNet``                          ours (``models.decoders.pspnet``)
==========================================  ==========================================
``conv1.*``, ``bn1``, ``layer{i}.*``        the backbone, as ``io.pretrained`` (v1s)
``head.psp.conv{k}.0`` / ``.1``             ``conv5_3_pool{bin}_conv`` (``/bn``), bins 1, 2, 3, 6
``head.block.0`` / ``.1`` / ``.4``          ``conv5_4`` / ``conv5_4/bn`` / ``conv6``
``auxlayer.block.0`` / ``.1`` / ``.4``      ``aux_conv`` / ``aux_conv/bn`` / ``aux_score``
==========================================  ==========================================

Leaves: ``weight``/``bias`` -> ``_weight``/``_bias``; BatchNorm ``gamma|beta|running_mean|
running_var`` -> ``/bn_<leaf>``. Adjustments as for the ImageNet files (``io.pretrained``): the
first conv's input channel c is divided by ``255 * std_c`` (GluonCV feeds ``(x / 255 - mean) /
std``, this project ``x - mean``; the means differ by at most 1 grey level, not compensated) and
a BatchNorm eps other than GluonCV's 1e-5 is compensated in the running variance.

The result computes GluonCV's network exactly when the net is built with
``dilation_schedule = gluoncv`` (GluonCV's first blocks of stages 4 and 5 run at rates 1 and 2;
the PSPNet authors' prototxt, the preset's ``deeplab``, at 2 and 4): otherwise the weights load
and one warning line names the difference. GluonCV itself is not imported.
:func:`gluoncv_pspnet_network` builds that exact network from a file alone (depth and class count
read from it); ``tools/import_gluoncv_pspnet.py`` saves it as a checkpoint test.py and export read.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, Optional, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.checkpoint import assign_parameter
from tusimple_duc.io.matching import compare_shapes, raise_if_mismatch
from tusimple_duc.io.paramfile import read_params
from tusimple_duc.io.pretrained_common import (PretrainedReport, batchnorm_eps, locate_model_file, map_v1s_layer,
                                               rescale_input_channels, resnet_backbone)
from tusimple_duc.models.decoders.base import EncoderDecoderNet
from tusimple_duc.models.decoders.pspnet import PSP_BINS, PSPDecoder
from tusimple_duc.models.hdc import resolve_schedule
from tusimple_duc.models.resnet import DEPTH_BLOCKS
from tusimple_duc.models.systems import build_system, get_system_spec

log = logging.getLogger(__name__)

#: GluonCV's model-zoo PSPNet files (``<root>/<name>-<hash>.params``).
GLUONCV_PSPNET: Tuple[str, ...] = ("psp_resnet101_citys", "psp_resnet101_voc", "psp_resnet101_coco",
                                   "psp_resnet101_ade", "psp_resnet50_ade")
GLUONCV_BN_EPS = 1e-5
_HEAD_KEY = "head.psp."
_HEAD = {"head.block.0": "conv5_4", "head.block.1": "conv5_4/bn", "head.block.4": "conv6",
         "auxlayer.block.0": "aux_conv", "auxlayer.block.1": "aux_conv/bn", "auxlayer.block.4": "aux_score"}
_HEAD.update({f"head.psp.conv{k}.{i}": f"conv5_3_pool{b}_conv" + ("/bn" if i else "")
              for k, b in enumerate(PSP_BINS, start=1) for i in (0, 1)})
_AUX_PARAMS = re.compile(r"^aux_(conv|score)[_/]")


def is_gluoncv_pspnet(arrays: Dict[str, Any]) -> bool:
    """Whether a params file's keys are a GluonCV ``PSPNet``'s (its pyramid-pooling head)."""
    return any(key.startswith(_HEAD_KEY) for key in arrays)


def load_gluoncv_pspnet(net: Any, source: Optional[str] = None, path: Optional[str] = None,
                        root: Optional[str] = None) -> PretrainedReport:
    """Set every parameter of a ``pspnet`` network from a GluonCV PSPNet file.

    Parameters
    ----------
    net : an ``EncoderDecoderNet`` of the ``pspnet`` system (parameters initialised).
    source : one of :data:`GLUONCV_PSPNET` (the file is ``<root>/<source>-<hash>.params``).
    path : the params file instead of ``source``.
    root : folder of downloaded models (``$MXNET_HOME/models`` by default).

    Raises
    ------
    CheckpointError : the net is not a PSPNet; the file is missing, corrupt, not a GluonCV PSPNet
        file, or of another depth / class count than the net (one line naming the file).
    """
    decoder = getattr(net, "decoder", None)
    if not isinstance(decoder, PSPDecoder):
        raise CheckpointError(f"{path or source}: a GluonCV PSPNet file needs a pspnet network")
    if source is not None and source not in GLUONCV_PSPNET:
        raise CheckpointError(f"unknown GluonCV PSPNet {source!r} (known: {', '.join(GLUONCV_PSPNET)})")
    path = path or locate_model_file(source, root)
    arrays = read_params(path)
    if not is_gluoncv_pspnet(arrays):
        raise CheckpointError(f"{path}: not a GluonCV PSPNet parameter file (no {_HEAD_KEY}* keys)")
    values, mapping = _translate(arrays, net)
    rescale_input_channels(values, map_v1s_layer("conv1.0") + "_weight")
    params = net.collect_params()
    has_aux = any(key.startswith("auxlayer.") for key in arrays)
    expected = {name: tuple(p.shape) for name, p in params.items() if has_aux or not _AUX_PARAMS.match(name)}
    comparison = compare_shapes(expected, {name: v.shape for name, v in values.items()})
    raise_if_mismatch(comparison, path, "GluonCV PSPNet weights do not fit the network")
    for name, value in values.items():
        assign_parameter(params[name], mx.nd.array(value, dtype=value.dtype))
    _warn_rates(net, path)
    untouched = tuple(name for name in params if name not in values)
    log.info("%s: initialised %d arrays from a GluonCV PSPNet; %d untouched", path, len(values), len(untouched))
    return PretrainedReport(source or "gluoncv_pspnet", path, mapping, (), untouched)


def gluoncv_pspnet_network(path: str) -> EncoderDecoderNet:
    """GluonCV's PSPNet of the file ``path`` as a ``pspnet_resnet101``-family network with
    ``dilation_schedule = gluoncv``, its depth (stage-4 block count) and class count (``conv6``)
    read from the file, every parameter loaded (raises as :func:`load_gluoncv_pspnet`)."""
    arrays = read_params(path)
    if not is_gluoncv_pspnet(arrays) or "head.block.4.weight" not in arrays:
        raise CheckpointError(f"{path}: not a GluonCV PSPNet parameter file (no {_HEAD_KEY}* keys or classifier)")
    blocks = len({key.split(".")[1] for key in arrays if key.startswith("layer3.")})
    depths = [depth for depth, counts in DEPTH_BLOCKS.items() if counts[2] == blocks]
    if not depths:
        raise CheckpointError(f"{path}: {blocks} blocks in stage 4 is no ResNet depth of {sorted(DEPTH_BLOCKS)}")
    spec = get_system_spec("pspnet_resnet101", depth=depths[0], num_classes=arrays["head.block.4.weight"].shape[0],
                           dilation_schedule="gluoncv")
    net = build_system(spec)
    load_gluoncv_pspnet(net, path=path)
    return net


def _our_layer(layer: str) -> Optional[str]:
    return _HEAD.get(layer) or map_v1s_layer(layer)


def _translate(arrays: Dict[str, mx.nd.NDArray], net: Any) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Our ``{name: value}`` (a key without counterpart keeps its own name, reported as
    unexpected) and ``{GluonCV key: our name}``; BatchNorm eps compensated."""
    values: Dict[str, np.ndarray] = {}
    mapping: Dict[str, str] = {}
    for key, array in arrays.items():
        layer, _, leaf = key.rpartition(".")
        ours = _our_layer(layer)
        name = key if ours is None else f"{ours}_{leaf}"
        mapping[key] = name
        values[name] = array.asnumpy().copy()
    for name, eps in batchnorm_eps(net).items():
        if name in values and eps != GLUONCV_BN_EPS:
            values[name] = np.maximum(values[name] + GLUONCV_BN_EPS - eps, 0).astype(values[name].dtype)
    return values, mapping


def _warn_rates(net: Any, path: str) -> None:
    backbone = resnet_backbone(net)
    config = backbone.config
    theirs = resolve_schedule("gluoncv", config.blocks_per_stage, config.output_stride)
    if theirs != backbone.rates:
        log.warning("%s: GluonCV's PSPNet runs the first block of stages 4 and 5 at rates %d and %d, this "
                    "network at %d and %d: the weights load but those blocks compute another function "
                    "(set [network] dilation_schedule = gluoncv to run GluonCV's network)", path,
                    theirs[4][0], theirs[5][0], backbone.rates[4][0], backbone.rates[5][0])
