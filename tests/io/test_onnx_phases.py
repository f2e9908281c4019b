"""The phases rewrite of dilated 3x3 convolutions (tusimple_duc/io/onnx_phases.py): exact against the
NumPy definition and the runtimes' own direct convolution at sizes that are and are not multiples of
the dilation, batches, dynamic sizes kept, one dense convolution per rewritten one."""
import collections

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tusimple_duc.io.onnx_phases import dilated_conv_phases
from test_onnx_taps import conv_model, numpy_dilated_conv, run


@pytest.mark.parametrize("dilation, size", [(2, (9, 11)), (3, (16, 7)), (6, (13, 20)), (4, (3, 2)), (5, (10, 15))])
def test_phases_equal_the_direct_convolution_at_any_size(dilation, size):
    model = conv_model(dilation)
    rewritten = dilated_conv_phases(model, ["w"])
    x = np.random.default_rng(1).normal(0, 1, (1, 4) + size).astype(np.float32)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    expected = np.maximum(numpy_dilated_conv(x, weights["w"], weights["b"], dilation), 0)
    out = run(rewritten, x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-4)
    np.testing.assert_allclose(out, run(model, x), atol=1e-5)
    kinds = collections.Counter(node.op_type for node in rewritten.graph.node)
    assert kinds["Conv"] == 1 and kinds["SpaceToDepth"] == kinds["DepthToSpace"] == 1
    conv = next(node for node in rewritten.graph.node if node.op_type == "Conv")
    attributes = {a.name: list(a.ints) for a in conv.attribute}
    assert attributes["pads"] == [1, 1, 1, 1] and "dilations" not in attributes


def test_phases_of_a_batch_without_bias_in_both_runtimes():
    import openvino

    model = conv_model(3, bias=False)
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "n"   # a dynamic batch
    rewritten = dilated_conv_phases(model, ["w"])
    x = np.random.default_rng(2).normal(0, 1, (2, 4, 10, 8)).astype(np.float32)
    direct = run(model, x)
    np.testing.assert_allclose(run(rewritten, x), direct, atol=1e-5)
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(rewritten.SerializeToString(), b""), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(x)[0], direct, atol=1e-5)
    onnx.checker.check_model(rewritten, full_check=True)


def test_naming_an_ineligible_convolution_is_an_error():
    with pytest.raises(ValueError, match="^dilated_conv_phases: w is not the weight of a dilated 3x3 convolution"):
        dilated_conv_phases(conv_model(3, stride=2), ["w"])
