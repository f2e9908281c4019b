"""The architecture (a :class:`~tusimple_duc.models.presets.ModelSpec`) read from a ``-symbol.json``.

The file is read with the ``json`` module only, never ``mx.sym.load``: the released
``ResNet_DUC_HDC_CityScapes-symbol.json`` was written by an MXNet 0.11 fork whose BatchNorm
attribute ``fix_linear_trans`` MXNet >= 1.0 rejects. Node attributes are taken from any of the
keys MXNet versions used (``attrs`` in 1.x, ``attr`` / ``param`` in 0.x); a missing attribute
has MXNet's default (stride 1, pad 0, dilate 1, ``no_bias`` False for Convolution and True
for Deconvolution; BatchNorm eps 1e-3, momentum 0.9, ``fix_gamma`` True, ``use_global_stats``
False).

What is read
------------
* stem: ``conv1_1_3x3_s2`` (deep) or ``conv1_7x7_s2`` (classic); its ``num_filter`` is the width;
* blocks per stage: the ``conv{stage}_{block}_3x3`` convolutions (a depth when they match one);
* output stride: 4 x the strides of the first blocks of stages 3 and 4, and where the stride
  sits (1x1 reduce or 3x3);
* dilation schedule: the ``dilate`` of every 3x3 conv, as a named schedule when one gives the
  same rates, otherwise explicit rate lists;
* head: the biased convolutions ``<head_name>_c<i>`` (ASPP branches: count, rates
  ``aspp_stride * (i + 1)``; one branch of rate 1 not summed = no ASPP), ``Deconvolution``
  nodes (deconv head, one or two steps), otherwise ``duc`` with ``C = L * (d / c)^2`` channels
  or ``bilinear`` with ``C = L``; ``L`` is the middle entry of the ``Reshape`` shape
  ``(0, L, -1)`` (``cls_score_reshape``);
* BatchNorm eps, momentum, ``fix_gamma``, ``use_global_stats`` (all BatchNorms must agree).

Limits: a file larger than :data:`MAX_SYMBOL_JSON_BYTES` or nested deeper than
:data:`MAX_SYMBOL_JSON_DEPTH` (a symbol JSON is 5 levels deep; a hostile ``[[[[...]]]]`` would
exhaust Python's recursion) is refused before it is parsed (:func:`parse_symbol_json`).

The spec is then checked: the network it builds must have exactly the file's convolutions and
pooling (names, kernels, strides, paddings, dilations, filters, bias). Anything else is a
:class:`~tusimple_duc.errors.CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from mxnet.gluon import Block, nn

from tusimple_duc.errors import CheckpointError, ConfigError
from tusimple_duc.layout import CELL_WIDTHS
from tusimple_duc.models.hdc import NAMED_SCHEDULES, ScheduleError, base_rates, resolve_schedule
from tusimple_duc.models.heads import matched_deconv_channels
from tusimple_duc.models.presets import ModelSpec, build_model
from tusimple_duc.models.resnet import DEPTH_BLOCKS, STAGES

Pair = Tuple[int, ...]

CONV_OPS: Tuple[str, ...] = ("Convolution", "Deconvolution")
SUM_OPS: Tuple[str, ...] = ("add_n", "ElementWiseSum")
_ATTR_KEYS: Tuple[str, ...] = ("param", "attr", "attrs")
_BLOCK_3X3 = re.compile(r"conv([2-5])_(\d+)_3x3")
_HEAD_BRANCH = re.compile(r"(?P<head>.+)_c(?P<index>\d+)")
#: largest ``-symbol.json`` read, bytes (the ResNet-152 graphs are under 0.5 MB)
MAX_SYMBOL_JSON_BYTES = 64 * 1024 * 1024
#: deepest nesting of ``[`` / ``{`` accepted (MXNet writes 5 levels)
MAX_SYMBOL_JSON_DEPTH = 32
_OPENING, _BRACKETS = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"[{]}", dtype=np.uint8)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BN_DEFAULTS = {"eps": "0.001", "momentum": "0.9", "fix_gamma": "True", "use_global_stats": "False"}


@dataclass(frozen=True)
class LayerRecord:
    """A convolution, transposed convolution or pooling node: what fixes its geometry.

    ``kernel``, ``stride``, ``pad``, ``dilate`` are (y, x) pairs in pixels; ``num_filter`` is 0
    and ``no_bias`` True for pooling, ``convention`` is the pooling's rounding (``valid`` /
    ``full``) and empty for convolutions.
    """

    op: str
    kernel: Pair
    stride: Pair
    pad: Pair
    dilate: Pair
    num_filter: int
    no_bias: bool
    convention: str = ""

    def describe(self) -> str:
        """``kernel 3x3 stride 1 pad 2 dilate 2 filters 256 bias no`` (one line)."""
        parts = [self.op, "kernel " + "x".join(map(str, self.kernel)),
                 "stride " + _pair_text(self.stride), "pad " + _pair_text(self.pad)]
        if self.convention:
            parts.append(f"convention {self.convention}")
        else:
            parts += ["dilate " + _pair_text(self.dilate), f"filters {self.num_filter}",
                      "bias " + ("no" if self.no_bias else "yes")]
        return " ".join(parts)


def _pair_text(pair: Pair) -> str:
    return str(pair[0]) if len(set(pair)) == 1 else ",".join(map(str, pair))


# ---------------------------------------------------------------------------- JSON reading
def read_symbol_json_text(path: str) -> str:
    """The text of a ``-symbol.json`` file, refused unread when it is larger than
    :data:`MAX_SYMBOL_JSON_BYTES`.

    Raises ``CheckpointError`` (too large); ``OSError`` / ``UnicodeDecodeError`` when it cannot
    be read (the callers word those).
    """
    size = os.path.getsize(path)
    if size > MAX_SYMBOL_JSON_BYTES:
        raise CheckpointError(f"{path}: symbol JSON of {size} bytes is larger than the limit of "
                              f"{MAX_SYMBOL_JSON_BYTES} bytes; not a network's symbol file")
    with open(path, "r", encoding="utf-8") as handle:
        return handle.read()


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not
    count); a linear scan without recursion."""
    codes = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    brackets = codes[np.isin(codes, _BRACKETS)]
    steps = np.where(np.isin(brackets, _OPENING), np.int8(1), np.int8(-1))
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def check_symbol_json_limits(text: str, source: str) -> None:
    """Refuse a symbol JSON text larger than :data:`MAX_SYMBOL_JSON_BYTES` characters or nested
    deeper than :data:`MAX_SYMBOL_JSON_DEPTH` (``CheckpointError``, one line naming ``source``)."""
    if len(text) > MAX_SYMBOL_JSON_BYTES:
        raise CheckpointError(f"{source}: symbol JSON of {len(text)} characters is larger than the limit of "
                              f"{MAX_SYMBOL_JSON_BYTES}; not a network's symbol file")
    depth = json_depth(text)
    if depth > MAX_SYMBOL_JSON_DEPTH:
        raise CheckpointError(f"{source}: symbol JSON nested {depth} levels deep, more than the limit of "
                              f"{MAX_SYMBOL_JSON_DEPTH}; not a network's symbol file")


def parse_symbol_json(text: str, source: str) -> Any:
    """``json.loads`` of a symbol JSON text within the limits (:func:`check_symbol_json_limits`);
    ``CheckpointError`` naming ``source`` when it is not valid JSON."""
    check_symbol_json_limits(text, source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{source}: not valid symbol JSON (line {err.lineno}: {err.msg})") from None


def read_graph_nodes(text: str, source: str) -> List[Dict[str, Any]]:
    """The ``nodes`` of a symbol JSON text, each with ``op``, ``name``, ``inputs`` (node indices)
    and ``attrs`` (every attribute key MXNet versions used, merged)."""
    graph = parse_symbol_json(text, source)
    raw = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(raw, list) or not raw:
        raise CheckpointError(f"{source}: not an MXNet symbol JSON (no 'nodes' list)")
    nodes = []
    for index, node in enumerate(raw):
        if not isinstance(node, dict) or not isinstance(node.get("op"), str) \
                or not isinstance(node.get("name"), str):
            raise CheckpointError(f"{source}: node {index} of the symbol JSON has no op or name")
        attrs: Dict[str, str] = {}
        for key in _ATTR_KEYS:
            if isinstance(node.get(key), dict):
                attrs.update({str(k): str(v) for k, v in node[key].items()})
        try:
            inputs = [int(entry[0]) for entry in node.get("inputs", [])]
        except (TypeError, ValueError, IndexError):
            raise CheckpointError(f"{source}: node {node['name']!r} has malformed inputs") from None
        nodes.append({"op": node["op"], "name": node["name"], "attrs": attrs, "inputs": inputs})
    return nodes


def _ints(text: str, node: str, key: str, source: str) -> Pair:
    values = tuple(int(v) for v in re.findall(r"-?\d+", text))
    if not values:
        raise CheckpointError(f"{source}: node {node!r} attribute {key}={text!r} is not a list of integers")
    return values


def _pair(attrs: Mapping[str, str], key: str, default: str, node: str, source: str) -> Pair:
    values = _ints(attrs.get(key, default), node, key, source)
    return values * 2 if len(values) == 1 else values


def _bool(text: str, node: str, key: str, source: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise CheckpointError(f"{source}: node {node!r} attribute {key}={text!r} is not a boolean")


def _float(text: str, node: str, key: str, source: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CheckpointError(f"{source}: node {node!r} attribute {key}={text!r} is not a number") from None


def layer_table(nodes: Sequence[Mapping[str, Any]], source: str) -> Dict[str, LayerRecord]:
    """``{node name: LayerRecord}`` of every convolution, transposed convolution and pooling
    node, in graph order."""
    table: Dict[str, LayerRecord] = {}
    for node in nodes:
        op, name, attrs = node["op"], node["name"], node["attrs"]
        if op not in CONV_OPS + ("Pooling",):
            continue
        if "kernel" not in attrs:
            raise CheckpointError(f"{source}: {op} node {name!r} has no kernel attribute")
        kernel = _pair(attrs, "kernel", "", name, source)
        stride = _pair(attrs, "stride", "(1, 1)", name, source)
        pad = _pair(attrs, "pad", "(0, 0)", name, source)
        if op == "Pooling":
            table[name] = LayerRecord(op, kernel, stride, pad, (1, 1), 0, True,
                                      attrs.get("pooling_convention", "valid"))
            continue
        if "num_filter" not in attrs:
            raise CheckpointError(f"{source}: {op} node {name!r} has no num_filter attribute")
        table[name] = LayerRecord(
            op, kernel, stride, pad, _pair(attrs, "dilate", "(1, 1)", name, source),
            _ints(attrs["num_filter"], name, "num_filter", source)[0],
            _bool(attrs.get("no_bias", str(op == "Deconvolution")), name, "no_bias", source))
    return table


def network_layer_table(net: Block) -> Dict[str, LayerRecord]:
    """``{layer name: LayerRecord}`` of every Conv2D, Conv2DTranspose and MaxPool2D of a Gluon
    network (name = the block prefix without its trailing ``_``, the checkpoint's layer name)."""
    table: Dict[str, LayerRecord] = {}

    def visit(block: Block) -> None:
        name = block.prefix[:-1] if block.prefix.endswith("_") else block.prefix
        kwargs = getattr(block, "_kwargs", {})
        if isinstance(block, (nn.Conv2D, nn.Conv2DTranspose)):
            op = "Deconvolution" if isinstance(block, nn.Conv2DTranspose) else "Convolution"
            table[name] = LayerRecord(op, tuple(kwargs["kernel"]), tuple(kwargs["stride"]),
                                      tuple(kwargs["pad"]), tuple(kwargs["dilate"]),
                                      int(kwargs["num_filter"]), bool(kwargs["no_bias"]))
        elif isinstance(block, nn.MaxPool2D):
            table[name] = LayerRecord("Pooling", tuple(kwargs["kernel"]), tuple(kwargs["stride"]),
                                      tuple(kwargs["pad"]), (1, 1), 0, True,
                                      kwargs["pooling_convention"])
        for child in block._children.values():
            visit(child)

    visit(net)
    return table


def first_layer_difference(expected: Mapping[str, LayerRecord],
                           found: Mapping[str, LayerRecord]) -> Optional[str]:
    """None when both tables agree, else one phrase naming the first differing layer (in
    ``expected``'s order, then layers only in ``found``) and both values."""
    for name, record in expected.items():
        if name not in found:
            return f"layer {name} ({record.describe()}) is missing"
        if found[name] != record:
            return f"layer {name}: {found[name].describe()}, the network has {record.describe()}"
    for name, record in found.items():
        if name not in expected:
            return f"layer {name} ({record.describe()}) is not in the network"
    return None


# ---------------------------------------------------------------------------- spec recovery
def spec_from_symbol_file(path: str) -> ModelSpec:
    """The :class:`ModelSpec` of the network a ``-symbol.json`` file describes.

    Raises
    ------
    CheckpointError : the file cannot be read, is not a symbol JSON, or describes a network
        this project cannot build (the message names the file and the problem).
    """
    try:
        text = read_symbol_json_text(path)
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read the symbol JSON ({err})") from None
    return spec_from_symbol_json(text, path)


def spec_from_symbol_json(text: str, source: str = "<symbol JSON>") -> ModelSpec:
    """:func:`spec_from_symbol_file` on a JSON text; ``source`` names it in errors."""
    nodes = read_graph_nodes(text, source)
    layers = layer_table(nodes, source)
    fields: Dict[str, Any] = {}
    fields.update(_stem_fields(layers, source))
    blocks = _block_counts(layers, source)
    fields.update(_blocks_field(blocks))
    fields.update(_stride_fields(layers, source))
    fields["dilation_schedule"] = _schedule(layers, blocks, fields["output_stride"])
    fields.update(_batchnorm_fields(nodes, source))
    fields.update(_head_fields(nodes, layers, fields, source))
    try:
        spec = ModelSpec(**fields)
    except ConfigError as err:
        raise CheckpointError(f"{source}: the symbol's architecture is not valid here ({err})") from None
    difference = first_layer_difference(network_layer_table(build_model(spec)), layers)
    if difference:
        raise CheckpointError(f"{source}: not a network this project builds: {difference}")
    return spec


def _stem_fields(layers: Mapping[str, LayerRecord], source: str) -> Dict[str, Any]:
    for name, stem in (("conv1_1_3x3_s2", "deep"), ("conv1_7x7_s2", "classic")):
        if name in layers:
            return {"stem": stem, "width": layers[name].num_filter}
    raise CheckpointError(f"{source}: no stem convolution (conv1_1_3x3_s2 or conv1_7x7_s2): "
                          f"not a ResNet-DUC symbol")


def _block_counts(layers: Mapping[str, LayerRecord], source: str) -> Tuple[int, ...]:
    found: Dict[int, List[int]] = {stage: [] for stage in STAGES}
    for name in layers:
        match = _BLOCK_3X3.fullmatch(name)
        if match:
            found[int(match.group(1))].append(int(match.group(2)))
    counts = []
    for stage in STAGES:
        indices = sorted(found[stage])
        if not indices or indices != list(range(1, len(indices) + 1)):
            raise CheckpointError(f"{source}: stage {stage} 3x3 convolutions are numbered "
                                  f"{indices or 'nothing'}, expected conv{stage}_1_3x3 .. conv{stage}_N_3x3")
        counts.append(len(indices))
    return tuple(counts)


def _blocks_field(blocks: Tuple[int, ...]) -> Dict[str, Any]:
    for depth, depth_blocks in DEPTH_BLOCKS.items():
        if depth_blocks == blocks:
            return {"depth": depth}
    return {"blocks_per_stage": blocks}


def _stride_fields(layers: Mapping[str, LayerRecord], source: str) -> Dict[str, Any]:
    strides, stride_in_1x1 = {}, True
    for stage in (3, 4):
        reduce = layers.get(f"conv{stage}_1_1x1_reduce")
        conv3x3 = layers[f"conv{stage}_1_3x3"]
        if reduce is None:
            raise CheckpointError(f"{source}: no conv{stage}_1_1x1_reduce convolution")
        strides[stage] = max(reduce.stride[0], conv3x3.stride[0])
        if conv3x3.stride[0] > 1:
            stride_in_1x1 = False
    return {"output_stride": 4 * strides[3] * strides[4], "stride_in_1x1": stride_in_1x1}


def _schedule(layers: Mapping[str, LayerRecord], blocks: Sequence[int], output_stride: int):
    rates = {stage: tuple(layers[f"conv{stage}_{b + 1}_3x3"].dilate[0] for b in range(count))
             for stage, count in zip(STAGES, blocks)}
    for name in NAMED_SCHEDULES:
        try:
            if resolve_schedule(name, blocks, output_stride) == rates:
                return name
        except ScheduleError:
            continue
    base = base_rates(output_stride)
    explicit = [rates[4], rates[5]]
    if rates[3] != (base[3],) * blocks[1]:
        explicit.insert(0, rates[3])
    return tuple(explicit)


def _batchnorm_fields(nodes: Sequence[Mapping[str, Any]], source: str) -> Dict[str, Any]:
    seen: Optional[Tuple[str, Dict[str, str]]] = None
    for node in nodes:
        if node["op"] != "BatchNorm":
            continue
        values = {key: node["attrs"].get(key, default) for key, default in _BN_DEFAULTS.items()}
        parsed = {"eps": _float(values["eps"], node["name"], "eps", source),
                  "momentum": _float(values["momentum"], node["name"], "momentum", source),
                  "fix_gamma": _bool(values["fix_gamma"], node["name"], "fix_gamma", source),
                  "use_global_stats": _bool(values["use_global_stats"], node["name"],
                                            "use_global_stats", source)}
        if seen is None:
            seen = (node["name"], parsed)
        elif parsed != seen[1]:
            raise CheckpointError(f"{source}: BatchNorm {node['name']} has {parsed}, "
                                  f"{seen[0]} has {seen[1]} (one setting for all is expected)")
    if seen is None:
        raise CheckpointError(f"{source}: no BatchNorm node: not a ResNet-DUC symbol")
    bn = seen[1]
    return {"bn_eps": bn["eps"], "bn_momentum": bn["momentum"], "bn_fix_gamma": bn["fix_gamma"],
            "bn_use_global_stats": bn["use_global_stats"]}


def _num_classes(nodes: Sequence[Mapping[str, Any]], source: str) -> Optional[int]:
    for node in nodes:
        if node["op"] == "Reshape" and "shape" in node["attrs"]:
            shape = _ints(node["attrs"]["shape"], node["name"], "shape", source)
            if len(shape) == 3 and shape[1] > 0:
                return shape[1]
    return None


def _head_fields(nodes: Sequence[Mapping[str, Any]], layers: Mapping[str, LayerRecord],
                 fields: Mapping[str, Any], source: str) -> Dict[str, Any]:
    branches: Dict[int, str] = {}
    heads = set()
    for name, record in layers.items():
        match = _HEAD_BRANCH.fullmatch(name)
        if record.op == "Convolution" and not record.no_bias and match:
            heads.add(match.group("head"))
            branches[int(match.group("index"))] = name
    if len(heads) != 1 or sorted(branches) != list(range(len(branches))):
        raise CheckpointError(f"{source}: expected one head of biased convolutions <name>_c0, "
                              f"<name>_c1, ..., found {sorted(branches.values()) or 'none'}")
    head_name = heads.pop()
    convs = [layers[branches[i]] for i in range(len(branches))]
    channels = convs[0].num_filter
    out: Dict[str, Any] = {"head_name": head_name, **_aspp_fields(nodes, branches, convs)}
    deconvs = [record for name, record in layers.items() if record.op == "Deconvolution"]
    num_classes = _num_classes(nodes, source)
    if deconvs:
        num_classes = num_classes or deconvs[-1].num_filter
        out.update(head="deconv", num_classes=num_classes,
                   deconv_mode="one-step" if len(deconvs) == 1 else "two-step",
                   **_deconv_channels(channels, num_classes, out["aspp"], len(deconvs), fields))
        return out
    if num_classes is None:
        raise CheckpointError(f"{source}: no Reshape (0, L, -1) node: cannot tell the number of classes")
    out["num_classes"] = num_classes
    if channels == num_classes:
        return {**out, "head": "bilinear"}
    ratio = math.isqrt(channels // num_classes)
    stride = fields["output_stride"]
    if channels != num_classes * ratio ** 2 or stride % ratio or stride // ratio not in CELL_WIDTHS:
        raise CheckpointError(f"{source}: the head has {channels} channels, not L * (d/c)^2 for "
                              f"L = {num_classes} classes, d = {stride}, cell width c in {CELL_WIDTHS}")
    return {**out, "head": "duc", "cell_width": stride // ratio}


def _aspp_fields(nodes: Sequence[Mapping[str, Any]], branches: Mapping[int, str],
                 convs: Sequence[LayerRecord]) -> Dict[str, Any]:
    """ASPP count and rate step: a lone rate-1 branch that is not summed is "no ASPP"."""
    index = {node["name"]: i for i, node in enumerate(nodes)}
    branch_ids = {index[name] for name in branches.values()}
    summed = any(node["op"] in SUM_OPS and branch_ids <= set(node["inputs"]) for node in nodes)
    if len(convs) == 1 and convs[0].dilate[0] == 1 and not summed:
        return {"aspp": 0}
    return {"aspp": len(convs), "aspp_stride": convs[0].dilate[0]}


def _deconv_channels(channels: int, num_classes: int, aspp: int, steps: int,
                     fields: Mapping[str, Any]) -> Dict[str, Any]:
    """``cell_width`` whose DUC-matched channel count is ``channels`` (0 = matched), else explicit."""
    in_channels = 32 * fields["width"]
    mode = "one-step" if steps == 1 else "two-step"
    for cell_width in (2, 1, 4):
        if fields["output_stride"] % cell_width == 0 and channels == matched_deconv_channels(
                in_channels, num_classes, fields["output_stride"], cell_width, aspp, mode):
            return {"cell_width": cell_width, "deconv_channels": 0}
    return {"deconv_channels": channels}
