"""Output shapes for every head x cell width x output stride; hybridize == imperative."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc import layout
from tusimple_duc.models import get_model

SMALL = dict(blocks_per_stage=(1, 1, 2, 1), width=4, num_classes=3)
CASES = ([("duc", {"cell_width": c}) for c in (1, 2, 4)]
         + [("bilinear", {}), ("deconv", {"deconv_mode": "one-step"}),
            ("deconv", {"deconv_mode": "two-step", "deconv_channels": 6})])


@pytest.mark.parametrize("stride", [4, 8, 16])
@pytest.mark.parametrize("head,extra", CASES)
def test_shapes_and_hybridize(head, extra, stride):
    net = get_model("tiny_duc_hdc", head=head, output_stride=stride, aspp=2, **SMALL, **extra)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    height, width = 2 * 16, 3 * 16
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, height, width))
    s = net.prediction_stride
    expected_s = {"duc": extra.get("cell_width"), "bilinear": stride, "deconv": 1}[head]
    assert s == expected_s and net.output_stride == stride and net.num_classes == 3
    eager = net(x)
    assert eager.shape == (2, 3, height // s, width // s)
    raw = net.head_scores(x)
    if head == "duc":
        r = stride // s
        assert raw.shape == (2, 3 * r * r, height // stride, width // stride)
        np.testing.assert_allclose(
            layout.cells_to_pixels(raw.asnumpy().reshape(2, 3, r * r, *raw.shape[2:]), r),
            eager.asnumpy(), rtol=1e-6, atol=1e-6)
    net.hybridize()
    hybrid = net(x)
    np.testing.assert_allclose(hybrid.asnumpy(), eager.asnumpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.head_scores(x).asnumpy(), raw.asnumpy(), rtol=1e-5, atol=1e-5)


def test_other_input_sizes_after_hybridize():
    net = get_model("tiny_duc_hdc", **SMALL)
    net.initialize()
    net.hybridize()
    for h, w in [(16, 16), (24, 40), (56, 8)]:
        assert net(mx.nd.zeros((1, 3, h, w))).shape == (1, 3, h // 2, w // 2)


def test_predict_full_resolution_probabilities():
    for name in ("tiny_duc_hdc", "tiny_baseline", "tiny_deconv"):
        net = get_model(name, **SMALL)
        net.initialize()
        prob = net.predict(mx.nd.random.uniform(-1, 1, shape=(1, 3, 32, 24)))
        assert prob.shape == (1, 3, 32, 24)
        np.testing.assert_allclose(prob.sum(axis=1).asnumpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("stem", ["deep", "classic"])
def test_released_spatial_sizes(stem):
    """H/d x W/d for sides that are multiples of d (800 -> 100, 880 -> 110, 1024 -> 128)."""
    for stride in (4, 8, 16):
        for stride_in_1x1 in (True, False):
            net = get_model("tiny_duc_hdc", stem=stem, output_stride=stride,
                            stride_in_1x1=stride_in_1x1, **SMALL)
            sym = net.backbone(mx.sym.var("data"))
            for size in (800, 880, 1024, 16 * 7, 16 * 9):
                out = sym.infer_shape(data=(1, 3, size, size + 16))[1][0]
                assert out[2:] == (size // stride, (size + 16) // stride), (stride, size)


def test_deep_stem_pool_is_floor_without_padding():
    net = get_model("tiny_duc_hdc", **SMALL)
    stem = net.backbone.stem(mx.sym.var("data"))
    assert stem.infer_shape(data=(1, 3, 800, 800))[1][0][2:] == (199, 199)
    assert net.backbone.stem.pool._kwargs["pad"] == (0, 0)
    assert net.backbone.stem.pool._kwargs["pooling_convention"] == "valid"
