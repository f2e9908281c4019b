"""spec_from_symbol_json: the architecture read back from a symbol JSON (json module only)."""
import dataclasses
import json

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

import released_manifest
from io_helpers import RELEASED, RELEASED_STAGE4_DILATIONS, RELEASED_STAGE5_DILATIONS
from original_graph import as_mxnet_011_json, original_symbol
from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.export import preset_symbol_text
from tusimple_duc.io.symbol import symbol_text, training_symbol
from tusimple_duc.io.names import checkpoint_key
from tusimple_duc.io.symbol_spec import network_layer_table, spec_from_symbol_file, spec_from_symbol_json
from tusimple_duc.models.presets import PRESETS, build_model, get_spec


def shapes(net) -> dict:
    return {checkpoint_key(name): param.shape for name, param in net.collect_params().items()}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips(name):
    spec = spec_from_symbol_json(preset_symbol_text(name), name)
    assert spec == PRESETS[name]
    rebuilt, preset = build_model(spec), build_model(PRESETS[name])
    assert shapes(rebuilt) == shapes(preset)
    assert network_layer_table(rebuilt) == network_layer_table(preset)


def test_released_json_that_mxnet_rejects_gives_the_released_spec(tmp_path):
    text = as_mxnet_011_json(original_symbol())
    with pytest.raises(mx.base.MXNetError):
        mx.sym.load_json(text)
    path = tmp_path / "ResNet_DUC_HDC_CityScapes-symbol.json"
    path.write_text(text)
    spec = spec_from_symbol_file(str(path))
    assert spec == get_spec(RELEASED)
    net = build_model(spec)
    assert shapes(net) == {**{"arg:" + k: v for k, v in released_manifest.ARG.items()},
                           **{"aux:" + k: v for k, v in released_manifest.AUX.items()}}
    rates = [net.backbone.rates[4], net.backbone.rates[5]]
    assert rates == [RELEASED_STAGE4_DILATIONS, RELEASED_STAGE5_DILATIONS]


@pytest.mark.parametrize("options, expected", [
    (dict(aspp_num=6, aspp_stride=6, cell_cap=64), dict(aspp=6, cell_width=1)),
    (dict(aspp_num=1, aspp_stride=12, cell_cap=4, label_num=7), dict(aspp=1, aspp_stride=12, cell_width=4,
                                                                     num_classes=7)),
    (dict(aspp_num=2, aspp_stride=3, cell_cap=1, label_num=5), dict(aspp=2, aspp_stride=3, head="bilinear",
                                                                    num_classes=5)),
    (dict(exp="kitti", label_num=2, bn_use_global_stats=False), dict(head_name="fc1_kitti", num_classes=2,
                                                                     bn_use_global_stats=False)),
])
def test_architectures_the_original_code_builds(options, expected):
    spec = spec_from_symbol_json(as_mxnet_011_json(original_symbol(**options)))
    assert spec == dataclasses.replace(get_spec(RELEASED), **expected)


def test_unnamed_schedule_is_explicit_and_rebuilds_the_same_rates():
    spec = get_spec("tiny_duc_hdc", dilation_schedule=((3, 1, 4, 1), (5, 9, 2)))
    with mx.name.NameManager():
        net = build_model(spec)
    found = spec_from_symbol_json(symbol_text(training_symbol(net)))
    assert found.dilation_schedule == ((3, 1, 4, 1), (5, 9, 2))
    assert build_model(found).backbone.rates == net.backbone.rates


def _edited(text: str, name: str, **attrs) -> str:
    graph = json.loads(text)
    for node in graph["nodes"]:
        if node["name"] == name:
            node.setdefault("attrs", {}).update(attrs)
    return json.dumps(graph)


@pytest.mark.parametrize("text, message", [
    ("{not json", r"not valid symbol JSON \(line 1"),
    ('{"nodes": []}', "no 'nodes' list"),
    ('{"nodes": [{"op": "null", "name": "data", "inputs": []}]}', "no stem convolution"),
])
def test_unreadable_json_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad-symbol.json"
    path.write_text(text)
    with pytest.raises(CheckpointError, match=message) as err:
        spec_from_symbol_file(str(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_padding_the_project_cannot_build_names_the_layer():
    text = _edited(preset_symbol_text("tiny_duc_hdc"), "conv4_2_3x3", pad="(1, 1)")
    with pytest.raises(CheckpointError, match=r"x: not a network this project builds: layer conv4_2_3x3: "
                                              r"Convolution kernel 3x3 stride 1 pad 1 dilate 2"):
        spec_from_symbol_json(text, "x")


def test_head_channels_that_are_no_cell_width_are_refused():
    text = as_mxnet_011_json(original_symbol(cell_cap=10))
    with pytest.raises(CheckpointError, match="the head has 190 channels, not L"):
        spec_from_symbol_json(text, "x")


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read the symbol JSON"):
        spec_from_symbol_file(str(tmp_path / "none-symbol.json"))
