"""Cross-check a checkpoint's ``-symbol.json`` against the Gluon network.

The Gluon network defines the graph; the symbol JSON is only evidence of which
architecture the parameters belong to. It is parsed with ``json`` and ``mx.sym.load_json``;
its parameter arguments and auxiliary states, with shapes inferred for a data input
``(1, 3, S, S)``, are compared with the network's checkpoint keys and shapes.

* parses and matches: nothing to say;
* parses and describes another network: :class:`~tusimple_duc.io.matching.CheckpointMismatchError`;
* does not parse (the released JSON was written by an MXNet 0.11 fork whose BatchNorm
  attribute ``fix_linear_trans`` MXNet >= 1.0 rejects; or a damaged file): a warning naming
  the file and the reason, and the caller goes on from the params file alone.

Inputs (``data`` and ``*_label`` arguments) are not parameters and are ignored.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

import mxnet as mx

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.matching import Shape, compare_shapes, raise_if_mismatch
from tusimple_duc.io.names import ARG_PREFIX, AUX_PREFIX, checkpoint_key
from tusimple_duc.io.paramfile import mxnet_error_reason
from tusimple_duc.io.symbol import INPUT_NAME

log = logging.getLogger(__name__)

PROBE_SIDE = 256  # data side used to infer parameter shapes (any multiple of 16 works)


def network_checkpoint_shapes(net: Any) -> Dict[str, Shape]:
    """``{checkpoint key: shape}`` of every parameter of ``net`` (0 = not yet known)."""
    return {checkpoint_key(name): tuple(param.shape or ())
            for name, param in net.collect_params().items()}


def load_symbol_file(path: str) -> Optional[mx.sym.Symbol]:
    """Parse a symbol JSON; None (after a warning naming the file and why) if it does not parse."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
        json.loads(text)
        return mx.sym.load_json(text)
    except (OSError, UnicodeDecodeError) as err:
        reason = f"cannot be read: {err}"
    except json.JSONDecodeError as err:
        reason = f"is not valid JSON (line {err.lineno}: {err.msg})"
    except mx.base.MXNetError as err:
        reason = f"is rejected by MXNet {mx.__version__} ({mxnet_error_reason(err)})"
    log.warning("%s: symbol JSON %s; the architecture is not cross-checked, loading the "
                "parameters alone", path, reason)
    return None


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
    """Cross-check ``path`` against ``net``. True when checked and matching, False when the
    JSON did not parse (warned); raises ``CheckpointMismatchError`` for another network."""
    symbol = load_symbol_file(path)
    if symbol is None:
        return False
    found = symbol_checkpoint_shapes(symbol, path)
    comparison = compare_shapes(network_checkpoint_shapes(net), found)
    raise_if_mismatch(comparison, path, "symbol describes another network")
    return True


def _known(shape: Optional[Shape]) -> Optional[Shape]:
    """An inferred shape, or None when partial inference left it unknown."""
    return tuple(shape) if shape and all(shape) else None
