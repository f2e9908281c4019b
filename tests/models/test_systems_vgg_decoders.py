"""FCN, SegNet, Dilation (context module) and DeepLab v1 on the VGG-16 variants."""
import tusimple_duc  # noqa: F401  (before mxnet)
import cv2
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from systems_helpers import assert_round_trip, randomize
from tusimple_duc.models.decoders.base import EncoderDecoderNet
from tusimple_duc.models.decoders.context import ContextModule, DilationDecoder
from tusimple_duc.models.decoders.deeplab import LargeFOVDecoder
from tusimple_duc.models.decoders.fcn import CROP_OFFSETS, BilinearUpsampling, FCNDecoder
from tusimple_duc.models.decoders.segnet import SegNetDecoder, max_pool_with_argmax, unpool
from tusimple_duc.models.presets import get_model
from tusimple_duc.models.vgg import VGG16Backbone

X = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (1, 3, 67, 95)))


def _fcn(variant):
    encoder = VGG16Backbone("fcn", width=2, fc_channels=4)
    return EncoderDecoderNet(encoder, FCNDecoder(3, encoder.endpoint_channels, variant))


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_full_resolution_and_round_trip(variant, tmp_path):
    net = _fcn(variant)
    net.initialize()
    randomize(net.decoder)  # zero-initialised scores would make the comparison trivial
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 3, 67, 95) and net.prediction_stride == 1


def _coord_map_offsets():
    """FCN's crop offsets from Caffe's coordinate maps: image coordinate = a * index + b per
    layer; conv/pool (k, s, p): b += a * ((k - 1)/2 - p), a *= s; deconv: inverse."""
    maps = {"image": (1.0, 0.0)}

    def conv(src, dst, k, s, p):
        a, b = maps[src]
        maps[dst] = (a * s, b + a * ((k - 1) / 2 - p))

    def deconv(src, dst, k, s):
        a, b = maps[src]
        maps[dst] = (a / s, b - a * ((k - 1) / 2) / s)

    conv("image", "conv1_1", 3, 1, 100)
    previous = "conv1_1"
    for i in range(1, 6):  # the other 3x3 pad-1 convs do not move the map
        conv(previous, f"pool{i}", 2, 2, 0)
        previous = f"pool{i}"
    conv("pool5", "fc6", 7, 1, 0)
    deconv("fc6", "upscore", 64, 32)
    deconv("fc6", "upscore2", 4, 2)
    deconv("upscore2", "upscore16", 32, 16)
    deconv("upscore2", "upscore_pool4", 4, 2)
    deconv("upscore_pool4", "upscore8", 16, 8)

    def offset(cropped, reference):
        (a, b), (_, b_ref) = maps[cropped], maps[reference]
        return (b_ref - b) / a

    return {"32s": {"score": offset("upscore", "image")},
            "16s": {"score_pool4c": offset("pool4", "upscore2"), "score": offset("upscore16", "image")},
            "8s": {"score_pool4c": offset("pool4", "upscore2"),
                   "score_pool3c": offset("pool3", "upscore_pool4"),
                   "score": offset("upscore8", "image")}}


def test_fcn_crop_offsets_follow_the_coordinate_maps():
    assert _coord_map_offsets() == CROP_OFFSETS


def test_fcn_initialisation():
    net = _fcn("8s")
    net.initialize(mx.init.Xavier())
    net(X)
    params = net.decoder.collect_params()
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert not params[f"{name}_weight"].data().asnumpy().any()
    upscore8 = params["upscore8_weight"]
    assert upscore8.grad_req == "null" and upscore8.shape == (3, 3, 16, 16)
    weight = upscore8.data().asnumpy()
    assert not weight[0, 1].any() and weight[2, 2].max() == pytest.approx((1 - 0.5 / 8) ** 2)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_deconvolution_is_bilinear_upsampling(factor):
    layer = nn.Conv2DTranspose(2, 2 * factor, strides=factor, padding=factor // 2, in_channels=2,
                               use_bias=False, weight_initializer=BilinearUpsampling())
    layer.initialize()
    image = np.random.RandomState(factor).uniform(0, 1, (2, 6, 7)).astype(np.float32)
    out = layer(mx.nd.array(image[None]))[0].asnumpy()
    assert out.shape == (2, 6 * factor, 7 * factor)
    for c in range(2):
        reference = cv2.resize(image[c], (7 * factor, 6 * factor), interpolation=cv2.INTER_LINEAR)
        border = factor  # cv2 replicates the edge, the deconvolution pads with zeros
        np.testing.assert_allclose(out[c, border:-border, border:-border],
                                   reference[border:-border, border:-border], rtol=1e-5, atol=1e-6)


def _numpy_pool_unpool(x, values):
    """2x2/2 ceil max-pool with the first (row-major) argmax, and scatter of ``values``."""
    n, c, h, w = x.shape
    ph, pw = -(-h // 2), -(-w // 2)
    pooled = np.zeros((n, c, ph, pw), np.float32)
    scattered = np.zeros_like(x)
    for i in range(n):
        for j in range(c):
            for y in range(ph):
                for z in range(pw):
                    window = x[i, j, 2 * y:2 * y + 2, 2 * z:2 * z + 2]
                    dy, dx = np.unravel_index(np.argmax(window), window.shape)
                    pooled[i, j, y, z] = window[dy, dx]
                    scattered[i, j, 2 * y + dy, 2 * z + dx] = values[i, j, y, z]
    return pooled, scattered


class _PoolUnpool(mx.gluon.HybridBlock):
    def hybrid_forward(self, F, x, values):
        pooled, switch = max_pool_with_argmax(F, x)
        return pooled, unpool(F, values, switch, x)


@pytest.mark.parametrize("shape", [(2, 3, 7, 9), (1, 2, 8, 6), (1, 1, 1, 5)])
def test_unpooling_with_indices_equals_numpy(shape):
    rng = np.random.RandomState(sum(shape))
    x = rng.randint(-2, 3, shape).astype(np.float32)  # small integers: many ties
    values = rng.normal(0, 1, (shape[0], shape[1], -(-shape[2] // 2), -(-shape[3] // 2)))
    values = values.astype(np.float32)
    pooled_ref, scattered_ref = _numpy_pool_unpool(x, values)
    block = _PoolUnpool()
    for hybrid in (False, True):
        if hybrid:
            block.hybridize()
        pooled, scattered = block(mx.nd.array(x), mx.nd.array(values))
        np.testing.assert_array_equal(pooled.asnumpy(), pooled_ref)
        np.testing.assert_array_equal(scattered.asnumpy(), scattered_ref)


def test_segnet_full_resolution_and_round_trip(tmp_path):
    encoder = VGG16Backbone("segnet", width=2)
    net = EncoderDecoderNet(encoder, SegNetDecoder(3, encoder.endpoint_channels))
    net.initialize()
    randomize(net)
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 3, 67, 95)
    assert "conv5_3_D_bn_gamma" in net.collect_params() and "conv1_1_D_weight" in net.collect_params()


def _segnet_gradients(net, x, weights):
    """Scores and the gradient of ``sum(scores * weights)`` for every parameter (training mode)."""
    with mx.autograd.record():
        scores = net(x)
        loss = (scores * weights).sum()
    loss.backward()
    grads = {name: param.grad().asnumpy().copy() for name, param in net.collect_params().items()
             if param.grad_req != "null"}
    return scores.asnumpy(), grads


@pytest.mark.parametrize("shape", [(2, 3, 13, 17), (1, 3, 45, 67)])
def test_segnet_imperative_backward_equals_hybridized(shape):
    # MXNet 1.9's imperative backward of slice_like crashed (segmentation fault) when no gradient
    # reached its output (the switch path); at 13x17 the unused pool5 failed the forward
    net = get_model("tiny_segnet", num_classes=3)
    net.initialize()
    rng = np.random.RandomState(5)
    x = mx.nd.array(rng.uniform(-1, 1, shape))
    net(x)
    randomize(net)
    weights = mx.nd.array(rng.normal(0, 1, (shape[0], 3) + shape[2:]))
    imperative_scores, imperative = _segnet_gradients(net, x, weights)
    net.hybridize()
    hybrid_scores, hybrid = _segnet_gradients(net, x, weights)
    np.testing.assert_allclose(imperative_scores, hybrid_scores, rtol=1e-4, atol=1e-5)
    assert sorted(imperative) == sorted(hybrid) and "conv1_1_weight" in imperative
    for name, grad in hybrid.items():
        scale = max(np.abs(grad).max(), 1e-6)
        np.testing.assert_allclose(imperative[name], grad, rtol=0, atol=1e-4 * scale, err_msg=name)
    assert np.abs(hybrid["conv1_1_weight"]).max() > 0  # the gradient reaches the encoder's first layer


@pytest.mark.parametrize("variant", ["basic", "large"])
def test_context_module_identity_initialisation(variant):
    module = ContextModule(3, variant, noise_ratio=0.0)
    module.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(1).normal(0, 1, (2, 3, 11, 13)))
    out = module(x).asnumpy()
    np.testing.assert_allclose(out, np.maximum(x.asnumpy(), 0), rtol=1e-5, atol=1e-6)


def test_large_context_noise_breaks_symmetry_only_slightly():
    module = ContextModule(2, "large")
    module.initialize()
    weight = module.layers[0].weight.data().asnumpy()  # (4, 2, 3, 3): centre taps 1/2
    assert weight.shape == (4, 2, 3, 3)
    assert np.count_nonzero(weight) > 8 and np.abs(weight[:, :, 0, 0]).max() < 0.01
    np.testing.assert_allclose(weight[:, :, 1, 1], [[.5, 0], [.5, 0], [0, .5], [0, .5]], atol=0.01)


@pytest.mark.parametrize("context", [None, "basic", "large"])
def test_dilation_system_sizes_and_round_trip(context, tmp_path):
    encoder = VGG16Backbone("dilated", width=2, fc_channels=4)
    net = EncoderDecoderNet(encoder, DilationDecoder(3, encoder.endpoint_channels[-1], context))
    net.initialize(mx.init.Xavier())
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 3, 9, 12) and net.prediction_stride == 8


def test_deeplab_v1_largefov_sizes_and_round_trip(tmp_path):
    encoder = VGG16Backbone("largefov", width=2, fc_channels=4)
    net = EncoderDecoderNet(encoder, LargeFOVDecoder(3, encoder.endpoint_channels[-1]))
    net.initialize(mx.init.Xavier())
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 3, 10, 13)
    assert set(net.decoder.collect_params()) == {"fc8_weight", "fc8_bias"}
