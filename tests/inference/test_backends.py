"""Deployment backends: OpenVINO and ONNX Runtime as the predictor's forward, equal to MXNet."""
import numpy as np
import pytest

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx

from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.backends import OnnxRuntimeForward, OpenVINOForward, check_backend, make_forward
from tusimple_duc.inference.predictor import InferenceSpec, Predictor
from inference_toys import initialised_preset

SPECS = {
    "whole+flip": InferenceSpec(flip=True),
    "sliding+flip": InferenceSpec(mode="sliding", window=(32, 48), stride=(16, 24), flip=True),
}


@pytest.fixture(scope="module")
def tiny():
    return initialised_preset()


@pytest.fixture(scope="module")
def image():
    return np.random.RandomState(3).randint(0, 256, (45, 70, 3)).astype(np.uint8)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("mode", sorted(SPECS))
def test_fp32_backend_equals_mxnet_through_the_predictor(tiny, image, backend, mode):
    reference = Predictor(tiny, SPECS[mode]).probabilities(image)
    forward = make_forward(tiny, backend, "fp32")
    out = Predictor(tiny, SPECS[mode], forward=forward).probabilities(image)
    assert out.shape == reference.shape == (19, 45, 70)
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize("preset", ["tiny_baseline"])
def test_non_duc_head_layout(preset, image):
    net = initialised_preset(preset)
    reference = Predictor(net).probabilities(image)
    out = Predictor(net, forward=OnnxRuntimeForward(net)).probabilities(image)
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-4)


def test_openvino_bf16_argmax_agrees_with_fp32(tiny):
    batch = np.random.RandomState(5).uniform(-120, 120, (2, 3, 64, 96)).astype(np.float32)
    fp32 = OpenVINOForward(tiny, "fp32")(batch)
    bf16 = OpenVINOForward(tiny, "bf16")(batch)
    assert bf16.shape == fp32.shape == (2, 19, 32, 48)
    # OpenVINO runs the bf16 hint in bf16 where its CPU plugin says it can, in f32 elsewhere
    # (e.g. an AMD EPYC of family 23 without AVX512-BF16)
    if "BF16" in OpenVINOForward(tiny, "fp32").core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert not np.array_equal(bf16, fp32)  # another arithmetic really ran
        assert (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.9
    else:
        np.testing.assert_array_equal(bf16, fp32)


def test_openvino_recompiles_for_a_new_shape(tiny):
    forward = OpenVINOForward(tiny)
    for shape in ((1, 3, 32, 32), (2, 3, 48, 64)):
        x = np.random.RandomState(shape[0]).uniform(-120, 120, shape).astype(np.float32)
        expected = mx.nd.softmax(tiny(mx.nd.array(x)), axis=1).asnumpy()
        np.testing.assert_allclose(forward(x), expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("backend, precision, reason", [
    ("onnxruntime", "bf16", "no bf16"),
    ("onnxruntime", "int8-bf16", "no bf16"),
    ("mxnet", "int8-bf16", "FastForward's int8 keeps its other layers fp32"),
])
def test_unavailable_precision_is_one_config_error(backend, precision, reason):
    with pytest.raises(ConfigError, match=f"^\\[inference\\] precision = {precision} is not available with "
                                          f"backend {backend}: .*{reason}") as err:
        check_backend(backend, precision)
    assert "\n" not in str(err.value)


def test_unknown_backend():
    with pytest.raises(ConfigError, match=r"^\[inference\] backend = tensorrt: unknown"):
        check_backend("tensorrt", "fp32")
