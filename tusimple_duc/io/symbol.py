"""The released-layout MXNet symbol of any :class:`~tusimple_duc.models.segnet.SegmentationNet`.

The released ``ResNet_DUC_HDC_CityScapes-symbol.json`` ends in::

    head (N, L*r*r, h, w) -> Reshape(shape=(0, L, -1), name='cls_score_reshape')
        -> SoftmaxOutput(multi_output=True, use_ignore=True, ignore_label=255,
                         normalization='valid', name='seg_loss')      # label 'seg_loss_label'

:func:`training_symbol` builds that graph from the Gluon network itself (the network is
traced with ``net.head_scores(mx.sym.var('data'))``, so every preset, depth and head is
covered by the one definition of the architecture), then renames it to the released
conventions:

* variables: the checkpoint names of :mod:`tusimple_duc.io.names` (BatchNorm statistics
  ``<bn>_moving_mean`` / ``<bn>_moving_var``, as the released aux states);
* operator nodes: Gluon's ``<layer>_fwd`` becomes ``<layer>``, so the convolution and
  BatchNorm nodes carry the released node names (``conv5_3_1x1_increase``,
  ``conv5_3_1x1_increase/bn``); ReLU and sum nodes keep MXNet's automatic names
  (``relu12``, ``_plus3``), which differ from the released ``*/relu`` and ``res*`` names.

Inputs are ``data`` (N, 3, H, W) and ``seg_loss_label`` (N, r*r*h*w) (the released
flattened DUC layout; for the bilinear and deconv heads the row-major flattened label map
at the prediction resolution); the output ``seg_loss_output`` is (N, L, r*r*h*w) softmax
probabilities. :func:`probability_symbol` is the same graph ending in ``softmax(axis=1)``
instead of ``SoftmaxOutput`` (no label input), for ONNX.

Automatic node names come from a fresh ``mx.name.NameManager``, so the JSON text of a
network is deterministic.
"""
from __future__ import annotations

import json
from typing import Any, Dict

import mxnet as mx

from tusimple_duc.io.names import symbol_name

INPUT_NAME = "data"
RESHAPE_NAME = "cls_score_reshape"
LOSS_NAME = "seg_loss"
LABEL_NAME = LOSS_NAME + "_label"
OUTPUT_NAME = LOSS_NAME + "_output"
PROBABILITY_NAME = "seg_prob"
DEFAULT_IGNORE_LABEL = 255

_GLUON_OP_SUFFIX = "_fwd"


def training_symbol(net: Any, ignore_label: int = DEFAULT_IGNORE_LABEL) -> mx.sym.Symbol:
    """The released training/inference graph of ``net`` (see the module docstring).

    Parameters
    ----------
    net : a ``SegmentationNet`` (``head_scores``, ``num_classes``).
    ignore_label : label value excluded from the loss and its normalisation.
    """
    with mx.name.NameManager():
        flat = _flat_scores(net)
        out = mx.sym.SoftmaxOutput(flat, multi_output=True, use_ignore=True,
                                   ignore_label=ignore_label, normalization="valid",
                                   name=LOSS_NAME)
    return _released_names(out)


def probability_symbol(net: Any) -> mx.sym.Symbol:
    """``softmax(reshape(head_scores, (N, L, -1)), axis=1)``: the values of
    :func:`training_symbol`'s output without its label input. Output ``seg_prob_output``."""
    with mx.name.NameManager():
        out = mx.sym.softmax(_flat_scores(net), axis=1, name=PROBABILITY_NAME)
    return _released_names(out)


def symbol_text(symbol: mx.sym.Symbol) -> str:
    """Deterministic JSON text of a symbol (MXNet's own serialisation)."""
    return symbol.tojson() + "\n"


def _flat_scores(net: Any) -> mx.sym.Symbol:
    scores = net.head_scores(mx.sym.var(INPUT_NAME))
    return mx.sym.Reshape(scores, shape=(0, net.num_classes, -1), name=RESHAPE_NAME)


def _released_names(symbol: mx.sym.Symbol) -> mx.sym.Symbol:
    """Rename variables to checkpoint names and strip Gluon's ``_fwd`` from op nodes."""
    graph: Dict[str, Any] = json.loads(symbol.tojson())
    nodes = graph["nodes"]
    taken = {node["name"] for node in nodes}
    for node in nodes:
        name = node["name"]
        if node["op"] == "null":
            node["name"] = symbol_name(name)
        elif name.endswith(_GLUON_OP_SUFFIX):
            stripped = name[: -len(_GLUON_OP_SUFFIX)]
            if stripped not in taken:
                node["name"] = stripped
                taken.add(stripped)
    return mx.sym.load_json(json.dumps(graph))
