"""The QDQ int8 quantizer on hand-built ONNX graphs: weights, activation ranges, kept-fp32 convolutions."""
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from tusimple_duc.errors import ConfigError
from tusimple_duc.io.onnx_quantize import quantize_qdq

RNG = np.random.RandomState(7)
# conv "a": 1x1, channel 0 = x0, channel 1 = -x1 (so relu's max is known by hand); conv "b": 3x3 random
WEIGHT_A = np.array([[1, 0, 0], [0, -1, 0]], dtype=np.float32).reshape(2, 3, 1, 1)
WEIGHT_B = RNG.uniform(-0.5, 0.5, (4, 2, 3, 3)).astype(np.float32)
# exact ties of w / scale (channel 0: max 127 -> scale 1): 2.5 -> 2, 3.5 -> 4, -2.5 -> -2 (half to even)
WEIGHT_B[0] = 0.25
WEIGHT_B[0, 0, 0, :] = (127.0, 2.5, 3.5)
WEIGHT_B[0, 0, 1, 0] = -2.5
BIAS_B = np.array([0.5, -1.0, 0.25, 2.0], dtype=np.float32)


def _graph_model():
    """data (N, 3, H, W) -> Conv a (no bias) -> Relu -> Conv b (bias) -> out."""
    nodes = [helper.make_node("Conv", ["data", "a_weight"], ["a"], name="conv_a"),
             helper.make_node("Relu", ["a"], ["a_relu"], name="relu_a"),
             helper.make_node("Conv", ["a_relu", "b_weight", "b_bias"], ["out"], name="conv_b", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 4, "height", "width"])],
        [numpy_helper.from_array(WEIGHT_A, "a_weight"), numpy_helper.from_array(WEIGHT_B, "b_weight"),
         numpy_helper.from_array(BIAS_B, "b_bias")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _calibration():
    """Two images; data min -3 (image 0), max 2 (image 1); relu(a) max = max(x0, -x1) = 2.5."""
    images = RNG.uniform(-1, 1, (2, 3, 4, 5)).astype(np.float32)
    images[0, 2, 0, 0] = -3.0      # data min (channel 2: not read by conv a's outputs)
    images[1, 2, 1, 1] = 2.0       # data max
    images[1, 1, 3, 4] = -2.5      # -> relu(-x1) = 2.5, the relu max
    return images


def _initializers(model):
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _producer(model, tensor):
    return next((node for node in model.graph.node if tensor in node.output), None)


def test_weights_dequantized_equal_a_numpy_per_channel_reference():
    model = quantize_qdq(_graph_model(), _calibration())
    values = _initializers(model)
    dequantize = _producer(model, "b_weight")
    assert dequantize.op_type == "DequantizeLinear"
    assert helper.get_attribute_value(dequantize.attribute[0]) == 0  # axis 0: per output channel
    stored, scale, zero_point = (values[name] for name in dequantize.input)
    assert stored.dtype == np.int8 and zero_point.dtype == np.int8 and not zero_point.any()
    reference_scale = np.abs(WEIGHT_B).max(axis=(1, 2, 3)) / 127.0
    np.testing.assert_allclose(scale, reference_scale, rtol=1e-6)
    reference = np.round(WEIGHT_B / reference_scale[:, None, None, None]) * reference_scale[:, None, None, None]
    np.testing.assert_allclose(stored.astype(np.float64) * scale[:, None, None, None], reference, rtol=1e-6)
    assert list(stored[0, 0, 0]) == [127, 2, 4] and stored[0, 0, 1, 0] == -2  # ties to even
    assert "b_weight" not in values  # the fp32 weight is gone, only its int8 copy is stored


def test_activation_scale_and_zero_point_from_hand_computed_ranges():
    model = quantize_qdq(_graph_model(), _calibration())
    values = _initializers(model)
    conv_a = next(n for n in model.graph.node if n.name == "conv_a")
    conv_b = next(n for n in model.graph.node if n.name == "conv_b")
    for conv, scale, zero_dtype in ((conv_a, 3.0 / 127, np.int8), (conv_b, 2.5 / 255, np.uint8)):
        dequantize = _producer(model, conv.input[0])
        quantize = _producer(model, dequantize.input[0])
        assert (dequantize.op_type, quantize.op_type) == ("DequantizeLinear", "QuantizeLinear")
        assert quantize.input[1:] == dequantize.input[1:]
        assert values[quantize.input[1]] == pytest.approx(scale, rel=1e-6)
        assert values[quantize.input[2]].dtype == zero_dtype and values[quantize.input[2]] == 0
    # the bias is int32 at scale activation scale * weight scale, zero point 0
    bias = _producer(model, "b_bias")
    stored, scale, zero_point = (values[name] for name in bias.input)
    expected_scale = 2.5 / 255 * np.abs(WEIGHT_B).max(axis=(1, 2, 3)) / 127
    assert stored.dtype == np.int32 and not zero_point.any()
    np.testing.assert_allclose(scale, expected_scale, rtol=1e-5)
    np.testing.assert_allclose(stored * scale, BIAS_B, atol=expected_scale.max())


def test_result_is_valid_and_close_to_fp32_in_onnx_runtime():
    model = quantize_qdq(_graph_model(), _calibration())
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    x = _calibration()
    fp32 = onnxruntime.InferenceSession(_graph_model().SerializeToString(), providers=["CPUExecutionProvider"])
    int8 = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected, got = fp32.run(None, {"data": x})[0], int8.run(None, {"data": x})[0]
    assert not np.array_equal(got, expected)
    # bound per output channel c: conv b reads a = relu(conv a(data)) off by at most half a data step
    # (conv a's weights +-1 are exact in int8) plus half a relu step; its 18 taps' weights are off by
    # at most half a weight step each and |a| <= 2.5 + that error
    input_error = 3.0 / 127 / 2 + 2.5 / 255 / 2
    weight_error = np.abs(WEIGHT_B).max(axis=(1, 2, 3)) / 127 / 2
    step = np.abs(WEIGHT_B).sum(axis=(1, 2, 3)) * input_error + 18 * weight_error * (2.5 + input_error)
    assert np.all(np.abs(got - expected) <= step[None, :, None, None] + 1e-5)


def test_kept_fp32_convolution_has_no_qdq():
    model = quantize_qdq(_graph_model(), _calibration(), fp32_weights={"b_weight"})
    conv_b = next(n for n in model.graph.node if n.name == "conv_b")
    assert list(conv_b.input) == ["a_relu", "b_weight", "b_bias"]
    values = _initializers(model)
    np.testing.assert_array_equal(values["b_weight"], WEIGHT_B)
    assert not [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "a_relu"]
    assert _producer(model, "a_weight").op_type == "DequantizeLinear"


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(ConfigError, match="needs calibration inputs") as err:
        quantize_qdq(_graph_model(), np.zeros((0, 3, 4, 5), np.float32))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="nothing to quantize"):
        quantize_qdq(_graph_model(), _calibration(), fp32_weights={"a_weight", "b_weight"})


def test_calibration_tiles_cover_the_image_with_equal_tiles():
    from tusimple_duc.io.onnx_quantize import calibration_tiles

    images = RNG.uniform(-1, 1, (2, 3, 24, 40)).astype(np.float32)
    tiles = calibration_tiles(images, (16, 16), 8)
    # rows: tops 0, 8 (the last tile ends at the edge: 24 - 16); cols: lefts 0, 16, 24
    expected = [images[:, :, t:t + 16, l:l + 16] for t in (0, 8) for l in (0, 16, 24)]
    np.testing.assert_array_equal(tiles, np.concatenate(expected))
    # a tile side rounded down to the stride (20 -> 16), one at least the image's keeps the side whole
    assert calibration_tiles(images, (20, 100), 8).shape == (2 * 2, 3, 16, 40)
    np.testing.assert_array_equal(calibration_tiles(images, (64, 64), 8), images)
    # the ranges of the tiles are the image's (every pixel in a tile): the same quantized model
    model = _graph_model()
    whole = quantize_qdq(model, images)
    tiled = quantize_qdq(model, calibration_tiles(images, (16, 16), 8))
    for name in ("data/scale", "a_relu/scale"):   # the inputs of conv a and conv b
        assert _initializers(whole)[name] == _initializers(tiled)[name]
