"""PSPNet, DeepLab v3, RefineNet on the ResNet features, and U-Net."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from systems_helpers import assert_round_trip, import_gluoncv, randomize
from tusimple_duc.models.decoders.base import EncoderDecoderNet
from tusimple_duc.models.decoders.deeplab import ASPPv3Decoder
from tusimple_duc.models.decoders.pspnet import PSPDecoder, PyramidPooling
from tusimple_duc.models.decoders.refinenet import RefineNetDecoder
from tusimple_duc.models.decoders.unet import (
    UNetDecoder, UNetEncoder, unet_crop_offsets, unet_output_size, unet_valid_size)
from tusimple_duc.models.features import ResNetFeatures
from tusimple_duc.models.resnet import BackboneConfig, ResNetBackbone

X = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (1, 3, 67, 95)))
TINY = dict(blocks_per_stage=(1, 1, 2, 1), width=4, stem="classic")


def _features(stages, output_stride=8, schedule="deeplab", stage5_stride=1):
    config = BackboneConfig(output_stride=output_stride, dilation_schedule=schedule, **TINY)
    return ResNetFeatures(ResNetBackbone(config), stages, stage5_stride)


def test_resnet_features_strides_at_odd_input():
    """Classic stem: every stride-2 layer rounds up, so stage k is ceil(H / stride)."""
    features = _features((2, 3, 4, 5), 16, "none", stage5_stride=2)
    features.initialize()
    shapes = [o.shape for o in features(X)]
    assert features.stage_strides == (4, 8, 16, 32)
    assert shapes == [(1, 16, 17, 24), (1, 32, 9, 12), (1, 64, 5, 6), (1, 128, 3, 3)]
    assert list(features.stage_channels) == [s[1] for s in shapes]
    plain = _features((5,), 8)
    plain.initialize()
    assert set(plain.collect_params()) == set(plain.backbone.collect_params())
    with pytest.raises(ValueError, match="stage5_stride"):
        _features((5,), 8, stage5_stride=2)


def test_stride32_stage5_is_the_strided_network():
    """Subsampling before stage 5 equals stage 5 with its first block's 1x1 convs at stride 2."""
    features = _features((4, 5), 16, "none", stage5_stride=2)
    features.initialize()
    randomize(features)
    stage4, stage5 = features(X)
    block = features.backbone.stage5[0]
    strided = dict(kernel=(1, 1), stride=(2, 2), no_bias=True)
    reduce = mx.nd.Convolution(stage4, block.reduce.conv.weight.data(), num_filter=32, **strided)
    proj = mx.nd.Convolution(stage4, block.proj.conv.weight.data(), num_filter=128, **strided)
    y = block.conv3x3(block.reduce.bn(reduce).relu())
    expected = (block.increase(y) + block.proj.bn(proj)).relu()
    np.testing.assert_allclose(stage5.asnumpy(), expected.asnumpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Parameter .*is not used by any computation")  # unused without auxiliary
@pytest.mark.parametrize("auxiliary", [False, True])
def test_pspnet_outputs_and_round_trip(auxiliary, tmp_path):
    features = _features((4, 5))
    net = EncoderDecoderNet(features, PSPDecoder(3, features.stage_channels, auxiliary=auxiliary))
    net.initialize(mx.init.Xavier())
    randomize(net.decoder)
    out = assert_round_trip(net, X, tmp_path)
    assert [o.shape for o in out] == [(1, 3, 9, 12)] * (2 if auxiliary else 1)
    assert net.decoder.auxiliary_weight == 0.4 and net.prediction_stride == 8
    names = set(net.decoder.collect_params())
    assert {"conv5_3_pool6_conv_weight", "conv5_4/bn_gamma", "conv6_weight", "aux_score_weight"} <= names


def _copy_in_order(ours, theirs):
    """Parameters of two blocks built in the same order: ours -> theirs (shapes checked)."""
    mine, other = list(ours.collect_params().values()), list(theirs.collect_params().values())
    assert len(mine) == len(other)
    for a, b in zip(mine, other):
        assert a.shape == b.shape, (a.name, b.name)
        b.set_data(a.data())


@pytest.fixture(scope="module")
def gluoncv():
    return import_gluoncv()


def test_pyramid_pooling_equals_gluoncv(gluoncv):
    from gluoncv.model_zoo.pspnet import _PyramidPooling
    x = mx.nd.array(np.random.RandomState(2).uniform(0, 1, (2, 8, 13, 11)))
    ours = PyramidPooling(8)
    ours.initialize()
    ours(x)
    randomize(ours)
    theirs = _PyramidPooling(8, height=13, width=11, norm_layer=mx.gluon.nn.BatchNorm, norm_kwargs=None)
    theirs.initialize()
    theirs(x)
    _copy_in_order(ours, theirs)
    np.testing.assert_allclose(ours(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-5, atol=1e-5)


def test_aspp_v3_equals_gluoncv(gluoncv):
    from gluoncv.model_zoo.deeplabv3 import _ASPP
    x = mx.nd.array(np.random.RandomState(3).uniform(0, 1, (1, 8, 9, 12)))
    ours = ASPPv3Decoder(3, 8, output_stride=8)
    ours.initialize()
    ours(x)
    randomize(ours)
    theirs = _ASPP(8, [12, 24, 36], norm_layer=mx.gluon.nn.BatchNorm, norm_kwargs=None,
                   height=9, width=12)
    theirs.initialize()
    theirs(x)
    _copy_in_order(ours.aspp, theirs)
    np.testing.assert_allclose(ours.aspp(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("output_stride,expected", [(16, (5, 6)), (8, (9, 12))])
def test_deeplab_v3_sizes_and_round_trip(output_stride, expected, tmp_path):
    features = _features((5,), output_stride)
    decoder = ASPPv3Decoder(3, features.stage_channels[-1], output_stride, channels=8)
    net = EncoderDecoderNet(features, decoder)
    net.initialize(mx.init.Xavier())
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 3) + expected and net.prediction_stride == output_stride
    assert decoder.rates == {16: (6, 12, 18), 8: (12, 24, 36)}[output_stride]


def test_refinenet_sizes_and_round_trip(tmp_path):
    features = _features((2, 3, 4, 5), 16, "none", stage5_stride=2)
    decoder = RefineNetDecoder(3, features.stage_channels, block_channels=(4, 4, 4, 8))
    net = EncoderDecoderNet(features, decoder)
    net.initialize(mx.init.Xavier())
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 3, 17, 24) and net.prediction_stride == 4
    names = set(decoder.collect_params())
    assert {"adapt5_weight", "refine4_in1_rcu2_conv2_weight", "refine3_mrf2_weight",
            "refine1_crp2_weight", "refine1_out_rcu_conv1_bias", "final_rcu2_conv1_weight",
            "score_weight"} <= names
    assert "refine4_mrf1_weight" not in names  # a single path has no fusion


def test_unet_geometry_of_the_paper():
    """Figure 1: 572 -> 388; crops 568 -> 392, 280 -> 200, 136 -> 104, 64 -> 56."""
    assert unet_output_size(572) == 388 and unet_valid_size(572) and not unet_valid_size(570)
    assert unet_crop_offsets() == ((64 - 56) // 2, (136 - 104) // 2, (280 - 200) // 2, (568 - 392) // 2)
    assert unet_crop_offsets(padded=True) == (0, 0, 0, 0)


def test_unet_unpadded_output_and_round_trip(tmp_path):
    encoder = UNetEncoder(width=1)
    net = EncoderDecoderNet(encoder, UNetDecoder(2, encoder.endpoint_channels))
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 188, 204))
    out = assert_round_trip(net, x, tmp_path)
    assert out[0].shape == (1, 2, unet_output_size(188), unet_output_size(204)) == (1, 2, 4, 20)


def test_unet_padded_odd_input(tmp_path):
    encoder = UNetEncoder(width=1, padded=True)
    net = EncoderDecoderNet(encoder, UNetDecoder(2, encoder.endpoint_channels, padded=True))
    net.initialize(mx.init.Xavier())
    out = assert_round_trip(net, X, tmp_path)
    assert out[0].shape == (1, 2, 64, 80)
    assert {"conv_d4b_weight", "upconv_u0_weight", "conv_u0a_weight", "score_weight"} <= set(
        net.collect_params())
