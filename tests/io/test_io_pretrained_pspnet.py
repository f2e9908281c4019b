"""GluonCV's trained PSPNet files load into ``pspnet_resnet101`` and compute GluonCV's network."""
import logging
import os

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from io_helpers import import_gluoncv, load_tool, random_value
from tusimple_duc.config import load_test_config
from tusimple_duc.errors import CheckpointError, ConfigError
from tusimple_duc.io.checkpoint import load_checkpoint
from tusimple_duc.io.pretrained import load_pretrained
from tusimple_duc.io.pretrained_pspnet import load_gluoncv_pspnet
from tusimple_duc.models.from_config import spec_from_test_config
from tusimple_duc.models.systems import build_system, get_system_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CLASSES = 5
SIZE = 64  # GluonCV's head resizes its pyramid to crop_size / 8: the input must be crop_size
INPUT_SCALE = 255 * np.array([0.229, 0.224, 0.225], np.float32)[None, :, None, None]


@pytest.fixture(scope="module")
def gluoncv_psp(tmp_path_factory):
    """GluonCV's PSPNet (ResNet-101, aux as the model-zoo files) with random values, saved as
    GluonCV names its download; returns (net, model root, input x as this project feeds it)."""
    net = import_gluoncv().model_zoo.PSPNet(CLASSES, backbone="resnet101", aux=True, pretrained_base=False,
                                            crop_size=SIZE)
    net.initialize(mx.init.Xavier(), force_reinit=True)
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    rng = np.random.RandomState(0)
    for key, param in net._collect_params_with_prefix().items():
        param.set_data(mx.nd.array(random_value(key, param.shape, rng)))
    root = tmp_path_factory.mktemp("models")
    net.save_parameters(str(root / "psp_resnet101_citys-c0d5ad4d.params"))
    x = rng.uniform(-120, 120, (1, 3, SIZE, SIZE)).astype(np.float32)
    return net, root, x


def _gluoncv_scores(net, x):
    """GluonCV's head and auxiliary scores (N, L, H/8, W/8) on the same image, GluonCV-normalised."""
    stage4, stage5 = net.base_forward(mx.nd.array(x / INPUT_SCALE))
    return net.head(stage5).asnumpy(), net.auxlayer(stage4).asnumpy()


def _pspnet(**fields):
    net = build_system(get_system_spec("pspnet_resnet101", num_classes=CLASSES, auxiliary=True, **fields))
    net.initialize()
    net(mx.nd.zeros((1, 3, SIZE, SIZE)))
    return net


@pytest.mark.filterwarnings("ignore:Parameter .* is already initialized")
def test_gluoncv_pspnet_file_loads_and_computes_gluoncv_outputs(gluoncv_psp, caplog):
    theirs, root, x = gluoncv_psp
    expected = _gluoncv_scores(theirs, x)
    net = _pspnet(dilation_schedule="gluoncv")
    report = load_pretrained(net, "psp_resnet101_citys", root=str(root))
    assert report.untouched == ()
    assert len(report.mapping) == len(theirs._collect_params_with_prefix())
    for ours, reference in zip(net(mx.nd.array(x)), expected):
        assert ours.shape == reference.shape == (1, CLASSES, SIZE // 8, SIZE // 8)
        np.testing.assert_allclose(ours.asnumpy(), reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    # the authors' rates (the preset's default): the same weights load, one warning, other scores
    authors = _pspnet()
    with caplog.at_level(logging.WARNING):
        load_pretrained(authors, str(next(root.iterdir())))
    assert "dilation_schedule = gluoncv" in caplog.text and "rates 1 and 2, this network at 2 and 4" in caplog.text
    assert np.abs(authors(mx.nd.array(x))[0].asnumpy() - expected[0]).max() > 1e-2 * np.abs(expected[0]).max()


def test_file_without_auxiliary_head_leaves_it_untouched(gluoncv_psp, tmp_path):
    _, root, _ = gluoncv_psp
    arrays = mx.nd.load(str(next(root.iterdir())))
    path = str(tmp_path / "psp_noaux.params")
    mx.nd.save(path, {k: v for k, v in arrays.items() if not k.startswith("auxlayer.")})
    net = _pspnet(dilation_schedule="gluoncv")
    report = load_gluoncv_pspnet(net, path=path)
    assert sorted(report.untouched) == ["aux_conv/bn_beta", "aux_conv/bn_gamma", "aux_conv/bn_running_mean",
                                        "aux_conv/bn_running_var", "aux_conv_weight", "aux_score_bias",
                                        "aux_score_weight"]


def test_mismatches_are_one_line_errors_naming_the_file(gluoncv_psp, tmp_path):
    _, root, _ = gluoncv_psp
    path = str(next(root.iterdir()))
    tiny = build_system(get_system_spec("tiny_pspnet", num_classes=CLASSES))
    tiny.initialize()
    tiny(mx.nd.zeros((1, 3, SIZE, SIZE)))
    with pytest.raises(CheckpointError, match=r"psp_resnet101_citys-c0d5ad4d.params: GluonCV PSPNet weights do "
                                              r"not fit the network: 420 unexpected \(conv2_2_1x1_reduce_weight") as err:
        load_pretrained(tiny, path)
    assert "\n" not in str(err.value)
    other = tmp_path / "other.params"
    mx.nd.save(str(other), {"layer1.0.conv1.weight": mx.nd.zeros((64, 128, 1, 1))})
    with pytest.raises(CheckpointError, match=r"other.params: not a GluonCV PSPNet parameter file"):
        load_gluoncv_pspnet(tiny, path=str(other))
    dilation = build_system(get_system_spec("tiny_dilation"))
    with pytest.raises(CheckpointError, match="needs a pspnet network"):
        load_gluoncv_pspnet(dilation, path=path)
    with pytest.raises(CheckpointError, match="unknown GluonCV PSPNet 'psp_resnet7'"):
        load_gluoncv_pspnet(tiny, "psp_resnet7")


def test_import_tool_writes_a_checkpoint_test_py_loads_strictly(gluoncv_psp, tmp_path, capsys):
    theirs, root, x = gluoncv_psp
    prefix = str(tmp_path / "psp" / "pspnet_resnet101")
    assert load_tool("import_gluoncv_pspnet").main([str(next(root.iterdir())), "--out", prefix]) == 0
    assert "depth 101, 5 classes, dilation_schedule gluoncv" in capsys.readouterr().out
    # the network test.py builds from its config (pipelines.segment: strict load_checkpoint)
    config = load_test_config(os.path.join(REPO, "configs", "test", "pspnet_resnet101.cfg"),
                              ["network.dilation_schedule=gluoncv", "model.label_num=5"])
    net = build_system(spec_from_test_config(config))
    load_checkpoint(net, prefix, 0)
    expected = _gluoncv_scores(theirs, x)[0]
    np.testing.assert_allclose(net(mx.nd.array(x)).asnumpy(), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def test_dilation_schedule_key_applies_to_dilated_resnet_systems_only():
    path = os.path.join(REPO, "configs", "test", "dilation10_vgg16.cfg")
    with pytest.raises(ConfigError, match=r"\[network\] dilation_schedule: does not apply to the dilation system"):
        spec_from_test_config(load_test_config(path, ["network.dilation_schedule=gluoncv"]))
    path = os.path.join(REPO, "configs", "test", "pspnet_resnet101.cfg")
    with pytest.raises(ConfigError, match="dilation_schedule: must be one of deeplab, gluoncv"):
        spec_from_test_config(load_test_config(path, ["network.dilation_schedule=released"]))
