"""test.py's forward for the comparison systems: the deployment backends on their ONNX export,
and a one-line error for the combinations they do not run (test.py end to end on a tiny FCN-8s /
PSPNet checkpoint, mxnet and onnxruntime: tests/engine/test_system_presets_cli.py)."""
import os

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.config import load_test_config
from tusimple_duc.errors import ConfigError
from tusimple_duc.models.presets import get_model
from tusimple_duc.pipelines.segment import select_forward

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "test", "segnet_vgg16.cfg")


def _forward(net, backend, precision):
    config = load_test_config(CONFIG, [f"inference.backend={backend}", f"inference.precision={precision}",
                                       "model.gpu=-1"])
    return select_forward(config, net, [mx.cpu()], [], False)


@pytest.fixture(scope="module")
def segnet():
    net = get_model("tiny_segnet", num_classes=21)
    net.initialize(mx.init.Xavier(magnitude=3))
    net(mx.nd.zeros((1, 3, 32, 32)))
    return net


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_backend_forward_of_a_system_equals_its_gluon_probabilities(segnet, backend):
    batch = np.random.RandomState(0).uniform(-50, 50, (2, 3, 37, 53)).astype(np.float32)
    scores = segnet(mx.nd.array(batch)).asnumpy().astype(np.float64)
    expected = np.exp(scores - scores.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = _forward(segnet, backend, "fp32")(batch)
    assert got.shape == (2, 21, 37, 53)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_mxnet_fp32_is_the_plain_forward(segnet):
    assert _forward(segnet, "mxnet", "fp32") is None


@pytest.mark.parametrize("backend, precision", [("mxnet", "bf16"), ("mxnet", "int8"), ("onnxruntime", "int8"),
                                                ("openvino", "auto")])
def test_other_combinations_are_one_line_errors(segnet, backend, precision):
    with pytest.raises(ConfigError) as raised:
        _forward(segnet, backend, precision)
    message = str(raised.value)
    assert "\n" not in message and "segnet_vgg16.cfg" in message
    assert f"backend = {backend}, precision = {precision}" in message and "openvino bf16" in message


@pytest.mark.parametrize("preset", ["tiny_duc_hdc", "tiny_baseline", "tiny_deconv", "tiny_pspnet", "tiny_unet"])
def test_prediction_layout_of_every_network_kind(preset):
    from tusimple_duc.inference.backends import prediction_layout
    from tusimple_duc.layout import label_to_duc_layout

    net = get_model(preset, num_classes=3)
    height, width = 48, 64
    stride = net.prediction_stride
    maps = np.random.RandomState(3).normal(0, 1, (2, 3, height // stride, width // stride)).astype(np.float32)
    if preset.startswith("tiny_duc"):  # the released layout, written by the layout module's own function
        ratio = net.output_stride // stride
        exported = np.stack([np.stack([label_to_duc_layout(m, ratio) for m in image]) for image in maps])
    elif preset in ("tiny_baseline", "tiny_deconv"):  # row-major flattened map
        exported = maps.reshape(2, 3, -1)
    else:  # a comparison system exports its (N, L, h, w) map itself
        exported = maps
    np.testing.assert_array_equal(prediction_layout(exported, net, (height, width)), maps)
