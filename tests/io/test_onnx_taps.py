"""The taps rewrite of dilated 3x3 convolutions: exact against the runtimes' own direct
convolution, dynamic sizes kept, only the named and eligible convolutions touched."""
import collections

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from tusimple_duc.io.onnx_graph import ONNX_OPSET
from tusimple_duc.io.onnx_taps import dilated_conv_taps, tap_dilation


def conv_model(dilation=3, stride=1, group=1, pads=None, bias=True, channels=(4, 5), seed=0):
    """x (1, C, H, W) dynamic -> Conv 3x3 -> Relu -> y; weights random."""
    rng = np.random.default_rng(seed)
    c_in, c_out = channels
    weight = rng.normal(0, 1, (c_out, c_in // group, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 1, c_out).astype(np.float32), "b"))
        inputs.append("b")
    pads = [dilation] * 4 if pads is None else pads
    conv = helper.make_node("Conv", inputs, ["c"], kernel_shape=[3, 3], dilations=[dilation, dilation],
                            strides=[stride, stride], pads=pads, group=group)
    relu = helper.make_node("Relu", ["c"], ["y"])
    graph = helper.make_graph([conv, relu], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c_out, "h", "w"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])


def run(model, x):
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]


def numpy_dilated_conv(x, weight, bias, d):
    """Direct definition: y[o, r, c] = b[o] + sum_{k, i, j} w[o, k, i, j] x[k, r + (i - 1) d, c + (j - 1) d]."""
    _, _, height, width = x.shape
    padded = np.pad(x[0].astype(np.float64), ((0, 0), (d, d), (d, d)))
    out = np.zeros((weight.shape[0], height, width)) + bias[:, None, None]
    for o in range(weight.shape[0]):
        for k in range(weight.shape[1]):
            for i in range(3):
                for j in range(3):
                    out[o] += weight[o, k, i, j] * padded[k, i * d:i * d + height, j * d:j * d + width]
    return out[None]


@pytest.mark.parametrize("dilation, size", [(2, (9, 11)), (3, (16, 7)), (6, (13, 20))])
def test_taps_equal_the_direct_convolution_at_any_size(dilation, size):
    model = conv_model(dilation)
    rewritten = dilated_conv_taps(model, ["w"])
    x = np.random.default_rng(1).normal(0, 1, (1, 4) + size).astype(np.float32)
    direct = run(model, x)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    expected = np.maximum(numpy_dilated_conv(x, weights["w"], weights["b"], dilation), 0)
    np.testing.assert_allclose(direct, expected, atol=1e-4)
    np.testing.assert_allclose(run(rewritten, x), direct, atol=1e-5)
    kinds = collections.Counter(node.op_type for node in rewritten.graph.node)
    assert kinds == {"Pad": 1, "Slice": 9, "Conv": 9, "Sum": 1, "Relu": 1}
    convs = [node for node in rewritten.graph.node if node.op_type == "Conv"]
    assert [len(node.input) for node in convs] == [3] + [2] * 8  # the bias once
    assert "w" not in {i.name for i in rewritten.graph.initializer}  # the 3x3 weight is gone


def test_rewrite_without_bias_and_in_openvino():
    import openvino

    model = dilated_conv_taps(conv_model(4, bias=False), ["w"])
    x = np.random.default_rng(2).normal(0, 1, (1, 4, 12, 10)).astype(np.float32)
    compiled = openvino.Core().compile_model(openvino.Core().read_model(model.SerializeToString(), b""), "CPU",
                                             {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(x)[0], run(conv_model(4, bias=False), x), atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(dilation=1), dict(stride=2), dict(group=2), dict(pads=[2, 2, 2, 2])])
def test_other_convolutions_are_not_eligible_and_naming_them_is_an_error(kwargs):
    model = conv_model(**{"dilation": 3, **kwargs})
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert tap_dilation(model.graph.node[0], weights) == 0
    with pytest.raises(ValueError, match="w is not the weight of a dilated 3x3 convolution"):
        dilated_conv_taps(model, ["w"])


def test_unnamed_convolutions_stay_as_they_are():
    model = conv_model(3)
    unchanged = dilated_conv_taps(model, [])
    assert [n.op_type for n in unchanged.graph.node] == ["Conv", "Relu"]
    onnx.checker.check_model(unchanged)
