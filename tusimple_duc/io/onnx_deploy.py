"""The deployment ONNX: the exported graph in pixel layout, carrying its own input contract.

The clean export (:func:`tusimple_duc.io.export.onnx_model`) ends in ``seg_prob`` in the
released layout (N, L, r*r*h*w) that the project's own backends rearrange
(:func:`tusimple_duc.inference.backends.prediction_layout`). A file handed to someone else
must be usable without the project: :func:`deployment_model` appends the rearrangement to the
graph and writes the input contract into ``metadata_props``.

Outputs (``output``):

* ``probabilities``: ``seg_prob`` (N, L, H/s, W/s) float32, the class probabilities at the
  prediction resolution (s: the prediction stride; DUC: s = c, the cell width);
* ``resized``: ``seg_prob`` (N, L, H, W), those probabilities resized to the input size
  (bilinear, half-pixel centres: ``cv2.resize`` ``INTER_LINEAR``, as test.py resizes them);
* ``labels``: ``seg_label`` (N, H, W) int64, the argmax over classes of ``resized``: the
  training id of every pixel (``label_ids`` in the metadata maps it to the dataset's id).

The rearrangement reads h, w from the shape of the head's 4-D scores (the input of the final
``Reshape``), so H and W stay dynamic and no division is added to the graph.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tusimple_duc.errors import ConfigError
from tusimple_duc.io.symbol import INPUT_NAME, PROBABILITY_NAME

#: the ``--onnx-output`` choices, the first the default
DEPLOY_OUTPUTS = ("probabilities", "resized", "labels")
LABEL_NAME = "seg_label"
_PREFIX = "deploy_"


def deployment_model(model: onnx.ModelProto, net: Any, output: str = "probabilities",
                     metadata: Optional[Mapping[str, str]] = None) -> onnx.ModelProto:
    """``model`` (a clean export of ``net``, output ``seg_prob``) with the output ``output``
    (one of :data:`DEPLOY_OUTPUTS`) and ``metadata`` as its ``metadata_props`` (a new model).

    Raises
    ------
    ConfigError : an unknown ``output``.
    """
    check_output(output)
    deployed = onnx.ModelProto()
    deployed.CopyFrom(model)
    graph = deployed.graph
    probabilities = _pixel_layout(graph, net)
    if output != "probabilities":
        probabilities = _resize_to_input(graph, probabilities)
    final, dims = probabilities, ("batch", int(net.num_classes), "out_height", "out_width")
    if output == "resized":
        dims = ("batch", int(net.num_classes), "height", "width")
    if output == "labels":
        final, dims = LABEL_NAME, ("batch", "height", "width")
        graph.node.append(helper.make_node("ArgMax", [probabilities], [final], axis=1, keepdims=0))
    _rename(graph, final, LABEL_NAME if output == "labels" else PROBABILITY_NAME)
    elem_type = onnx.TensorProto.INT64 if output == "labels" else onnx.TensorProto.FLOAT
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(LABEL_NAME if output == "labels" else PROBABILITY_NAME,
                                                      elem_type, list(dims)))
    del deployed.metadata_props[:]
    for key, value in (metadata or {}).items():
        deployed.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(deployed)
    return deployed


def check_output(output: str) -> None:
    """ConfigError unless ``output`` is one of :data:`DEPLOY_OUTPUTS`."""
    if output not in DEPLOY_OUTPUTS:
        raise ConfigError(f"ONNX output {output!r}: expected one of {', '.join(DEPLOY_OUTPUTS)}")


@dataclass(frozen=True)
class DatasetFacts:
    """What a deployment ONNX states of its dataset and input.

    Attributes
    ----------
    dataset : the dataset's name (``cityscapes``, ``kitti``, ``voc``).
    class_names : its training classes in output order.
    label_ids : the dataset's own id of each class (Cityscapes: labelIds; KITTI, VOC: the index).
    rgb_mean : (3,) the mean subtracted from the RGB image, grey levels 0..255.
    """

    dataset: str
    class_names: Tuple[str, ...]
    label_ids: Tuple[int, ...]
    rgb_mean: Tuple[float, float, float]


def deployment_metadata(net: Any, output: str, facts: DatasetFacts) -> Dict[str, str]:
    """The ``metadata_props`` of a deployment ONNX of ``net``: everything needed to feed it and read it.

    Raises
    ------
    ConfigError : the network's class count is not the dataset's.
    """
    if int(net.num_classes) != len(facts.class_names):
        raise ConfigError(f"the network has {int(net.num_classes)} classes, dataset {facts.dataset} has "
                          f"{len(facts.class_names)}: give the dataset the network was trained on")
    stride = int(net.prediction_stride)
    outputs = {"probabilities": f"{PROBABILITY_NAME} (N, L, H/{stride}, W/{stride}) float32 class probabilities",
               "resized": f"{PROBABILITY_NAME} (N, L, H, W) float32 class probabilities",
               "labels": f"{LABEL_NAME} (N, H, W) int64 training id (index into class_names)"}
    return {"input": f"{INPUT_NAME} (N, 3, H, W) float32: x = (rgb - mean) * scale, NCHW, H and W multiples "
                     f"of stride (pad bottom/right with the mean colour, i.e. 0 after the subtraction)",
            "channel_order": "RGB", "layout": "NCHW", "mean": json.dumps([float(v) for v in facts.rgb_mean]),
            "scale": "1.0", "stride": str(int(net.output_stride)), "output": outputs[output],
            "dataset": facts.dataset, "class_names": json.dumps(list(facts.class_names)),
            "label_ids": json.dumps([int(v) for v in facts.label_ids])}


def _pixel_layout(graph: onnx.GraphProto, net: Any) -> str:
    """Append nodes turning ``seg_prob`` (N, L, P) into (N, L, H/s, W/s) (a 4-D ``seg_prob`` is kept);
    returns their output name."""
    flat_name = _PREFIX + "flat_prob"
    _rename(graph, PROBABILITY_NAME, flat_name)
    output_rank = len(next(o for o in graph.output if o.name == PROBABILITY_NAME).type.tensor_type.shape.dim)
    if output_rank == 4:  # a comparison system's export: already (N, L, h, w)
        graph.node.append(helper.make_node("Identity", [flat_name], [_PREFIX + "prob_map"]))
        return _PREFIX + "prob_map"
    producer = {out: node for node in graph.node for out in node.output}
    scores = producer[producer[flat_name].input[0]].input[0]  # Reshape(scores) -> Softmax
    classes = int(net.num_classes)
    ratio = int(net.output_stride) // int(net.prediction_stride)
    nodes = [helper.make_node("Shape", [scores], [_PREFIX + "score_shape"]),
             helper.make_node("Slice", [_PREFIX + "score_shape", _const(graph, "2", [2]), _const(graph, "4", [4])],
                              [_PREFIX + "hw"])]
    if getattr(net.head, "kind", None) == "duc" and ratio > 1:
        # (N, L, r*r*h*w) -> (N, L, r, r, h, w) -> (N, L, h, r, w, r) -> (N, L, h*r, w*r)
        nodes += [
            helper.make_node("Concat", [_const(graph, "n_l_r_r", [0, classes, ratio, ratio]), _PREFIX + "hw"],
                             [_PREFIX + "cells_shape"], axis=0),
            helper.make_node("Reshape", [flat_name, _PREFIX + "cells_shape"], [_PREFIX + "cells"]),
            helper.make_node("Transpose", [_PREFIX + "cells"], [_PREFIX + "blocks"], perm=[0, 1, 4, 2, 5, 3]),
            helper.make_node("Mul", [_PREFIX + "hw", _const(graph, "r_r", [ratio, ratio])], [_PREFIX + "pixels_hw"]),
        ]
        source = _PREFIX + "blocks"
    else:
        nodes.append(helper.make_node("Identity", [_PREFIX + "hw"], [_PREFIX + "pixels_hw"]))
        source = flat_name
    nodes += [helper.make_node("Concat", [_const(graph, "n_l", [0, classes]), _PREFIX + "pixels_hw"],
                               [_PREFIX + "map_shape"], axis=0),
              helper.make_node("Reshape", [source, _PREFIX + "map_shape"], [_PREFIX + "prob_map"])]
    graph.node.extend(nodes)
    return _PREFIX + "prob_map"


def _resize_to_input(graph: onnx.GraphProto, probabilities: str) -> str:
    """Append a bilinear (half-pixel) Resize of ``probabilities`` to the input's H, W."""
    nodes = [helper.make_node("Shape", [INPUT_NAME], [_PREFIX + "input_shape"]),
             helper.make_node("Slice", [_PREFIX + "input_shape", _const(graph, "2", [2]), _const(graph, "4", [4])],
                              [_PREFIX + "input_hw"]),
             helper.make_node("Shape", [probabilities], [_PREFIX + "map_dims"]),
             helper.make_node("Slice", [_PREFIX + "map_dims", _const(graph, "0", [0]), _const(graph, "2", [2])],
                              [_PREFIX + "n_l_dims"]),
             helper.make_node("Concat", [_PREFIX + "n_l_dims", _PREFIX + "input_hw"], [_PREFIX + "sizes"], axis=0),
             helper.make_node("Resize", [probabilities, "", "", _PREFIX + "sizes"], [_PREFIX + "prob_resized"],
                              mode="linear", coordinate_transformation_mode="half_pixel")]
    graph.node.extend(nodes)
    return _PREFIX + "prob_resized"


def _const(graph: onnx.GraphProto, name: str, values: list) -> str:
    """An int64 initializer ``deploy_<name>`` (added once); returns its name."""
    full = _PREFIX + "c_" + name
    if full not in {init.name for init in graph.initializer}:
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), full))
    return full


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` wherever a node produces or reads it."""
    for node in graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
