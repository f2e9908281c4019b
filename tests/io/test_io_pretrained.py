"""ImageNet initialisation: every source tensor lands where it belongs, checked by name and by function."""
import logging

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.model_zoo.vision import get_resnet

from io_helpers import import_gluoncv, random_value
from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.pretrained import load_imagenet_pretrained, load_pretrained
from tusimple_duc.models.presets import get_model
from tusimple_duc.models.systems import build_system, get_system_spec

IMAGENET_STD = np.array([0.229, 0.224, 0.225])
EPS_SHIFT = 1e-5 - 1e-6  # source BatchNorm eps minus ours


def randomized_source(net, seed):
    """Initialise a classification network, resolve its shapes, give every array a random value."""
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    rng = np.random.RandomState(seed)
    for name, param in net.collect_params().items():
        param.set_data(mx.nd.array(random_value(name, param.shape, rng)))
    return net


@pytest.fixture(scope="module")
def v1s(tmp_path_factory):
    """GluonCV resnet50_v1s with random weights, saved as GluonCV names its downloads."""
    root = tmp_path_factory.mktemp("models")
    net = randomized_source(import_gluoncv().model_zoo.get_model("resnet50_v1s", pretrained=False), seed=1)
    net.save_parameters(str(root / "resnet50_v1s-25a187fa.params"))
    return net, root


@pytest.fixture(scope="module")
def v1(tmp_path_factory):
    """Gluon model zoo resnet50_v1 with random weights, in the current and the legacy file format."""
    root = tmp_path_factory.mktemp("models")
    net = randomized_source(get_resnet(1, 50), seed=2)
    net.save_parameters(str(root / "resnet50_v1-0aee57f9.params"))
    net.collect_params().save(str(root / "legacy.params"), strip_prefix=net.prefix)
    return net, root


def source_values(net):
    return {key: p.data().asnumpy() for key, p in net._collect_params_with_prefix().items()}


def ours(net, name):
    return net.collect_params()[name].data().asnumpy()


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_gluoncv_v1s_every_backbone_tensor_lands_in_place(v1s):
    source, root = v1s
    net = get_model("resnet101_duc_hdc_released", depth=50)
    report = load_pretrained(net, "resnet50_v1s", root=str(root))
    assert report.source == "resnet50_v1s" and report.path == str(root / "resnet50_v1s-25a187fa.params")
    backbone = set(net.backbone.collect_params().keys())
    head = set(net.head.collect_params().keys())
    assert sorted(report.mapping.values()) == sorted(backbone)
    assert set(report.dropped) == {"fc.weight", "fc.bias"} and set(report.untouched) == head
    for name in head:  # the new layers stay for the caller to initialise
        with pytest.raises(RuntimeError):
            net.collect_params()[name].data()
    src = source_values(source)
    # written out by hand from the two networks' layouts
    by_name = {
        "conv1_2_3x3_weight": src["conv1.3.weight"],
        "conv1_3_3x3/bn_gamma": src["bn1.gamma"],
        "conv1_3_3x3/bn_running_var": src["bn1.running_var"] + EPS_SHIFT,
        "conv2_1_1x1_proj_weight": src["layer1.0.downsample.0.weight"],
        "conv2_1_1x1_proj/bn_running_mean": src["layer1.0.downsample.1.running_mean"],
        "conv3_4_1x1_increase/bn_beta": src["layer2.3.bn3.beta"],
        "conv4_6_3x3_weight": src["layer3.5.conv2.weight"],
        "conv5_3_1x1_reduce/bn_running_var": src["layer4.2.bn1.running_var"] + EPS_SHIFT,
        "conv1_1_3x3_s2_weight": src["conv1.0.weight"] / (255 * IMAGENET_STD)[None, :, None, None],
    }
    for name, expected in by_name.items():
        np.testing.assert_allclose(ours(net, name), expected, rtol=1e-6, atol=0, err_msg=name)
    for key, name in report.mapping.items():
        if not name.endswith(("_running_var", "conv1_1_3x3_s2_weight")):
            assert np.array_equal(ours(net, name), src[key]), (key, name)


def test_gluoncv_v1s_computes_the_source_features(v1s, caplog):
    source, root = v1s
    # stride on the 3x3 like v1b, stages 2-4 undilated at output stride 16: the source's layer1-3
    net = get_model("resnet101_duc_hdc_released", depth=50, stride_in_1x1=False, output_stride=16,
                     dilation_schedule="none")
    with caplog.at_level(logging.WARNING):
        load_pretrained(net, str(root / "resnet50_v1s-25a187fa.params"))
    assert "strides" not in caplog.text
    rng = np.random.RandomState(3)
    x = rng.uniform(-120, 120, (1, 3, 32, 32)).astype(np.float32)  # this project's input: x - mean
    x_imagenet = x / (255 * IMAGENET_STD)[None, :, None, None].astype(np.float32)
    expected = source.relu(source.bn1(source.conv1(mx.nd.array(x_imagenet)))).asnumpy()
    close(net.backbone.stem.convs(mx.nd.array(x)).asnumpy(), expected)
    features = mx.nd.array(rng.uniform(0, 2, (1, 128, 16, 16)).astype(np.float32))
    expected = source.layer3(source.layer2(source.layer1(features))).asnumpy()
    close(net.backbone.stage4(net.backbone.stage3(net.backbone.stage2(features))).asnumpy(), expected)


def test_gluon_v1_bias_folding_and_the_whole_chain_to_stage_4(v1):
    source, root = v1
    net = get_model("resnet101_baseline_ds8", depth=50, output_stride=16, dilation_schedule="none")
    report = load_pretrained(net, "resnet50_v1", root=str(root))
    assert set(report.dropped) == {"output.weight", "output.bias"}
    src = source_values(source)
    np.testing.assert_allclose(ours(net, "conv2_1_1x1_reduce/bn_running_mean"),
                               src["features.4.0.body.1.running_mean"] - src["features.4.0.body.0.bias"], rtol=1e-6)
    np.testing.assert_allclose(ours(net, "conv4_6_1x1_increase/bn_running_mean"),
                               src["features.6.5.body.7.running_mean"] - src["features.6.5.body.6.bias"], rtol=1e-6)
    assert np.array_equal(ours(net, "conv3_1_1x1_proj_weight"), src["features.5.0.downsample.0.weight"])
    assert np.array_equal(ours(net, "conv1_7x7_s2/bn_gamma"), src["features.1.gamma"])
    x = np.random.RandomState(4).uniform(-120, 120, (1, 3, 64, 64)).astype(np.float32)
    x_imagenet = x / (255 * IMAGENET_STD)[None, :, None, None].astype(np.float32)
    expected = mx.nd.array(x_imagenet)
    for layer in list(source.features)[:7]:  # 7x7 conv, BN, ReLU, max-pool, stages 1-3
        expected = layer(expected)
    mine = net.backbone.stage4(net.backbone.stage3(net.backbone.stage2(net.backbone.stem(mx.nd.array(x)))))
    close(mine.asnumpy(), expected.asnumpy())


def test_legacy_gluon_file_and_a_renamed_file_load_the_same(v1):
    source, root = v1
    reference = get_model("resnet101_baseline_ds8", depth=50)
    load_pretrained(reference, "resnet50_v1", root=str(root))
    legacy = get_model("resnet101_baseline_ds8", depth=50)
    report = load_imagenet_pretrained(legacy, "resnet50_v1", path=str(root / "legacy.params"))
    assert report.source == "resnet50_v1"
    for name in reference.backbone.collect_params().keys():
        assert np.array_equal(ours(legacy, name), ours(reference, name)), name


def test_source_detected_from_content_and_wrong_claims_refused(v1s, tmp_path):
    source, root = v1s
    renamed = str(tmp_path / "imagenet.params")
    source.save_parameters(renamed)
    net = get_model("resnet101_duc_hdc_released", depth=50)
    assert load_pretrained(net, renamed).source == "resnet50_v1s"
    with pytest.raises(CheckpointError) as err:
        load_imagenet_pretrained(net, "resnet101_v1s", path=renamed)
    assert str(err.value) == f"{renamed}: holds resnet50_v1s weights, not resnet101_v1s"


def test_depth_and_stem_mismatches_are_one_clear_error(v1s):
    _, root = v1s
    path = str(root / "resnet50_v1s-25a187fa.params")
    with pytest.raises(CheckpointError) as err:
        load_pretrained(get_model("resnet101_duc_hdc_released"), path)
    message = str(err.value)
    assert message.startswith(f"{path}: resnet50_v1s weights do not fit the network's backbone: "
                              f"255 missing (conv4_7_1x1_reduce_weight, ")  # 17 blocks x 3 convs x 5 arrays
    assert "\n" not in message
    with pytest.raises(CheckpointError) as err:
        load_pretrained(get_model("resnet101_baseline_ds8", depth=50), path)
    assert str(err.value) == f"{path}: resnet50_v1s has the deep stem, the network the classic stem: use resnet50_v1"


def test_mxnet_pre_activation_symbol_checkpoints_are_refused(tmp_path):
    # names of MXNet's example/image-classification/symbols/resnet.py (pre-activation ResNet v2)
    names = ["arg:bn_data_gamma", "arg:bn_data_beta", "aux:bn_data_moving_mean", "arg:conv0_weight",
             "arg:bn0_gamma", "arg:stage1_unit1_bn1_gamma", "arg:stage1_unit1_conv1_weight",
             "arg:stage1_unit1_sc_weight", "arg:fc1_weight", "arg:fc1_bias"]
    path = str(tmp_path / "resnet-101-0000.params")
    mx.nd.save(path, {name: mx.nd.ones((4,)) for name in names})
    net = get_model("resnet101_baseline_ds8")
    with pytest.raises(CheckpointError) as err:
        load_pretrained(net, path)
    message = str(err.value)
    assert message.startswith(f"{path}: an MXNet model-zoo symbol checkpoint: pre-activation ResNet v2")
    assert "no tensor-for-tensor mapping computes the same function" in message and "\n" not in message
    with pytest.raises(CheckpointError, match="^resnet-101: pre-activation ResNet v2 .* use resnet101_v1s"):
        load_pretrained(net, "resnet-101")


def test_locating_downloaded_files(v1s, tmp_path, monkeypatch):
    source, _ = v1s
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    net = get_model("resnet101_duc_hdc_released", depth=50)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(net, "resnet50_v1s")
    assert str(err.value).startswith(f"{tmp_path / 'models'}: no resnet50_v1s-<hash>.params")
    (tmp_path / "models").mkdir()
    source.save_parameters(str(tmp_path / "models" / "resnet50_v1s-25a187fa.params"))
    assert load_pretrained(net, "resnet50_v1s").path == str(tmp_path / "models" / "resnet50_v1s-25a187fa.params")
    source.save_parameters(str(tmp_path / "models" / "resnet50_v1s-00000000.params"))
    with pytest.raises(CheckpointError, match="several resnet50_v1s files"):
        load_pretrained(net, "resnet50_v1s")
    with pytest.raises(CheckpointError, match="unknown ImageNet source 'resnet50_v1d'"):
        load_imagenet_pretrained(net, "resnet50_v1d")


def test_resnet_comparison_system_takes_imagenet_weights_into_its_encoder(v1s):
    """PSPNet's deep-stem encoder (``net.encoder.backbone``) takes the v1s file; the heads stay."""
    source, root = v1s
    net = build_system(get_system_spec("pspnet_resnet101", depth=50, num_classes=3))
    report = load_pretrained(net, "resnet50_v1s", root=str(root))
    assert sorted(report.mapping.values()) == sorted(net.encoder.collect_params().keys())
    assert set(report.untouched) == set(net.decoder.collect_params().keys())
    src = source_values(source)
    np.testing.assert_array_equal(ours(net, "conv4_6_3x3_weight"), src["layer3.5.conv2.weight"])
    # PSPNet's BatchNorm eps is GluonCV's 1e-5: no shift of the variance
    np.testing.assert_array_equal(ours(net, "conv5_3_1x1_reduce/bn_running_var"), src["layer4.2.bn1.running_var"])
