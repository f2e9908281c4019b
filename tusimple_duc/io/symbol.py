"""The released-layout MXNet symbol of any :class:`~tusimple_duc.models.segnet.SegmentationNet`.

The released ``ResNet_DUC_HDC_CityScapes-symbol.json`` ends in::

    head (N, L*r*r, h, w) -> Reshape(shape=(0, L, -1), name='cls_score_reshape')
        -> SoftmaxOutput(multi_output=True, use_ignore=True, ignore_label=255,
                         normalization='valid', name='seg_loss')      # label 'seg_loss_label'

:func:`training_symbol` builds that graph for the network's :class:`ModelSpec` with
:func:`tusimple_duc.io.symbol_graph.head_scores_symbol`: for the released preset it is the
graph of the original network code node for node (names such as ``conv1_1_3x3_s2/relu``,
``res4_5``, ``conv2_1``, ``pool1_3x3_s2``, ``fc1_cityscapes_c0``, ``fc1_cityscapes``; the
same ops, input order and attributes), for every other preset its generalisation. Variables
carry the checkpoint names of :mod:`tusimple_duc.io.names` (BatchNorm statistics
``<bn>_moving_mean`` / ``<bn>_moving_var``, the released aux states).

Inputs are ``data`` (N, 3, H, W) and ``seg_loss_label`` (N, r*r*h*w) (the released
flattened DUC layout; for the bilinear and deconv heads the row-major flattened label map
at the prediction resolution); the output ``seg_loss_output`` is (N, L, r*r*h*w) softmax
probabilities. :func:`probability_symbol` is the same graph ending in ``softmax(axis=1)``
instead of ``SoftmaxOutput`` (no label input), for ONNX. Every node is named explicitly,
so the JSON text of a network is deterministic.
"""
from __future__ import annotations

from typing import Union

import mxnet as mx

from tusimple_duc.io.symbol_graph import head_scores_symbol
from tusimple_duc.models.presets import ModelSpec
from tusimple_duc.models.segnet import SegmentationNet

INPUT_NAME = "data"
RESHAPE_NAME = "cls_score_reshape"
LOSS_NAME = "seg_loss"
LABEL_NAME = LOSS_NAME + "_label"
PROBABILITY_NAME = "seg_prob"
DEFAULT_IGNORE_LABEL = 255

Model = Union[SegmentationNet, ModelSpec]


def training_symbol(model: Model, ignore_label: int = DEFAULT_IGNORE_LABEL) -> mx.sym.Symbol:
    """The released training/inference graph of ``model`` (see the module docstring).

    Parameters
    ----------
    model : a ``SegmentationNet`` built from a spec, or the ``ModelSpec`` itself.
    ignore_label : label value excluded from the loss and its normalisation.
    """
    return mx.sym.SoftmaxOutput(data=_flat_scores(model), multi_output=True, normalization="valid",
                                use_ignore=True, ignore_label=ignore_label, name=LOSS_NAME)


def probability_symbol(model: Model) -> mx.sym.Symbol:
    """``softmax(reshape(head_scores, (N, L, -1)), axis=1)``: the values of
    :func:`training_symbol`'s output without its label input. Output ``seg_prob_output``."""
    return mx.sym.softmax(_flat_scores(model), axis=1, name=PROBABILITY_NAME)


def symbol_text(symbol: mx.sym.Symbol) -> str:
    """Deterministic JSON text of a symbol (MXNet's own serialisation)."""
    return symbol.tojson() + "\n"


def model_spec(model: Model) -> ModelSpec:
    """The spec of a network (or the spec itself); TypeError for a network built without one."""
    spec = model if isinstance(model, ModelSpec) else getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"the symbol is built from a ModelSpec; {type(model).__name__} has none")
    return spec


def _flat_scores(model: Model) -> mx.sym.Symbol:
    spec = model_spec(model)
    scores = head_scores_symbol(spec, mx.sym.Variable(name=INPUT_NAME))
    return mx.sym.Reshape(data=scores, shape=(0, spec.num_classes, -1), name=RESHAPE_NAME)
