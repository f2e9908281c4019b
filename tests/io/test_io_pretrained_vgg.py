"""VGG-16 ImageNet initialisation: a Gluon model-zoo VGG-16 (the zoo's own ``VGG`` class at a
sixteenth of the conv widths, random weights, saved as the zoo saves them) lands on the encoders,
and the network computes the classifier's features."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.model_zoo.vision.vgg import VGG

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.pretrained import load_pretrained
from tusimple_duc.io.pretrained_common import IMAGENET_STD
from tusimple_duc.models.systems import build_system, get_system_spec


WIDTH_FACTORS = (1, 2, 4, 8, 8)   # the zoo's 64, 128, 256, 512, 512 at width 4
NARROW = dict(num_classes=3, vgg_width=4, fc_channels=0)  # fc6 / fc7 keep the zoo's 4096 (LargeFOV: 1024)


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    paths = {}
    for name, batch_norm in (("vgg16", False), ("vgg16_bn", True)):
        net = VGG([2, 2, 3, 3, 3], [4 * f for f in WIDTH_FACTORS], batch_norm=batch_norm)
        net.initialize(mx.init.Normal(0.01))
        net(mx.nd.zeros((1, 3, 224, 224)))
        paths[name] = str(folder / f"{name}-0123abcd.params")
        net.save_parameters(paths[name])
        paths[name + "_net"] = net
    return paths


def test_dilated_front_end_reproduces_the_zoo_network_conv_features(zoo_files):
    net = build_system(get_system_spec("dilation8_vgg16_frontend", **NARROW))
    net.initialize()
    report = load_pretrained(net, zoo_files["vgg16"])
    assert report.source == "vgg16" and "fc_final_weight" in report.untouched
    zoo = zoo_files["vgg16_net"]
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)[None, :, None, None] * 255
    std = np.array(IMAGENET_STD, np.float32)[None, :, None, None]
    theirs = zoo.features[:4](mx.nd.array((pixels / 255 - mean / 255) / std)).asnumpy()   # conv1_1, relu, conv1_2, relu
    ours = net.encoder.stages[0](mx.nd.array(pixels - mean)).asnumpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    # fc6 became a 7x7 convolution holding the dense weights
    fc6 = zoo.features[31].weight.data().asnumpy().reshape(4096, 32, 7, 7)
    np.testing.assert_array_equal(net.encoder.fc[0].weight.data().asnumpy(), fc6)


def test_largefov_decimates_and_segnet_takes_the_batchnorm_file(zoo_files):
    net = build_system(get_system_spec("deeplabv1_largefov_vgg16", **NARROW))
    net.initialize()
    load_pretrained(net, "vgg16", root=str(zoo_files["vgg16"]).rsplit("/", 1)[0])
    fc7 = zoo_files["vgg16_net"].features[33].weight.data().asnumpy()
    np.testing.assert_array_equal(net.encoder.fc[3].weight.data().asnumpy()[:, :, 0, 0], fc7[::4, ::4])
    segnet = build_system(get_system_spec("segnet_vgg16", **NARROW))
    segnet.initialize()
    load_pretrained(segnet, zoo_files["vgg16_bn"])
    bn = zoo_files["vgg16_bn_net"].features[1]
    np.testing.assert_array_equal(segnet.encoder.stages[0][1].gamma.data().asnumpy(), bn.gamma.data().asnumpy())


def test_wrong_file_and_narrow_encoder_are_one_line_errors(zoo_files):
    segnet = build_system(get_system_spec("segnet_vgg16", num_classes=3))
    with pytest.raises(CheckpointError, match="segnet encoder needs vgg16_bn, not vgg16"):
        load_pretrained(segnet, "vgg16")
    with pytest.raises(CheckpointError, match="not a vgg16_bn file"):
        load_pretrained(segnet, zoo_files["vgg16"])
    tiny = build_system(get_system_spec("tiny_fcn8s", num_classes=3))   # fc6 / fc7 of 16 channels
    tiny.initialize()
    with pytest.raises(CheckpointError, match="do not fit the network's VGG-16 encoder"):
        load_pretrained(tiny, zoo_files["vgg16"])
