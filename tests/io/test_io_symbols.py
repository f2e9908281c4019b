"""symbols/: committed preset symbols are current, and the released one is the released graph."""
import ast
import json
import os

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

import released_manifest
from io_helpers import REPO, RELEASED, RELEASED_STAGE4_DILATIONS, RELEASED_STAGE5_DILATIONS, load_tool
from tusimple_duc.io.export import preset_symbol_text
from tusimple_duc.io.symbol import symbol_text, training_symbol
from tusimple_duc.models.presets import PRESETS, get_model

FOLDER = os.path.join(REPO, "symbols")


def structure(text: str) -> dict:
    """The JSON graph without MXNet's version attribute."""
    graph = json.loads(text)
    graph.get("attrs", {}).pop("mxnet_version", None)
    return graph


def committed(name: str) -> str:
    with open(os.path.join(FOLDER, f"{name}-symbol.json")) as handle:
        return handle.read()


def test_symbols_folder_holds_one_file_per_preset():
    assert sorted(os.listdir(FOLDER)) == sorted(f"{name}-symbol.json" for name in PRESETS)


@pytest.mark.parametrize("name", list(PRESETS))
def test_committed_symbol_is_what_the_code_generates(name):
    assert structure(preset_symbol_text(name)) == structure(committed(name)), (
        f"symbols/{name}-symbol.json is stale: run python tools/generate_symbols.py")


def test_a_changed_preset_no_longer_matches_its_committed_symbol():
    changed = symbol_text(training_symbol(get_model(RELEASED, aspp_stride=7)))
    assert structure(changed) != structure(committed(RELEASED))


def test_generation_is_deterministic_and_the_tool_writes_the_same_text(tmp_path, capsys):
    assert preset_symbol_text("tiny_deconv") == preset_symbol_text("tiny_deconv")
    assert load_tool("generate_symbols").main(["--out", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.split()) == len(PRESETS)
    for name in ("tiny_duc_hdc", RELEASED):
        assert (tmp_path / f"{name}-symbol.json").read_text() == preset_symbol_text(name)


def _attrs(node):
    return {key: ast.literal_eval(value) if value[:1] in "(0123456789-" else value
            for key, value in node.get("attrs", {}).items()}


def test_released_symbol_is_the_released_graph():
    text = committed(RELEASED)
    symbol = mx.sym.load_json(text)
    assert symbol.list_outputs() == ["seg_loss_output"]
    assert set(symbol.list_arguments()) == set(released_manifest.ARG) | {"data", "seg_loss_label"}
    assert set(symbol.list_auxiliary_states()) == set(released_manifest.AUX)
    arg_shapes, out_shapes, aux_shapes = symbol.infer_shape(data=(1, 3, 1024, 2048))
    shapes = dict(zip(symbol.list_arguments(), arg_shapes))
    shapes.update(zip(symbol.list_auxiliary_states(), aux_shapes))
    assert shapes["seg_loss_label"] == (1, 16 * 128 * 256) and out_shapes == [(1, 19, 16 * 128 * 256)]
    assert {k: v for k, v in shapes.items() if k not in ("data", "seg_loss_label")} == {
        **released_manifest.ARG, **released_manifest.AUX}

    nodes = {node["name"]: node for node in json.loads(text)["nodes"] if node["op"] != "null"}
    assert _attrs(nodes["seg_loss"]) == {"multi_output": "True", "use_ignore": "True", "ignore_label": 255,
                                         "normalization": "valid"}
    assert nodes["seg_loss"]["op"] == "SoftmaxOutput"
    assert _attrs(nodes["cls_score_reshape"])["shape"] == (0, 19, -1)
    for block, rate in enumerate(RELEASED_STAGE4_DILATIONS + RELEASED_STAGE5_DILATIONS):
        stage, index = (4, block + 1) if block < 23 else (5, block - 22)
        conv = _attrs(nodes[f"conv{stage}_{index}_3x3"])
        assert conv["dilate"] == conv["pad"] == (rate, rate) and conv["stride"] == (1, 1), (stage, index)
    for i, rate in enumerate((6, 12, 18, 24)):
        head = _attrs(nodes[f"fc1_cityscapes_c{i}"])
        assert (head["dilate"], head["pad"], head["num_filter"], head["no_bias"]) == ((rate, rate), (rate, rate),
                                                                                   304, "False")
    for conv in ("conv3_1_1x1_reduce", "conv3_1_1x1_proj"):
        assert _attrs(nodes[conv])["stride"] == (2, 2)
    assert _attrs(nodes["conv3_1_3x3"])["stride"] == (1, 1)
    batchnorms = [_attrs(n) for n in nodes.values() if n["op"] == "BatchNorm"]
    assert len(batchnorms) == 106
    assert all((bn["eps"], bn["fix_gamma"], bn["use_global_stats"]) == (1e-6, "False", "True") for bn in batchnorms)
    (pool,) = [_attrs(n) for n in nodes.values() if n["op"] == "Pooling"]
    assert (pool["kernel"], pool["stride"], pool["pad"], pool["pool_type"], pool["pooling_convention"]) == (
        (3, 3), (2, 2), (0, 0), "max", "valid")
