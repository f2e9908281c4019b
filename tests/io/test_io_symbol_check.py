"""The symbol cross-check compares every convolution's geometry, not only names and shapes."""
import json
import logging

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

from io_helpers import randomize
from tusimple_duc.io.checkpoint import load_checkpoint, save_checkpoint
from tusimple_duc.io.matching import CheckpointMismatchError
from tusimple_duc.models.presets import get_model

TINY = "tiny_duc_hdc"  # released schedule: stage 4 rates 2, 2, 5, 9; stage 5 rates 5, 9, 17


@pytest.fixture
def tiny_checkpoint(tmp_path):
    net = get_model(TINY)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    randomize(net, seed=2)
    prefix = str(tmp_path / "tiny")
    save_checkpoint(net, prefix, 1)
    return prefix


def reject_in_mxnet(path: str) -> None:
    """Give every BatchNorm the MXNet 0.11 fork's attribute (MXNet >= 1.0 refuses the file)."""
    graph = json.load(open(path))
    for node in graph["nodes"]:
        if node["op"] == "BatchNorm":
            node["attrs"]["fix_linear_trans"] = "False"
    json.dump(graph, open(path, "w"))


def test_a_config_with_another_dilation_schedule_is_refused_naming_the_layer(tiny_checkpoint):
    wrong = get_model(TINY, dilation_schedule="deeplab")  # stage 4: 2, 2, 2, 2; same shapes
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(wrong, tiny_checkpoint, 1)
    assert str(err.value) == (
        f"{tiny_checkpoint}-symbol.json: symbol describes another network: layer conv4_3_3x3: Convolution "
        f"kernel 3x3 stride 1 pad 5 dilate 5 filters 32 bias no, the network has Convolution kernel 3x3 "
        f"stride 1 pad 2 dilate 2 filters 32 bias no")


@pytest.mark.parametrize("overrides, layer", [
    (dict(aspp_stride=7), "fc1_cityscapes_c0"),
    (dict(stride_in_1x1=False), "conv3_1_1x1_reduce"),
])
def test_other_strides_and_head_rates_are_refused(tiny_checkpoint, overrides, layer):
    with pytest.raises(CheckpointMismatchError, match=f"another network: layer {layer}: "):
        load_checkpoint(get_model(TINY, **overrides), tiny_checkpoint, 1)


def test_json_that_mxnet_rejects_is_still_checked_with_the_json_module(tiny_checkpoint, caplog):
    reject_in_mxnet(tiny_checkpoint + "-symbol.json")
    with pytest.raises(CheckpointMismatchError, match="layer conv4_3_3x3: .* pad 5 dilate 5"):
        load_checkpoint(get_model(TINY, dilation_schedule="deeplab"), tiny_checkpoint, 1)
    with caplog.at_level(logging.WARNING):
        report = load_checkpoint(get_model(TINY), tiny_checkpoint, 1)
    assert report.symbol_checked is False
    assert "layer geometry compared from the JSON, parameter shapes not inferred" in caplog.text


def test_the_matching_network_is_checked_and_loads(tiny_checkpoint):
    assert load_checkpoint(get_model(TINY), tiny_checkpoint, 1).symbol_checked is True
