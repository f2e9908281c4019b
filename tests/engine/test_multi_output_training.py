"""Networks with several outputs (auxiliary loss, multi-scale input), fixed and identity-initialised
parameters in the engine: values derived by hand or with NumPy, never from the code's own output."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import HybridBlock, nn

from tusimple_duc.config import ModelSection
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.loss import resize_label_nearest, weighted_device_objective
from tusimple_duc.engine.network import initialise
from tusimple_duc.engine.schedules import LRSchedule
from tusimple_duc.engine.trainer import SegmentationTrainer
from tusimple_duc.models.decoders.base import EncoderDecoderNet
from tusimple_duc.models.decoders.context import DilationDecoder
from tusimple_duc.models.decoders.fcn import FCNDecoder, bilinear_kernel
from tusimple_duc.models.multi_scale import MultiScaleInput
from tusimple_duc.models.vgg import VGG16Backbone

IGNORE = 255


def softmax_minus_onehot(scores, label):
    """NumPy d CE / d scores per pixel (0 on ignored pixels) and the valid count."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    grad = exp / exp.sum(axis=1, keepdims=True)
    for i, y, x in np.ndindex(*label.shape):
        if label[i, y, x] == IGNORE:
            grad[i, :, y, x] = 0
        else:
            grad[i, int(label[i, y, x]), y, x] -= 1
    return grad, int((label != IGNORE).sum())


def test_auxiliary_output_gets_its_weight_share_of_the_gradient():
    rng = np.random.default_rng(0)
    main, aux = (rng.normal(0, 2, (2, 3, 4, 5)).astype(np.float32) for _ in range(2))
    label = rng.integers(0, 3, (2, 4, 5)).astype(np.float32)
    label[0, 0, :3] = IGNORE
    x_main, x_aux = mx.nd.array(main), mx.nd.array(aux)
    x_main.attach_grad()
    x_aux.attach_grad()
    with autograd.record():
        objective, _, valid = weighted_device_objective((x_main, x_aux), mx.nd.array(label), (1.0, 0.4), IGNORE)
    objective.backward()
    grad_main, count = softmax_minus_onehot(main, label)
    grad_aux, _ = softmax_minus_onehot(aux, label)
    assert valid.asscalar() == count == 37
    np.testing.assert_allclose(x_main.grad.asnumpy(), grad_main / count, atol=1e-6)
    np.testing.assert_allclose(x_aux.grad.asnumpy(), 0.4 * grad_aux / count, atol=1e-6)


def test_label_resize_keeps_corners_and_takes_every_other_row():
    label = np.arange(9 * 5, dtype=np.float32).reshape(1, 9, 5)
    out = resize_label_nearest(mx.nd.array(label), 5, 3).asnumpy()
    np.testing.assert_array_equal(out, label[:, ::2, ::2])          # 9 -> 5 rows: 0, 2, 4, 6, 8
    same = resize_label_nearest(mx.nd.array(label), 9, 5).asnumpy()
    np.testing.assert_array_equal(same, label)


def test_weights_must_match_the_outputs():
    with pytest.raises(ValueError, match="2 score maps but 1 loss weights"):
        weighted_device_objective((mx.nd.zeros((1, 2, 2, 2)),) * 2, mx.nd.zeros((1, 2, 2)), (1.0,), IGNORE)


class IdentityNet(HybridBlock):
    """1x1 conv of one channel, weight 1: ``net(x) = x[:, :1]``."""

    num_classes, prediction_stride, output_stride = 1, 1, 1

    def __init__(self):
        super().__init__(prefix="")
        with self.name_scope():
            self.conv = nn.Conv2D(1, 1, in_channels=3, use_bias=False, prefix="conv_",
                                  weight_initializer=mx.init.Constant(np.array([1.0, 0, 0]).reshape(1, 3, 1, 1)))

    def hybrid_forward(self, F, x):
        return self.conv(x)


def test_multi_scale_input_sizes_and_fusion_on_a_ramp():
    net = MultiScaleInput(IdentityNet(), (1.0, 0.75, 0.5))
    net.initialize()
    rows = np.arange(9, dtype=np.float32)
    ramp = np.broadcast_to((rows[:, None] + 2 * np.arange(13)[None, :])[None, None], (1, 3, 9, 13))
    fused, full, three_quarters, half = net(mx.nd.array(ramp))
    # floor((side - 1) * scale) + 1: 9 -> 7 and 5 rows, 13 -> 10 and 7 columns
    assert full.shape == (1, 1, 9, 13) and three_quarters.shape == (1, 1, 7, 10) and half.shape == (1, 1, 5, 7)
    # a linear ramp stays linear under corner-aligned bilinear resizing: rows 0, 2, 4, 6, 8 at 0.5
    np.testing.assert_allclose(half.asnumpy()[0, 0, :, 0], [0, 2, 4, 6, 8], atol=1e-5)
    np.testing.assert_allclose(fused.asnumpy(), ramp[:, :1], atol=1e-4)
    assert net.loss_weights == (1.0, 1.0, 1.0, 1.0)


def trainer_for(net, lr=0.1, contexts=(mx.cpu(),), class_weights=None):
    model = ModelSection(lr=lr, momentum=0.0, weight_decay=0.0, clip_gradient=0.0)
    schedule = LRSchedule(policy="step", base_lr=lr, updates_per_epoch=1, num_epochs=1, factor=1.0,
                          factor_epoch=1.0, power=1.0)
    return SegmentationTrainer(net, DeviceSetup(list(contexts), "device" if len(contexts) > 1 else None), schedule,
                               model, IGNORE, batch_size=2, class_weights=class_weights)


class TwoHeads(HybridBlock):
    """``x -> (conv_a(x), conv_b(x))`` with loss weights (1, 0.4)."""

    loss_weights = (1.0, 0.4)

    def __init__(self):
        super().__init__(prefix="")
        with self.name_scope():
            self.a = nn.Conv2D(3, 1, in_channels=3, prefix="a_")
            self.b = nn.Conv2D(3, 1, in_channels=3, prefix="b_")

    def hybrid_forward(self, F, x):
        return self.a(x), self.b(x)


def test_trainer_step_on_two_outputs_applies_the_weighted_gradient():
    net = TwoHeads()
    net.initialize(mx.init.Normal(0.5))
    rng = np.random.default_rng(1)
    data = rng.normal(0, 1, (2, 3, 4, 4)).astype(np.float32)
    label = rng.integers(0, 3, (2, 4, 4)).astype(np.float32)
    before = {name: p.data().asnumpy() for name, p in net.collect_params().items()}
    b_scores = net.b(mx.nd.array(data)).asnumpy()
    trainer_for(net).step(data, label)
    grad, count = softmax_minus_onehot(b_scores, label)
    # d/d bias_c of 0.4 * CE / V, then SGD with rescale 1 / batch_size
    expected_bias = before["b_bias"] - 0.1 * 0.4 * grad.sum(axis=(0, 2, 3)) / count / 2
    np.testing.assert_allclose(net.b.bias.data().asnumpy(), expected_bias, atol=1e-6)


def test_class_weights_reach_every_device_and_keep_the_pixel_normalisation():
    contexts = [mx.cpu(0), mx.cpu(1)]
    net = nn.Conv2D(3, 1, in_channels=3, prefix="c_")
    net.initialize(mx.init.Normal(0.5), ctx=contexts)
    rng = np.random.default_rng(2)
    data = rng.normal(0, 1, (2, 3, 4, 4)).astype(np.float32)
    label = rng.integers(0, 3, (2, 4, 4)).astype(np.float32)
    label[1, :2] = IGNORE
    weights = np.array([0.5, 3.0, 1.5], dtype=np.float32)
    before = net.bias.data(contexts[0]).asnumpy()
    scores = net(mx.nd.array(data, ctx=contexts[0])).asnumpy()
    trainer_for(net, contexts=contexts, class_weights=weights).step(data, label)
    # one sample per device: each device's weighted CE gradient / its valid count, summed, / batch 2
    expected = before.copy()
    for i in range(2):
        grad, count = softmax_minus_onehot(scores[i:i + 1], label[i:i + 1])
        pixel_weight = np.where(label[i:i + 1] == IGNORE, 0.0, weights[np.minimum(label[i:i + 1], 2).astype(int)])
        expected -= 0.1 * (grad * pixel_weight[:, None]).sum(axis=(0, 2, 3)) / count / 2
    for context in contexts:
        np.testing.assert_allclose(net.bias.data(context).asnumpy(), expected, atol=1e-6)


def tiny_fcn8s():
    backbone = VGG16Backbone("fcn", width=2, fc_channels=8)
    return EncoderDecoderNet(backbone, FCNDecoder(3, backbone.endpoint_channels, "8s"))


def test_fixed_bilinear_upsampling_survives_initialise_and_a_step():
    net = tiny_fcn8s()
    initialise(net, [mx.cpu()], 0, (1, 3, 32, 32))
    kernel = bilinear_kernel(16)
    upscore8 = net.decoder.upscore8.weight.data().asnumpy()
    for c in range(3):
        np.testing.assert_allclose(upscore8[c, c], kernel)
    assert not upscore8[0, 1].any()
    assert not net.decoder.score_fr.weight.data().asnumpy().any()   # zero-initialised classifier
    rng = np.random.default_rng(2)
    trainer_for(net).step(rng.normal(0, 50, (2, 3, 32, 32)).astype(np.float32),
                          rng.integers(0, 3, (2, 32, 32)).astype(np.float32))
    np.testing.assert_array_equal(net.decoder.upscore8.weight.data().asnumpy(), upscore8)
    assert net.decoder.score_fr.bias.data().asnumpy().any()         # the classifier did learn


def test_context_module_is_the_identity_after_initialise():
    backbone = VGG16Backbone("dilated", width=2, fc_channels=8)
    net = EncoderDecoderNet(backbone, DilationDecoder(4, backbone.endpoint_channels[0], "basic"))
    initialise(net, [mx.cpu()], 0, (1, 3, 24, 24))
    scores = mx.nd.array(np.random.default_rng(3).normal(0, 1, (1, 4, 5, 6)))
    np.testing.assert_allclose(net.decoder.context(scores).asnumpy(),
                               np.maximum(scores.asnumpy(), 0), atol=1e-6)
