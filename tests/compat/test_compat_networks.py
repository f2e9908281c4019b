"""tusimple_duc.networks: the original's symbol builders give the released graph."""
import json
from pathlib import Path

import mxnet as mx
import pytest

from tusimple_duc.errors import ConfigError
from tusimple_duc.io.symbol import symbol_text, training_symbol
from tusimple_duc.models.presets import get_model
from tusimple_duc.networks.network_duc_hdc import get_symbol_duc_hdc
from tusimple_duc.networks.resnet import get_resnet_hdc

MANIFEST = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "released_param_manifest.json").read_text())


def _shapes(symbol, data_shape):
    arg_shapes, out_shapes, aux_shapes = symbol.infer_shape(data=data_shape)
    args = dict(zip(symbol.list_arguments(), (list(s) for s in arg_shapes)))
    aux = dict(zip(symbol.list_auxiliary_states(), (list(s) for s in aux_shapes)))
    return args, aux, out_shapes


def test_released_call_has_every_released_array_name_and_shape():
    # the released checkpoint = the original's solver call with cell_cap = (8 / 2) ** 2
    symbol = get_symbol_duc_hdc(label_num=19, cell_cap=16)
    args, aux, outputs = _shapes(symbol, (1, 3, 64, 128))
    assert args.pop("data") == [1, 3, 64, 128]
    assert args.pop("seg_loss_label") == [1, 16 * 8 * 16]
    assert args == MANIFEST["arg"]
    assert aux == {name.replace("_running_", "_moving_"): shape for name, shape in MANIFEST["aux"].items()}
    assert outputs == [(1, 19, 16 * 8 * 16)]
    loss = json.loads(symbol.tojson())["nodes"][-1]
    assert loss["op"] == "SoftmaxOutput" and loss["name"] == "seg_loss"
    assert loss["attrs"] == {"ignore_label": "255", "multi_output": "True", "normalization": "valid",
                             "use_ignore": "True"}


@pytest.mark.parametrize("kwargs, spec", [
    ({}, dict(cell_width=1)),
    (dict(label_num=5, aspp_num=2, aspp_stride=3, cell_cap=4, exp="kitti", bn_use_global_stats=False),
     dict(num_classes=5, aspp=2, aspp_stride=3, cell_width=4, head_name="fc1_kitti", bn_use_global_stats=False)),
])
def test_symbol_is_the_package_training_symbol_of_the_matching_spec(kwargs, spec):
    expected = training_symbol(get_model("resnet101_duc_hdc_released", **spec), ignore_label=kwargs.get("ignore_label", 255))
    assert symbol_text(get_symbol_duc_hdc(**kwargs)) == symbol_text(expected)


def test_head_channels_follow_cell_cap_and_names_follow_exp():
    args, _, outputs = _shapes(get_symbol_duc_hdc(label_num=3, aspp_num=2, cell_cap=64, exp="voc"), (2, 3, 32, 32))
    assert args["fc1_voc_c0_weight"] == [3 * 64, 2048, 3, 3] and args["fc1_voc_c1_bias"] == [3 * 64]
    assert "fc1_voc_c2_weight" not in args
    assert outputs == [(2, 3, 64 * 4 * 4)]


@pytest.mark.parametrize("cell_cap", [0, 8, 9, 256])
def test_cell_cap_that_is_no_cell_is_an_error(cell_cap):
    with pytest.raises(ConfigError, match="cell_cap"):
        get_symbol_duc_hdc(cell_cap=cell_cap)


def test_resnet_hdc_is_the_released_backbone():
    symbol = get_resnet_hdc(bn_use_global_stats=False)
    args, aux, outputs = _shapes(symbol, (1, 3, 64, 64))
    assert outputs == [(1, 2048, 8, 8)]
    args.pop("data")
    assert args == {k: v for k, v in MANIFEST["arg"].items() if not k.startswith("fc1_")}
    assert len(aux) == len(MANIFEST["aux"])
    batchnorms = [n for n in json.loads(symbol.tojson())["nodes"] if n["op"] == "BatchNorm"]
    assert batchnorms and all(n["attrs"]["use_global_stats"] == "False" for n in batchnorms)
    assert {n["attrs"]["eps"] for n in batchnorms} == {"1e-06"}


def test_resnet_hdc_dilations_are_the_released_schedule():
    nodes = json.loads(get_resnet_hdc().tojson())["nodes"]
    rates = {n["name"]: n["attrs"].get("dilate", "(1, 1)") for n in nodes if n["op"] == "Convolution"}
    stage4 = [2, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5]
    assert [rates[f"conv4_{i}_3x3"] for i in range(1, 24)] == [f"({r}, {r})" for r in stage4]
    assert [rates[f"conv5_{i}_3x3"] for i in range(1, 4)] == ["(5, 5)", "(9, 9)", "(17, 17)"]
    assert mx.sym.load_json(get_resnet_hdc().tojson()).list_outputs() == get_resnet_hdc().list_outputs()
