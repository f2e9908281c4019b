"""ONNX translations for the two MXNet operators of the comparison systems that mx2onnx 1.9.1
cannot convert with dynamic input sizes.

* ``_contrib_BilinearResize2D`` with ``mode='like'`` (RefineNet's multi-resolution fusion,
  PSPNet's pyramid levels): mx2onnx converts only fixed ``height``/``width`` or scales. Here:
  ONNX ``Resize`` (linear) to the sizes ``Shape(data)[:2] ++ Shape(like)[2:]``, coordinate
  transformation ``align_corners`` or, for ``align_corners=False``, ``half_pixel`` (MXNet's
  half-pixel centres; both clamp the source coordinate at the border, no antialiasing).
* ``_contrib_AdaptiveAvgPooling2D`` with an output size other than 1 (PSPNet's bins 2, 3, 6):
  mx2onnx converts only the global pooling. Adaptive average pooling to ``b`` bins along an
  axis of length ``n`` averages the elements ``[floor(i*n/b), ceil((i+1)*n/b))`` of bin ``i``
  (MXNet's ``START_IND``/``END_IND``); that is a product with the ``(b, n)`` matrix ``M[i, y] =
  [start_i <= y < end_i] / (end_i - start_i)``, built in the graph from ``Shape(data)``:
  ``out = M_h @ x @ M_w^T``, ``(N, C, h, w) -> (N, C, b_h, b_w)``. Exact up to float32
  rounding of the sum (a weighted sum instead of a sum divided by the count).

:func:`system_converters` installs these translations in mx2onnx's registry for the duration
of an export and restores the previous ones (every other use of the operators is delegated to
mx2onnx's own translation, so the DUC networks' exports are unchanged).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np
from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
from mxnet.onnx.mx2onnx._op_translations._op_translations_opset12 import get_inputs
from onnx import NodeProto, TensorProto, helper, numpy_helper

#: the registry key the translations are installed under: the opset the export declares
#: (:data:`tusimple_duc.io.onnx_graph.ONNX_OPSET`); mx2onnx looks from the newest opset down.
TRANSLATION_OPSET = 13
RESIZE_OP = "_contrib_BilinearResize2D"
ADAPTIVE_POOL_OP = "_contrib_AdaptiveAvgPooling2D"


def _constant(kwargs: Dict[str, Any], name: str, value: np.ndarray) -> str:
    kwargs["initializer"].append(numpy_helper.from_array(np.asarray(value), name))
    return name


def _original(op: str) -> Callable:
    for opset in range(TRANSLATION_OPSET, 11, -1):
        found = MXNetGraph.registry_.get(opset, {}).get(op)
        if found is not None:
            return found
    raise KeyError(op)


def _bool_attribute(text: Any) -> bool:
    return str(text).strip().lower() in ("true", "1")


def convert_bilinear_resize_like(node: Dict[str, Any], **kwargs: Any) -> List[NodeProto]:
    """``BilinearResize2D(data, like, mode='like')`` as a dynamic ``Resize``; any other mode by
    mx2onnx's own translation."""
    name, inputs, attrs = get_inputs(node, kwargs)
    if attrs.get("mode", "size") != "like":
        return _original_resize(node, **kwargs)
    transform = "align_corners" if _bool_attribute(attrs.get("align_corners", "True")) else "half_pixel"
    starts, middle, ends = (_constant(kwargs, f"{name}_{tag}", np.array([v], np.int64))
                            for tag, v in (("0", 0), ("2", 2), ("4", 4)))
    roi = _constant(kwargs, f"{name}_roi", np.zeros(0, np.float32))
    scales = _constant(kwargs, f"{name}_scales", np.zeros(0, np.float32))
    return [
        helper.make_node("Shape", [inputs[0]], [f"{name}_data_shape"]),
        helper.make_node("Shape", [inputs[1]], [f"{name}_like_shape"]),
        helper.make_node("Slice", [f"{name}_data_shape", starts, middle], [f"{name}_nc"]),
        helper.make_node("Slice", [f"{name}_like_shape", middle, ends], [f"{name}_hw"]),
        helper.make_node("Concat", [f"{name}_nc", f"{name}_hw"], [f"{name}_sizes"], axis=0),
        helper.make_node("Resize", [inputs[0], roi, scales, f"{name}_sizes"], [name], name=name,
                         mode="linear", coordinate_transformation_mode=transform),
    ]


def _bin_matrix(kwargs: Dict[str, Any], name: str, data: str, axis: int, bins: int) -> Tuple[str, List[NodeProto]]:
    """Nodes computing the ``(bins, n)`` averaging matrix of axis ``axis`` of ``data``."""
    index = np.arange(bins, dtype=np.int64).reshape(bins, 1)
    first, last = _constant(kwargs, f"{name}_i", index), _constant(kwargs, f"{name}_i1", index + 1)
    count, spill = _constant(kwargs, f"{name}_b", np.array(bins, np.int64)), _constant(
        kwargs, f"{name}_b1", np.array(bins - 1, np.int64))
    at, after = _constant(kwargs, f"{name}_at", np.array([axis], np.int64)), _constant(
        kwargs, f"{name}_after", np.array([axis + 1], np.int64))
    zero, one = _constant(kwargs, f"{name}_zero", np.array(0, np.int64)), _constant(
        kwargs, f"{name}_one", np.array(1, np.int64))
    row_axis = _constant(kwargs, f"{name}_row_axis", np.array([0], np.int64))
    make = helper.make_node
    nodes = [
        make("Shape", [data], [f"{name}_shape"]),
        make("Slice", [f"{name}_shape", at, after], [f"{name}_n1"]),                 # (1,)
        make("Squeeze", [f"{name}_n1"], [f"{name}_n"]),                              # ()
        make("Range", [zero, f"{name}_n", one], [f"{name}_y"]),                      # (n,)
        make("Unsqueeze", [f"{name}_y", row_axis], [f"{name}_row"]),                 # (1, n)
        make("Mul", [first, f"{name}_n"], [f"{name}_start_num"]),
        make("Div", [f"{name}_start_num", count], [f"{name}_start"]),                # (b, 1) floor
        make("Mul", [last, f"{name}_n"], [f"{name}_end_num"]),
        make("Add", [f"{name}_end_num", spill], [f"{name}_end_ceil"]),
        make("Div", [f"{name}_end_ceil", count], [f"{name}_end"]),                   # (b, 1) ceil
        make("GreaterOrEqual", [f"{name}_row", f"{name}_start"], [f"{name}_from"]),
        make("Less", [f"{name}_row", f"{name}_end"], [f"{name}_to"]),
        make("And", [f"{name}_from", f"{name}_to"], [f"{name}_inside"]),              # (b, n)
        make("Cast", [f"{name}_inside"], [f"{name}_mask"], to=TensorProto.FLOAT),
        make("Sub", [f"{name}_end", f"{name}_start"], [f"{name}_width"]),
        make("Cast", [f"{name}_width"], [f"{name}_count"], to=TensorProto.FLOAT),
        make("Div", [f"{name}_mask", f"{name}_count"], [f"{name}_matrix"]),           # (b, n)
    ]
    return f"{name}_matrix", nodes


def _output_size(text: Any) -> Tuple[int, int]:
    values = [int(v) for v in str(text).strip("()[] ").replace(",", " ").split()] or [1]
    return (values[0], values[-1])


def convert_adaptive_avg_pool(node: Dict[str, Any], **kwargs: Any) -> List[NodeProto]:
    """``AdaptiveAvgPooling2D`` to any output size as two matrix products (module docstring);
    the global pooling by mx2onnx's own translation."""
    name, inputs, attrs = get_inputs(node, kwargs)
    bins_h, bins_w = _output_size(attrs.get("output_size", "1"))
    if (bins_h, bins_w) == (1, 1):
        return _original_pool(node, **kwargs)
    rows, row_nodes = _bin_matrix(kwargs, f"{name}_h", inputs[0], 2, bins_h)
    cols, col_nodes = _bin_matrix(kwargs, f"{name}_w", inputs[0], 3, bins_w)
    return row_nodes + col_nodes + [
        helper.make_node("Transpose", [cols], [f"{name}_cols_t"], perm=[1, 0]),       # (w, b_w)
        helper.make_node("MatMul", [inputs[0], f"{name}_cols_t"], [f"{name}_pooled_w"]),
        helper.make_node("MatMul", [rows, f"{name}_pooled_w"], [name], name=name),
    ]


_original_resize: Callable = _original(RESIZE_OP)
_original_pool: Callable = _original(ADAPTIVE_POOL_OP)
SYSTEM_TRANSLATIONS: Dict[str, Callable] = {RESIZE_OP: convert_bilinear_resize_like,
                                            ADAPTIVE_POOL_OP: convert_adaptive_avg_pool}


@contextlib.contextmanager
def system_converters(ops: Sequence[str] = tuple(SYSTEM_TRANSLATIONS)) -> Iterator[None]:
    """Install :data:`SYSTEM_TRANSLATIONS` (those of ``ops``) in mx2onnx's registry for the
    duration of the ``with`` block, then restore the previous entries."""
    table = MXNetGraph.registry_.setdefault(TRANSLATION_OPSET, {})
    saved = {op: table.get(op) for op in ops}
    table.update({op: SYSTEM_TRANSLATIONS[op] for op in ops})
    try:
        yield
    finally:
        for op, previous in saved.items():
            if previous is None:
                table.pop(op, None)
            else:
                table[op] = previous
