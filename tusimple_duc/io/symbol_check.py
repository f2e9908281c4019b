"""Cross-check a checkpoint's ``-symbol.json`` against the Gluon network.

The Gluon network defines the graph; the symbol JSON is evidence of which architecture
the parameters belong to. Two comparisons:

1. parameter names and shapes: the JSON parsed by ``mx.sym.load_json``, its parameter
   arguments and auxiliary states with shapes inferred for a data input ``(1, 3, S, S)``,
   against the network's checkpoint keys and shapes;
2. geometry, read with the ``json`` module alone
   (:func:`~tusimple_duc.io.symbol_spec.layer_table`): kernel, stride, padding, dilation,
   filters and bias of every convolution and transposed convolution, and the pooling,
   against the network's layers. Names and shapes cannot tell a wrong dilation schedule
   (a test config with another schedule would otherwise run silently on the weights).

* both match: nothing to say;
* either differs: one :class:`~tusimple_duc.io.matching.CheckpointMismatchError` line
  naming the file (and, for the geometry, the first differing layer and both values);
* MXNet rejects the JSON (the released JSON was written by an MXNet 0.11 fork whose
  BatchNorm attribute ``fix_linear_trans`` MXNet >= 1.0 rejects): the geometry is still
  compared, then a warning says the shapes were not inferred and the caller goes on;
* not a readable symbol JSON at all (a damaged file): a warning naming the file and the
  reason, and the caller goes on from the params file alone;
* larger or deeper than the limits of :mod:`~tusimple_duc.io.symbol_spec` (a hostile file):
  ``CheckpointError``, one line.

Inputs (``data`` and ``*_label`` arguments) are not parameters and are ignored.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

import mxnet as mx

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.matching import (CheckpointMismatchError, Comparison, Shape, compare_shapes,
                                      raise_if_mismatch)
from tusimple_duc.io.names import ARG_PREFIX, AUX_PREFIX, checkpoint_key
from tusimple_duc.io.paramfile import mxnet_error_reason
from tusimple_duc.io.symbol import INPUT_NAME
from tusimple_duc.io.symbol_spec import (check_symbol_json_limits, first_layer_difference, layer_table,
                                         network_layer_table, read_graph_nodes, read_symbol_json_text)
from tusimple_duc.models.systems import SystemSpec

log = logging.getLogger(__name__)

PROBE_SIDE = 256  # data side used to infer parameter shapes (any multiple of 16 works)


def network_checkpoint_shapes(net: Any) -> Dict[str, Shape]:
    """``{checkpoint key: shape}`` of every parameter of ``net`` (0 = not yet known)."""
    return {checkpoint_key(name): tuple(param.shape or ())
            for name, param in net.collect_params().items()}


def read_symbol_text(path: str) -> Optional[str]:
    """The text of a symbol JSON file; None (after a warning naming the file and why) when it
    cannot be read or is not JSON."""
    try:
        text = read_symbol_json_text(path)
        check_symbol_json_limits(text, path)
        json.loads(text)
        return text
    except (OSError, UnicodeDecodeError) as err:
        reason = f"cannot be read: {err}"
    except json.JSONDecodeError as err:
        reason = f"is not valid JSON (line {err.lineno}: {err.msg})"
    _warn_unchecked(path, reason)
    return None


def _mxnet_symbol(text: str, path: str) -> Optional[mx.sym.Symbol]:
    try:
        return mx.sym.load_json(text)
    except mx.base.MXNetError as err:
        _warn_unchecked(path, f"is rejected by MXNet {mx.__version__} ({mxnet_error_reason(err)})",
                        "layer geometry compared from the JSON, parameter shapes not inferred")
    return None


def _warn_unchecked(path: str, reason: str,
                    consequence: str = "the architecture is not cross-checked") -> None:
    log.warning("%s: symbol JSON %s; %s, loading the parameters alone", path, reason, consequence)


def symbol_checkpoint_shapes(symbol: mx.sym.Symbol, path: str) -> Dict[str, Optional[Shape]]:
    """``{arg:/aux: key: shape}`` of a symbol's parameters, shapes inferred for data (1, 3, S, S)
    (None where inference could not tell)."""
    try:
        arg_shapes, _, aux_shapes = symbol.infer_shape_partial(
            **{INPUT_NAME: (1, 3, PROBE_SIDE, PROBE_SIDE)})
    except mx.base.MXNetError as err:
        raise CheckpointError(f"{path}: symbol does not accept a 3-channel input named "
                              f"'{INPUT_NAME}' ({mxnet_error_reason(err)})") from None
    shapes = {}
    for name, shape in zip(symbol.list_arguments(), arg_shapes or []):
        if name != INPUT_NAME and not name.endswith("_label"):
            shapes[ARG_PREFIX + name] = _known(shape)
    for name, shape in zip(symbol.list_auxiliary_states(), aux_shapes or []):
        shapes[AUX_PREFIX + name] = _known(shape)
    return shapes


def check_symbol_file(net: Any, path: str) -> bool:
    """Cross-check ``path`` against ``net`` (module docstring). True when MXNet parsed it and
    everything matched, False when it was not (fully) checked (warned); raises
    ``CheckpointMismatchError`` when it describes another network."""
    text = read_symbol_text(path)
    if text is None:
        return False
    try:
        found_layers = layer_table(read_graph_nodes(text, path), path)
    except CheckpointError as err:
        _warn_unchecked(path, f"is not a symbol graph ({err})")
        return False
    symbol = _mxnet_symbol(text, path)
    if symbol is not None:
        comparison = compare_shapes(network_checkpoint_shapes(net), symbol_checkpoint_shapes(symbol, path))
        raise_if_mismatch(comparison, path, "symbol describes another network")
    if isinstance(getattr(net, "spec", None), SystemSpec):
        # a comparison system's graph is Gluon's trace (nodes ``conv1_1_fwd``, ``pooling0``), not
        # named by layer: its parameter names and shapes are the check
        return symbol is not None
    difference = first_layer_difference(network_layer_table(net), found_layers)
    if difference:
        raise CheckpointMismatchError(f"{path}: symbol describes another network: {difference}",
                                      path, Comparison())
    return symbol is not None


def _known(shape: Optional[Shape]) -> Optional[Shape]:
    """An inferred shape, or None when partial inference left it unknown."""
    return tuple(shape) if shape and all(shape) else None
