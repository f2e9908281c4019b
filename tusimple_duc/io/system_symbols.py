"""Symbol JSON of the comparison systems (``models.systems``): ``symbols/systems/<preset>-symbol.json``.

The graph is the network's own forward on input ``data`` (N, 3, H, W) ending in
``SoftmaxOutput(multi_output=True, use_ignore=True, normalization='valid')`` named ``seg_loss``
(label ``seg_loss_label`` (N, h, w) at the prediction stride): the released training graph's
loss on plain ``(N, L, h, w)`` scores, since these systems have no DUC layout. Its output
``seg_loss_output`` is the (N, L, h, w) class probabilities; ``mx.mod.Module(sym,
label_names=['seg_loss_label'])`` runs it for inference (``bind(data_shapes, for_training=False)``)
or trains it like the released script. Variable names are the checkpoint keys without their
``arg:``/``aux:`` prefix (:mod:`tusimple_duc.io.names`: the Gluon parameter names, BatchNorm
statistics ``<bn>_moving_mean|var``), so ``mx.model.load_checkpoint`` of a params file written by
:func:`tusimple_duc.io.checkpoint.save_checkpoint` binds to it directly.
:func:`system_probability_symbol` is the same graph ending in ``softmax(axis=1)`` (no label), the
graph of the ONNX export.
"""
from __future__ import annotations

import os
from typing import Any, List

import mxnet as mx

from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.names import symbol_name
from tusimple_duc.io.symbol import DEFAULT_IGNORE_LABEL, INPUT_NAME, LOSS_NAME, PROBABILITY_NAME, symbol_text
from tusimple_duc.models.systems import SYSTEM_PRESETS, build_system, get_system_spec

SYSTEMS_FOLDER = "systems"


def system_scores_symbol(net: Any) -> mx.sym.Symbol:
    """``net``'s forward on ``data``: (N, L, h, w) scores, variables named as the checkpoint keys."""
    scores = net(mx.sym.var(INPUT_NAME))
    if isinstance(scores, (list, tuple)):
        raise TypeError("the symbol is the inference network's: build it without auxiliary outputs")
    renamed = {name: mx.sym.var(symbol_name(name)) for name in scores.list_auxiliary_states()
               if symbol_name(name) != name}
    return scores(**renamed) if renamed else scores


def system_training_symbol(net: Any, ignore_label: int = DEFAULT_IGNORE_LABEL) -> mx.sym.Symbol:
    """``SoftmaxOutput`` over the classes of ``net``'s (N, L, h, w) scores (module docstring)."""
    return mx.sym.SoftmaxOutput(data=system_scores_symbol(net), multi_output=True, normalization="valid",
                                use_ignore=True, ignore_label=ignore_label, name=LOSS_NAME)


def system_probability_symbol(net: Any) -> mx.sym.Symbol:
    """``softmax(scores, axis=1)``: (N, L, h, w) class probabilities, output ``seg_prob``."""
    return mx.sym.softmax(system_scores_symbol(net), axis=1, name=PROBABILITY_NAME)


def system_symbol_text(name: str, ignore_label: int = DEFAULT_IGNORE_LABEL) -> str:
    """The symbol JSON of system preset ``name`` (deterministic text: the automatic names of the
    unnamed layers and operators, e.g. ``relu0``, ``pooling0``, are counted from zero in a fresh name scope)."""
    with mx.name.NameManager():
        return symbol_text(system_training_symbol(build_system(get_system_spec(name)), ignore_label))


def write_system_symbols(folder: str) -> List[str]:
    """Write ``<folder>/systems/<preset>-symbol.json`` for every system preset; returns the paths."""
    paths = []
    for name in SYSTEM_PRESETS:
        path = os.path.join(folder, SYSTEMS_FOLDER, f"{name}-symbol.json")
        atomic_write_text(path, system_symbol_text(name))
        paths.append(path)
    return paths
