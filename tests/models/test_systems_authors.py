"""PSPNet, RefineNet and Dilation10 against facts transcribed from their authors' released files:
hszhao/PSPNet evaluation/prototxt/pspnet101_cityscapes_713.prototxt, guosheng/refinenet
main/gen_net_opts_model_type1.m (chained_pool_num = 4), fyu/dilation
models/dilation10_cityscapes_deploy.prototxt; and GluonCV's dilated ResNetV1s."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

from systems_helpers import import_gluoncv
from tusimple_duc.models.hdc import resolve_schedule
from tusimple_duc.models.segnet import count_parameters
from tusimple_duc.models.systems import PUBLISHED, build_system, get_system_spec

R101 = (3, 4, 23, 3)


def _conv(block):
    """(channels, kernel, stride, pad, dilation) of a ConvBN / Conv2D."""
    conv = getattr(block, "conv", block)
    k = conv._kwargs
    return conv._channels, k["kernel"][0], k["stride"][0], k["pad"][0], k["dilate"][0]


def test_pspnet_resnet101_is_the_authors_prototxt():
    net = build_system(get_system_spec("pspnet_resnet101"))
    backbone = net.encoder.backbone
    # conv1_1_3x3_s2 64 pad 1 stride 2, conv1_2_3x3 64, conv1_3_3x3 128; pool1_3x3_s2 pad 1
    assert [_conv(c) for c in backbone.stem.convs] == [(64, 3, 2, 1, 1), (64, 3, 1, 1, 1), (128, 3, 1, 1, 1)]
    assert backbone.stem.pool._kwargs["pad"] == (1, 1) and backbone.stem.pool._kwargs["kernel"] == (3, 3)
    first3 = backbone.stage3[0]  # conv3_1: stride 2 on the 3x3 and the projection, not the reduce
    assert [_conv(first3.reduce), _conv(first3.conv3x3), _conv(first3.proj)] == [
        (128, 1, 1, 0, 1), (128, 3, 2, 1, 1), (512, 1, 2, 0, 1)]
    # conv4_k_3x3 pad 2 dilation 2 and conv5_k_3x3 pad 4 dilation 4 for every block k
    assert {_conv(b.conv3x3) for b in backbone.stage4} == {(256, 3, 1, 2, 2)}
    assert {_conv(b.conv3x3) for b in backbone.stage5} == {(512, 3, 1, 4, 4)}
    assert len(backbone.stage4) == 23
    assert {child._kwargs["eps"] for child in _batchnorms(net)} == {1e-5}  # Caffe BN's and GluonCV's


def _batchnorms(block):
    found = []
    block.apply(lambda child: found.append(child) if isinstance(child, mx.gluon.nn.BatchNorm) else None)
    return found


def test_gluoncv_schedule_is_gluoncv_resnet_rates():
    gluoncv = import_gluoncv()
    theirs = gluoncv.model_zoo.resnetv1b.resnet101_v1s(pretrained=False, dilated=True)
    rates = {stage: tuple(b.conv2._kwargs["dilate"][0] for b in layer)
             for stage, layer in zip((2, 3, 4, 5), (theirs.layer1, theirs.layer2, theirs.layer3, theirs.layer4))}
    assert resolve_schedule("gluoncv", R101, 8) == rates
    assert rates[4][:2] == (1, 2) and rates[5] == (2, 4, 4)
    net = build_system(get_system_spec("pspnet_resnet101", dilation_schedule="gluoncv"))
    assert net.encoder.backbone.rates == rates
    with pytest.raises(ValueError, match="SystemSpec.dilation_schedule"):
        get_system_spec("refinenet_resnet101", dilation_schedule="gluoncv")


def test_refinenet_has_four_chained_pooling_blocks_and_118m_parameters():
    net = build_system(get_system_spec("refinenet_resnet101", num_classes=21))
    names = set(net.decoder.collect_params())
    for block in ("refine1", "refine2", "refine3", "refine4"):
        assert {f"{block}_crp{i}_weight" for i in (1, 2, 3, 4)} <= names and f"{block}_crp5_weight" not in names
    assert count_parameters(net) / 1e6 == pytest.approx(118.0, abs=0.1)


# models/dilation10_cityscapes_deploy.prototxt: the context layers after the front-end's "final"
DILATION10_CONTEXT = [("ctx_conv1_1", 1), ("ctx_conv1_2", 1), ("ctx_conv2_1", 2), ("ctx_conv3_1", 4),
                      ("ctx_conv4_1", 8), ("ctx_conv5_1", 16), ("ctx_conv6_1", 32), ("ctx_conv7_1", 64),
                      ("ctx_fc1", 1)]


def _vgg_frontend_parameters(classes):
    """conv1_1 .. conv5_3, fc6 (7x7, 4096), fc7 (1x1, 4096), final (1x1, classes), with biases."""
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
              (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    convs = sum(9 * cin * cout + cout for cin, cout in widths)
    return convs + 49 * 512 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * classes + classes


def test_dilation10_is_the_authors_cityscapes_model():
    net = build_system(get_system_spec("dilation10_vgg16"))
    layers = [layer for layer in net.decoder.context.layers if isinstance(layer, mx.gluon.nn.Conv2D)]
    assert [(layer.prefix.rstrip("_"), layer._kwargs["dilate"][0], layer._kwargs["pad"][0], layer._channels)
            for layer in layers[:-1]] == [(name, rate, rate, 19) for name, rate in DILATION10_CONTEXT]
    assert (layers[-1].prefix, layers[-1]._kwargs["kernel"], layers[-1]._channels) == ("ctx_final_", (1, 1), 19)
    context = 9 * (9 * 19 * 19 + 19) + 19 * 19 + 19
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    assert count_parameters(net) == _vgg_frontend_parameters(19) + context
    rows = [row for row in PUBLISHED if row.system == "Dilation10"]
    assert [(row.preset, row.dataset, row.miou) for row in rows] == [("dilation10_vgg16", "Cityscapes test", 67.1)]
