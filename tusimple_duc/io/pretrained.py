"""ImageNet initialisation of the backbone from public ResNet classification weights.

Sources (``source`` argument)
-----------------------------
``resnet50_v1s``, ``resnet101_v1s``, ``resnet152_v1s``
    GluonCV's ResNetV1s: deep stem (3x3/s2 64 -> 3x3 64 -> 3x3 128, as the released model),
    bottleneck v1 with the stride on the 3x3 conv (GluonCV "v1b"). For ``stem="deep"``.
``resnet50_v1``, ``resnet101_v1``, ``resnet152_v1``
    Gluon model zoo (``mxnet.gluon.model_zoo.vision``, also GluonCV's ``resnet*_v1``, same
    layout): classic 7x7 stem, bottleneck v1 with the stride on the first 1x1 conv like the
    released network. For ``stem="classic"``.
``resnet-50``, ``resnet-101``, ``resnet-152`` (MXNet model-zoo symbol checkpoints ``resnet-101-0000.params``)
    REFUSED. They come from MXNet's ``example/image-classification/symbols/resnet.py``, which
    is the *pre-activation* ResNet ("Identity Mappings", v2): a ``bn_data`` BatchNorm on the
    input, BN -> ReLU -> conv in every unit, the stride on the 3x3 conv, the projection fed by
    the unit's first BN-ReLU, no BN after the last conv of a unit and no ReLU after the sum.
    Their BatchNorm layers normalise other tensors than the v1 network's, so no tensor-for-tensor
    mapping computes the same function; only the stem conv0/bn0 has a v1 counterpart, and it
    follows ``bn_data``. Any params file holding those names is refused with that explanation.

The file is ``path``, or else ``<root>/<source>-<hash>.params`` (GluonCV's download naming;
``root`` defaults to ``$MXNET_HOME/models``, i.e. ``~/.mxnet/models``). Both the current Gluon
format (``save_parameters``: structural keys) and the legacy one (parameter names) load.
Nothing is downloaded: the source network is only built (randomly initialised layout) to
read the file. GluonCV's ``ResNetV1b`` module is loaded from its file, because GluonCV
0.10/0.11 refuses to import at all when torch >= 2.0 is installed.

Mapping (every backbone tensor; the 1000-class classifier is dropped; the head is untouched)
-------------------------------------------------------------------------------------------
========================================  =============================================
GluonCV v1s                               ours (``stage = i + 1``, ``block = b + 1``)
========================================  =============================================
``conv1.0`` / ``conv1.1``                 ``conv1_1_3x3_s2`` / ``conv1_1_3x3_s2/bn``
``conv1.3`` / ``conv1.4``                 ``conv1_2_3x3`` / ``conv1_2_3x3/bn``
``conv1.6`` / ``bn1``                     ``conv1_3_3x3`` / ``conv1_3_3x3/bn``
``layer{i}.{b}.conv1`` / ``bn1``          ``conv{stage}_{block}_1x1_reduce`` (``/bn``)
``layer{i}.{b}.conv2`` / ``bn2``          ``conv{stage}_{block}_3x3`` (``/bn``)
``layer{i}.{b}.conv3`` / ``bn3``          ``conv{stage}_{block}_1x1_increase`` (``/bn``)
``layer{i}.{b}.downsample.0`` / ``.1``    ``conv{stage}_{block}_1x1_proj`` (``/bn``)
========================================  =============================================

Gluon v1: ``features.0`` / ``features.1`` -> ``conv1_7x7_s2`` (``/bn``);
``features.{k}.{b}.body.0|1|3|4|6|7`` -> reduce, reduce/bn, 3x3, 3x3/bn, increase, increase/bn
of stage ``k - 2``; ``downsample.0|1`` -> proj, proj/bn. Leaves: ``weight`` -> ``_weight``;
``gamma|beta|running_mean|running_var`` -> ``/bn_<leaf>``.

Exact adjustments, so that the network computes the source's features:

* Gluon v1's 1x1 convs have a bias followed by BatchNorm: the bias is folded into that BN's
  running mean (``mean - bias``; exact with frozen statistics, cancelled by batch statistics).
* BatchNorm eps differs (sources 1e-5, ours 1e-6): the running variance gets
  ``eps_source - eps_ours`` added, so ``sqrt(var + eps)`` is unchanged.
* The sources were trained on ``(x / 255 - mean) / std`` (ImageNet mean 0.485, 0.456, 0.406,
  std 0.229, 0.224, 0.225, RGB); this project feeds ``x - mean`` in 0..255 (released means
  122.675, 116.669, 104.008). The first conv's input channel c is divided by ``255 * std_c``
  (exact). The means differ by at most 1.0 grey level; that offset is not compensated.

Remaining differences (reported as warnings where they apply): the v1s stride sits on the
3x3 conv while the released network strides its 1x1 (``stride_in_1x1``); the v1s and v1
stem pools pad by 1 while the deep stem's pool does not pad; dilation replaces the strides of
stages 4-5.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
from typing import Any, Callable, Dict, Optional, Tuple

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.checkpoint import assign_parameter
from tusimple_duc.io.matching import compare_shapes, raise_if_mismatch
from tusimple_duc.io.paramfile import read_params
from tusimple_duc.io.pretrained_common import (PretrainedReport, batchnorm_eps, locate_model_file, map_v1s_layer,
                                               rescale_input_channels, resnet_backbone)
from tusimple_duc.io.pretrained_pspnet import GLUONCV_PSPNET, is_gluoncv_pspnet, load_gluoncv_pspnet
from tusimple_duc.models.vgg import VGG16Backbone, vgg16_model_zoo_arrays

log = logging.getLogger(__name__)

DEPTHS = (50, 101, 152)
GLUONCV_V1S = {f"resnet{d}_v1s": d for d in DEPTHS}
GLUON_V1 = {f"resnet{d}_v1": d for d in DEPTHS}
MXNET_V2_SYMBOL = {f"resnet-{d}": d for d in DEPTHS}
SOURCES: Tuple[str, ...] = (*GLUONCV_V1S, *GLUON_V1, *MXNET_V2_SYMBOL)

_V2_KEY = re.compile(r"^(arg|aux):(bn_data_|stage\d+_unit\d+_(bn\d|conv\d|sc)_)")
_STEM_V1 = {"features.0": "conv1_7x7_s2", "features.1": "conv1_7x7_s2/bn"}
_BLOCK_V1 = {"body.0": "1x1_reduce", "body.1": "1x1_reduce/bn", "body.3": "3x3",
             "body.4": "3x3/bn", "body.6": "1x1_increase", "body.7": "1x1_increase/bn",
             "downsample.0": "1x1_proj", "downsample.1": "1x1_proj/bn"}
_CLASSIFIERS = ("fc.", "output.")
_DEPTH_BY_STAGE4_BLOCKS = {6: 50, 23: 101, 36: 152}
_V2_REFUSAL = ("pre-activation ResNet v2 (bn_data on the input, BN-ReLU before every conv, "
               "stride on the 3x3, no BN after a unit's last conv) cannot be mapped onto this "
               "post-activation v1 network: its BatchNorms normalise different tensors, so no "
               "tensor-for-tensor mapping computes the same function;")


def load_pretrained(net: Any, source_or_path: str, root: Optional[str] = None) -> PretrainedReport:
    """``[model] pretrained`` of a training config: a source name of :data:`SOURCES` (its file
    is looked up in ``root``) or a params file (the source is read from its content).
    Networks with a VGG-16 encoder take ``vgg16`` / ``vgg16_bn`` (:func:`load_vgg16_pretrained`);
    GluonCV's trained PSPNet files (a name of ``GLUONCV_PSPNET`` or a file with its keys) go to
    :func:`tusimple_duc.io.pretrained_pspnet.load_gluoncv_pspnet`."""
    if source_or_path in VGG_SOURCES or vgg_encoder(net) is not None:
        source = source_or_path if source_or_path in VGG_SOURCES else None
        return load_vgg16_pretrained(net, source, None if source else source_or_path, root)
    if source_or_path in GLUONCV_PSPNET:
        return load_gluoncv_pspnet(net, source_or_path, root=root)
    if source_or_path in SOURCES:
        return load_imagenet_pretrained(net, source_or_path, root=root)
    if is_gluoncv_pspnet(read_params(source_or_path)):
        return load_gluoncv_pspnet(net, path=source_or_path)
    return load_imagenet_pretrained(net, None, path=source_or_path)


def load_imagenet_pretrained(net: Any, source: Optional[str], path: Optional[str] = None,
                             root: Optional[str] = None) -> PretrainedReport:
    """Initialise ``net.backbone`` from ImageNet weights (see the module docstring).

    Parameters
    ----------
    net : a ``SegmentationNet`` or ResNet comparison system whose backbone has the source's
        depth and stem.
    source : one of :data:`SOURCES`; None: detected from the file (``path`` required).
    path : the params file; default: the one file ``<root>/<source>-*.params``.
    root : folder of downloaded models; default ``$MXNET_HOME/models`` (``~/.mxnet/models``).

    Raises
    ------
    CheckpointError : unknown or refused source, file missing/corrupt/of another network,
        or weights that do not fit the backbone (depth, stem), one line naming the file.
    """
    if source is not None and source not in SOURCES:
        raise CheckpointError(f"unknown ImageNet source {source!r} (known: {', '.join(SOURCES)})")
    if source in MXNET_V2_SYMBOL:
        raise CheckpointError(f"{source}: {_V2_REFUSAL} use resnet{MXNET_V2_SYMBOL[source]}_v1s "
                              f"(deep stem) or resnet{MXNET_V2_SYMBOL[source]}_v1 (classic stem)")
    if source is None and path is None:
        raise CheckpointError("ImageNet initialisation needs a source name or a params file")
    path = path or locate_model_file(source, root)
    arrays = read_params(path)
    if any(_V2_KEY.match(key) for key in arrays):
        raise CheckpointError(f"{path}: an MXNet model-zoo symbol checkpoint: {_V2_REFUSAL} "
                              f"use a resnet*_v1s or resnet*_v1 file")
    detected = detect_source(arrays, path)
    if detected is None and source is None:
        raise CheckpointError(f"{path}: cannot tell which ImageNet ResNet this is (known: "
                              f"{', '.join(SOURCES[:6])}); name the source")
    if detected is not None and source is not None and detected != source:
        raise CheckpointError(f"{path}: holds {detected} weights, not {source}")
    source = source or detected
    _check_stem(net, source, path)
    src = _build_source(source)
    keyed = _structural_arrays(src, arrays, path, source)
    if source in GLUONCV_V1S:
        rename, first_conv = map_v1s_layer, map_v1s_layer("conv1.0") + "_weight"
    else:
        rename, first_conv = _map_v1, _STEM_V1["features.0"] + "_weight"
    values, mapping, dropped = _translate(src, keyed, rename, net)
    rescale_input_channels(values, first_conv)
    backbone = {name: tuple(p.shape) for name, p in resnet_backbone(net).collect_params().items()}
    comparison = compare_shapes(backbone, {name: v.shape for name, v in values.items()})
    raise_if_mismatch(comparison, path, f"{source} weights do not fit the network's backbone")
    params = net.collect_params()
    for name, value in values.items():
        assign_parameter(params[name], mx.nd.array(value, dtype=value.dtype))
    _warn_differences(net, source)
    untouched = tuple(name for name in params if name not in values)
    log.info("%s: initialised %d backbone arrays from %s; %d left for the caller (head)",
             path, len(values), source, len(untouched))
    return PretrainedReport(source, path, mapping, dropped, untouched)


def detect_source(arrays: Dict[str, Any], path: str = "") -> Optional[str]:
    """The source of a params file from its structural keys (block count of the third stage),
    else from a GluonCV-style file name ``resnet101_v1s-<hash>.params``; None if neither tells."""
    for pattern, name in ((r"layer3\.(\d+)\.", "resnet{}_v1s"), (r"features\.6\.(\d+)\.", "resnet{}_v1")):
        blocks = {m[1] for key in arrays if (m := re.match(pattern, key))}
        if blocks:
            depth = _DEPTH_BY_STAGE4_BLOCKS.get(len(blocks))
            return name.format(depth) if depth else None
    match = re.match(r"(resnet\d+_v1s?)(-[0-9a-f]+)?\.params$", os.path.basename(path))
    return match[1] if match and match[1] in SOURCES else None


def _build_source(source: str) -> nn.HybridBlock:
    """The source classification network (layout only; nothing is downloaded)."""
    if source in GLUON_V1:
        from mxnet.gluon.model_zoo.vision import get_resnet

        return get_resnet(1, GLUON_V1[source])
    module = _gluoncv_resnetv1b()
    return getattr(module, source)(pretrained=False)


def _gluoncv_resnetv1b() -> Any:
    """GluonCV's ``model_zoo/resnetv1b.py`` (it imports only mxnet), loaded from its file."""
    spec = importlib.util.find_spec("gluoncv")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("GluonCV is not installed: it defines the resnet*_v1s layout")
    path = os.path.join(list(spec.submodule_search_locations)[0], "model_zoo", "resnetv1b.py")
    module_spec = importlib.util.spec_from_file_location("_tusimple_duc_gluoncv_resnetv1b", path)
    if module_spec is None or module_spec.loader is None or not os.path.exists(path):
        raise CheckpointError(f"{path}: GluonCV's ResNetV1b definition is missing")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _structural_arrays(src: nn.HybridBlock, arrays: Dict[str, mx.nd.NDArray], path: str,
                       source: str) -> Dict[str, mx.nd.NDArray]:
    """Key the file's arrays by the source's structural names, checking names and shapes."""
    structural = dict(src._collect_params_with_prefix())
    if not any("." in key for key in arrays):  # legacy ParameterDict.save: parameter names
        by_name = {param.name: key for key, param in structural.items()}
        arrays = {by_name.get(k, by_name.get(src.prefix + k, k)): v for k, v in arrays.items()}
    expected = {key: tuple(p.shape or ()) for key, p in structural.items()}
    comparison = compare_shapes(expected, {k: v.shape for k, v in arrays.items()})
    raise_if_mismatch(comparison, path, f"is not a {source} parameter file")
    return arrays


def _map_v1(layer: str) -> Optional[str]:
    if layer in _STEM_V1:
        return _STEM_V1[layer]
    match = re.fullmatch(r"features\.(\d+)\.(\d+)\.(.+)", layer)
    if match and match[3] in _BLOCK_V1:
        return f"conv{int(match[1]) - 2}_{int(match[2]) + 1}_{_BLOCK_V1[match[3]]}"
    return None


def _translate(src: nn.HybridBlock, keyed: Dict[str, mx.nd.NDArray],
               rename: Callable[[str], Optional[str]], net: Any
               ) -> Tuple[Dict[str, np.ndarray], Dict[str, str], Tuple[str, ...]]:
    """Our ``{name: value}`` from the source arrays, conv biases folded and BN eps compensated.

    Returns the values, ``{source key: our name}`` and the dropped source keys.
    """
    values: Dict[str, np.ndarray] = {}
    mapping: Dict[str, str] = {}
    dropped = []
    biases = {}
    for key, array in keyed.items():
        layer, _, leaf = key.rpartition(".")
        ours = rename(layer)
        if key.startswith(_CLASSIFIERS) or ours is None:
            dropped.append(key)
        elif leaf == "bias":  # a conv bias feeding BatchNorm ``ours/bn``: fold into its mean
            mapping[key] = biases[key] = ours + "/bn_running_mean"
        else:
            mapping[key] = ours + "_" + leaf
            values[mapping[key]] = array.asnumpy().copy()
    for key, mean_name in biases.items():
        values[mean_name] = values[mean_name] - keyed[key].asnumpy()
    structural = src._collect_params_with_prefix()
    src_eps, net_eps = batchnorm_eps(src), batchnorm_eps(net)
    for key, ours in mapping.items():
        if ours.endswith("_running_var") and ours in net_eps:
            delta = src_eps[structural[key].name] - net_eps[ours]
            values[ours] = np.maximum(values[ours] + delta, 0).astype(values[ours].dtype)
    return values, mapping, tuple(dropped)


def _check_stem(net: Any, source: str, path: str) -> None:
    """One clear error when the source's stem is not the network's."""
    config = getattr(resnet_backbone(net), "config", None)
    stem = "deep" if source in GLUONCV_V1S else "classic"
    if config is not None and config.stem != stem:
        depth = (GLUONCV_V1S if stem == "deep" else GLUON_V1)[source]
        other = f"resnet{depth}_v1s" if config.stem == "deep" else f"resnet{depth}_v1"
        raise CheckpointError(f"{path}: {source} has the {stem} stem, the network the "
                              f"{config.stem} stem: use {other}")


def _warn_differences(net: Any, source: str) -> None:
    config = getattr(resnet_backbone(net), "config", None)
    stride_in_1x1 = source in GLUON_V1
    if config is not None and config.stride_in_1x1 != stride_in_1x1:
        log.warning("%s strides its first block on the %s conv, this network on the %s conv "
                    "(stride_in_1x1=%s): the weights load but those blocks compute another function",
                    source, "1x1" if stride_in_1x1 else "3x3",
                    "1x1" if config.stride_in_1x1 else "3x3", config.stride_in_1x1)


# ------------------------------------------------------------------ VGG-16 (FCN, SegNet, Dilation, DeepLab v1)
# Gluon's model zoo ``vgg16`` file for the ``fcn``, ``dilated`` and ``largefov`` encoders and
# ``vgg16_bn`` for ``segnet``, mapped by ``models.vgg.vgg16_model_zoo_arrays`` (fc6/fc7 made
# convolutional, DeepLab's decimation for ``largefov``); the first conv's input channels are
# rescaled as for the ResNets. The original systems started from the Caffe VGG-16 (BGR, no std):
# the same weights up to that input scaling. Only full-width encoders fit (``vgg_width = 64``).
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
    rescale_input_channels(values, "conv1_1_weight")
    params = encoder.collect_params()
    comparison = compare_shapes({name: tuple(p.shape) for name, p in params.items()},
                                {name: v.shape for name, v in values.items()})
    raise_if_mismatch(comparison, path, f"{source} weights do not fit the network's VGG-16 encoder")
    for name, value in values.items():
        assign_parameter(params[name], mx.nd.array(value, dtype=value.dtype))
    mapping: Dict[str, str] = {name: name for name in values}
    untouched = tuple(name for name in net.collect_params() if name not in values)
    return PretrainedReport(source, path, mapping, (), untouched)
