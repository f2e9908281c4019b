"""symbols/: committed preset symbols are current; the released one is the original's graph node for node."""
import ast
import json
import os
import warnings

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

import numpy as np
import released_manifest
from io_helpers import REPO, RELEASED, RELEASED_STAGE4_DILATIONS, RELEASED_STAGE5_DILATIONS, load_tool, randomize
from original_graph import original_symbol
from tusimple_duc.io.checkpoint import checkpoint_arrays
from tusimple_duc.io.export import preset_symbol_text
from tusimple_duc.io.symbol import symbol_text, training_symbol
from tusimple_duc.models.systems import SYSTEM_PRESETS
from tusimple_duc.models.presets import PRESETS, get_model, get_spec

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
    files = [name for name in os.listdir(FOLDER) if os.path.isfile(os.path.join(FOLDER, name))]
    assert sorted(files) == sorted(f"{name}-symbol.json" for name in PRESETS)


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
    assert len(capsys.readouterr().out.split()) == len(PRESETS) + len(SYSTEM_PRESETS)
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
        assert head == {"dilate": (rate, rate), "pad": (rate, rate), "num_filter": 304, "kernel": (3, 3),
                        "workspace": 8192}  # with bias: MXNet's default no_bias False
    for conv in ("conv3_1_1x1_reduce", "conv3_1_1x1_proj"):
        assert _attrs(nodes[conv])["stride"] == (2, 2)
    assert _attrs(nodes["conv3_1_3x3"])["stride"] == (1, 1)
    batchnorms = [_attrs(n) for n in nodes.values() if n["op"] == "BatchNorm"]
    assert len(batchnorms) == 106
    assert all((bn["eps"], bn["fix_gamma"], bn["use_global_stats"]) == (1e-6, "False", "True") for bn in batchnorms)
    assert all(bn["momentum"] == 0.9995 for bn in batchnorms)
    (pool,) = [_attrs(n) for n in nodes.values() if n["op"] == "Pooling"]
    assert pool == {"kernel": (3, 3), "stride": (2, 2), "pool_type": "max"}  # pad 0, 'valid': MXNet defaults


def _graph(symbol) -> dict:
    graph = json.loads(symbol.tojson())
    graph["attrs"].pop("mxnet_version", None)
    return graph


@pytest.mark.parametrize("options", [
    {}, dict(label_num=7, ignore_label=0, aspp_num=2, aspp_stride=3, cell_cap=64, exp="kitti"),
    dict(bn_use_global_stats=False, aspp_num=1, cell_cap=4)])
def test_exported_graph_equals_the_original_network_code_node_by_node(options):
    """Names, ops, inputs (order) and attributes of every node, arg/aux order and heads."""
    original = _graph(original_symbol(**options))
    ratio = {64: 8, 16: 4, 4: 2}[options.get("cell_cap", 16)]
    spec = get_spec(RELEASED, num_classes=options.get("label_num", 19), aspp=options.get("aspp_num", 4),
                    aspp_stride=options.get("aspp_stride", 6), cell_width=8 // ratio,
                    head_name="fc1_" + options.get("exp", "cityscapes"),
                    bn_use_global_stats=options.get("bn_use_global_stats", True))
    ours = _graph(training_symbol(spec, ignore_label=options.get("ignore_label", 255)))
    assert len(ours["nodes"]) == len(original["nodes"])
    for mine, theirs in zip(ours["nodes"], original["nodes"]):
        assert mine == theirs
    assert ours == original


def test_internal_outputs_are_picked_by_the_original_names():
    internals = mx.sym.load_json(committed(RELEASED)).get_internals()
    outputs = set(internals.list_outputs())
    assert {"conv1_1_3x3_s2/relu_output", "pool1_3x3_s2_output", "conv2_1_output", "res3_1_output",
            "res4_2_output", "conv4_23_3x3/relu_output", "res5_3_relu_output", "fc1_cityscapes_output",
            "cls_score_reshape_output"} <= outputs
    shapes = dict(zip(internals.list_outputs(), internals.infer_shape(data=(1, 3, 64, 64))[1]))
    assert shapes["res5_3_relu_output"] == (1, 2048, 8, 8) and shapes["fc1_cityscapes_output"] == (1, 304, 8, 8)


@pytest.mark.parametrize("name", ["tiny_duc_hdc", "tiny_baseline", "tiny_deconv",
                                  ("tiny_duc_hdc", dict(output_stride=4, cell_width=1, stem="classic")),
                                  ("tiny_duc_hdc", dict(output_stride=16, stride_in_1x1=False, aspp=0)),
                                  ("tiny_deconv", dict(deconv_mode="two-step"))])
def test_module_on_the_symbol_computes_the_gluon_network(name):
    name, overrides = (name, {}) if isinstance(name, str) else name
    net = get_model(name, **overrides)
    net.initialize()
    x = np.random.RandomState(0).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    net(mx.nd.array(x))
    randomize(net, seed=5)
    arrays = checkpoint_arrays(net)
    module = mx.mod.Module(training_symbol(net), data_names=["data"], label_names=["seg_loss_label"],
                           context=mx.cpu())
    with warnings.catch_warnings():  # no label shape: inference only, like the original tester
        warnings.simplefilter("ignore")
        module.bind(data_shapes=[("data", x.shape)], for_training=False)
    module.set_params({k[4:]: v for k, v in arrays.items() if k.startswith("arg:")},
                      {k[4:]: v for k, v in arrays.items() if k.startswith("aux:")})
    module.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    scores = net.head_scores(mx.nd.array(x)).asnumpy()
    flat = scores.reshape(scores.shape[0], net.num_classes, -1)
    expected = np.exp(flat - flat.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(module.get_outputs()[0].asnumpy(), expected, rtol=0, atol=2e-6)
