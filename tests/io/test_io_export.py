"""Export: the released-format files run under plain mx.mod.Module (inference and training), ONNX."""
import os
import warnings

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import onnxruntime
import pytest

from io_helpers import RELEASED, assert_runtimes_equal_silently, load_tool, module_forward, randomize, released_arrays
from tusimple_duc.errors import CheckpointError, ConfigError
from tusimple_duc.io.checkpoint import load_checkpoint, save_checkpoint
from tusimple_duc.io.export import export_model
from tusimple_duc.io.symbol import symbol_text, training_symbol
from tusimple_duc.layout import label_to_duc_layout
from tusimple_duc.models.presets import get_model, get_spec

TINY = "tiny_duc_hdc"


def pixel_probabilities(net, x: np.ndarray) -> np.ndarray:
    """Independent expectation of the ONNX output: softmax over classes of ``net(x)`` (N, L, H/c, W/c)."""
    scores = net(mx.nd.array(x)).asnumpy().astype(np.float64)
    prob = np.exp(scores - scores.max(axis=1, keepdims=True))
    return prob / prob.sum(axis=1, keepdims=True)


def released_layout_probabilities(net, x: np.ndarray) -> np.ndarray:
    """Independent expectation of the symbol's output: :func:`pixel_probabilities`, each class
    map laid out with :func:`tusimple_duc.layout.label_to_duc_layout` -> (N, L, r*r*h*w)."""
    prob = pixel_probabilities(net, x)
    ratio = net.output_stride // net.prediction_stride
    return np.stack([np.stack([label_to_duc_layout(p, ratio) for p in image]) for image in prob])


@pytest.fixture
def tiny_checkpoint(tmp_path):
    net = get_model(TINY)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    randomize(net, seed=7)
    prefix = str(tmp_path / "tiny")
    save_checkpoint(net, prefix, 3)
    return prefix, net


def test_tiny_export_runs_in_module_like_the_original_tester(tiny_checkpoint, tmp_path):
    prefix, net = tiny_checkpoint
    result = export_model(prefix, 3, str(tmp_path / "out"), TINY)
    assert (result.symbol, result.params, result.onnx) == (
        str(tmp_path / "out-symbol.json"), str(tmp_path / "out-0000.params"), None)
    x = np.random.RandomState(0).uniform(-120, 120, (1, 3, 64, 96)).astype(np.float32)
    out = module_forward(str(tmp_path / "out"), 0, x)
    assert out.shape == (1, 19, 16 * 8 * 12)
    np.testing.assert_allclose(out, released_layout_probabilities(net, x), rtol=0, atol=1e-5)


def test_released_preset_export_equals_gluon_at_64x64(tmp_path):
    prefix = str(tmp_path / "ResNet_DUC_HDC_CityScapes")
    mx.nd.save(prefix + "-0020.params", released_arrays(seed=3))
    export_model(prefix, 20, str(tmp_path / "export"), RELEASED)
    net = get_model(RELEASED)
    load_checkpoint(net, prefix, 20)
    x = np.random.RandomState(1).uniform(-120, 120, (1, 3, 64, 64)).astype(np.float32)
    out = module_forward(str(tmp_path / "export"), 0, x)
    assert out.shape == (1, 19, 16 * 8 * 8)
    np.testing.assert_allclose(out, released_layout_probabilities(net, x), rtol=0, atol=1e-5)


def test_exported_files_train_with_module_and_the_released_loss(tiny_checkpoint, tmp_path):
    prefix, _ = tiny_checkpoint
    export_model(prefix, 3, str(tmp_path / "out"), TINY)
    symbol, args, auxs = mx.model.load_checkpoint(str(tmp_path / "out"), 0)
    module = mx.mod.Module(symbol, data_names=["data"], label_names=["seg_loss_label"], context=mx.cpu())
    h, w, r, classes = 4, 6, 4, 19
    module.bind(data_shapes=[("data", (1, 3, 8 * h, 8 * w))],
                label_shapes=[("seg_loss_label", (1, r * r * h * w))], for_training=True)
    module.set_params(args, auxs)
    rng = np.random.RandomState(2)
    x = rng.uniform(-120, 120, (1, 3, 8 * h, 8 * w)).astype(np.float32)
    label = rng.randint(0, classes, (1, r * r * h * w)).astype(np.float32)
    label[0, rng.rand(r * r * h * w) < 0.3] = 255
    module.forward_backward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(label)]))
    prob = module.get_outputs()[0].asnumpy()[0]
    np.testing.assert_allclose(prob, module_forward(str(tmp_path / "out"), 0, x)[0], rtol=0, atol=1e-6)
    # SoftmaxOutput(use_ignore, normalization='valid'): d loss / d score = (p - onehot) / #valid, 0 where ignored
    valid = label[0] != 255
    grad = prob.copy()
    grad[label[0, valid].astype(int), np.flatnonzero(valid)] -= 1
    grad[:, ~valid] = 0
    grad /= valid.sum()
    # score channel l*r*r + j at cell (y, x) is element j*h*w + y*w + x of class l: bias gradient sums the cells
    expected_bias_grad = grad.reshape(classes, r * r, h * w).sum(axis=2).reshape(-1)
    grads = dict(zip(module._exec_group.param_names, module._exec_group.grad_arrays))
    for branch in range(4):
        np.testing.assert_allclose(grads[f"fc1_cityscapes_c{branch}_bias"][0].asnumpy(), expected_bias_grad,
                                   rtol=1e-4, atol=1e-7)


def test_onnx_equals_mxnet_with_dynamic_batch_and_size(tiny_checkpoint, tmp_path):
    """The ONNX gives the Module's probabilities in pixel layout (N, L, H/c, W/c), any N, H, W."""
    prefix, net = tiny_checkpoint
    onnx_path = str(tmp_path / "tiny.onnx")
    result = export_model(prefix, 3, str(tmp_path / "out"), TINY, shape=(64, 96), onnx_path=onnx_path)
    assert result.onnx == onnx_path
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    assert [o.name for o in session.get_outputs()] == ["seg_prob"]
    rng = np.random.RandomState(4)
    for shape in ((1, 3, 64, 96), (2, 3, 32, 64)):
        x = rng.uniform(-120, 120, shape).astype(np.float32)
        flat = np.concatenate([module_forward(str(tmp_path / "out"), 0, x[i:i + 1]) for i in range(shape[0])])
        np.testing.assert_allclose(flat, released_layout_probabilities(net, x), rtol=0, atol=1e-4)
        (out,) = session.run(None, {"data": x})
        assert out.shape == (shape[0], 19, shape[2] // 2, shape[3] // 2)
        np.testing.assert_allclose(out, pixel_probabilities(net, x), rtol=0, atol=1e-4)


def test_export_from_a_gluon_parameter_file(tiny_checkpoint, tmp_path):
    _, net = tiny_checkpoint
    net.save_parameters(str(tmp_path / "gluon.params"))
    export_model(str(tmp_path / "gluon.params"), None, str(tmp_path / "out"), TINY)
    x = np.random.RandomState(5).uniform(-120, 120, (1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(module_forward(str(tmp_path / "out"), 0, x), released_layout_probabilities(net, x),
                               rtol=0, atol=1e-5)


def test_export_errors(tiny_checkpoint, tmp_path):
    prefix, _ = tiny_checkpoint
    with pytest.raises(ConfigError, match="shape 60,96: H and W must be positive multiples of the output stride 8"):
        export_model(prefix, 3, str(tmp_path / "out"), TINY, shape=(60, 96), onnx_path=str(tmp_path / "x.onnx"))
    with pytest.raises(CheckpointError, match="tiny-symbol.json: symbol describes another network: 5 missing") as err:
        export_model(prefix, 3, str(tmp_path / "out"), "tiny_baseline")
    assert str(err.value).endswith("(the checkpoint is not preset tiny_baseline: choose its preset or training config)")
    assert not (tmp_path / "out-0000.params").exists() and not (tmp_path / "x.onnx").exists()


def test_export_tool(tiny_checkpoint, tmp_path, capsys):
    from tusimple_duc.cli import run_cli

    prefix, _ = tiny_checkpoint
    tool = load_tool("export_model")
    out = str(tmp_path / "cli")
    assert tool.main(["--prefix", prefix, "--epoch", "3", "--out", out, "--preset", TINY]) == 0
    assert capsys.readouterr().out.split() == [out + "-symbol.json", out + "-0000.params"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_cli(tool.main, ["--prefix", prefix, "--epoch", "9", "--out", out, "--preset", TINY,
                                     "--overwrite"]) == 2
    assert capsys.readouterr().err == f"error: {prefix}-0009.params: no such checkpoint (epochs found: 3)\n"
    with pytest.raises(SystemExit) as exit_code:
        tool.main(["--prefix", prefix, "--out", out, "--shape", "64x96"])
    assert exit_code.value.code == 2 and "expected H,W" in capsys.readouterr().err


# A network no preset describes: 3 classes, DeepLab rates (same shapes as the preset's released rates).
CUSTOM = dict(num_classes=3, dilation_schedule="deeplab")
CUSTOM_CONFIG = """[env]
use_cpu = True
[network]
preset = tiny_duc_hdc
label_num = 3
dilation_schedule = deeplab
[data]
train_list = train.lst
"""


@pytest.fixture
def custom_checkpoint(tmp_path):
    net = get_model(TINY, **CUSTOM)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    randomize(net, seed=9)
    prefix = str(tmp_path / "custom")
    save_checkpoint(net, prefix, 2)
    return prefix, net


@pytest.mark.parametrize("how", ["symbol", "config"])
def test_a_network_without_preset_exports_from_its_symbol_or_its_training_config(custom_checkpoint, tmp_path, how):
    prefix, net = custom_checkpoint
    config = tmp_path / "train.cfg"
    config.write_text(CUSTOM_CONFIG)
    out = str(tmp_path / "out")
    export_model(prefix, 2, out, config=str(config) if how == "config" else None)
    with open(out + "-symbol.json") as handle:
        assert handle.read() == symbol_text(training_symbol(get_spec(TINY, **CUSTOM)))
    x = np.random.RandomState(6).uniform(-120, 120, (1, 3, 32, 64)).astype(np.float32)
    np.testing.assert_allclose(module_forward(out, 0, x), released_layout_probabilities(net, x), rtol=0, atol=1e-5)


def test_the_preset_of_a_custom_network_is_refused_naming_the_dilation(custom_checkpoint, tmp_path):
    prefix, _ = custom_checkpoint
    with pytest.raises(CheckpointError, match=r"arg:fc1_cityscapes_c0_weight: file \(48, 256, 3, 3\) vs network \(304"):
        export_model(prefix, 2, str(tmp_path / "out"), TINY)
    with pytest.raises(CheckpointError, match="layer conv4_3_3x3: .* dilate 2 .* the network has .* dilate 5"):
        export_model(prefix, 2, str(tmp_path / "out"), get_spec(TINY, num_classes=3))


def test_export_tool_architecture_options(custom_checkpoint, tmp_path, capsys):
    from tusimple_duc.cli import run_cli

    prefix, _ = custom_checkpoint
    tool = load_tool("export_model")
    out = str(tmp_path / "cli")
    config = tmp_path / "train.cfg"
    config.write_text(CUSTOM_CONFIG)
    assert tool.main(["--prefix", prefix, "--epoch", "2", "--out", out, "--config", str(config)]) == 0
    assert tool.main(["--prefix", prefix, "--epoch", "2", "--out", out, "--overwrite"]) == 0
    capsys.readouterr()
    assert run_cli(tool.main, ["--prefix", prefix + "-0002.params", "--out", out, "--overwrite"]) == 2
    assert capsys.readouterr().err == (f"error: {prefix}-0002.params: a params file has no -symbol.json to read "
                                       f"the architecture from; give a preset or a training config\n")
    os.remove(prefix + "-symbol.json")
    assert run_cli(tool.main, ["--prefix", prefix, "--epoch", "2", "--out", out, "--overwrite"]) == 2
    assert capsys.readouterr().err == (f"error: {prefix}-symbol.json: no symbol JSON to read the architecture "
                                       f"from; give a preset or a training config\n")
    with pytest.raises(SystemExit):
        tool.main(["--prefix", prefix, "--out", out, "--preset", TINY, "--config", str(config)])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("preset, params_seed", [(TINY, None), (RELEASED, 3)])
def test_clean_onnx_loads_silently_and_equals_mxnet_in_both_runtimes(tmp_path, capfd, preset, params_seed):
    import onnx

    from tusimple_duc.io.onnx_graph import ONNX_OPSET

    if params_seed is None:
        net = get_model(preset)
        net.initialize()
        net(mx.nd.zeros((1, 3, 32, 32)))
        randomize(net, seed=9)
        prefix = str(tmp_path / "ck")
        save_checkpoint(net, prefix, 1)
        epoch = 1
    else:
        prefix, epoch = str(tmp_path / "ResNet_DUC_HDC_CityScapes"), 20
        mx.nd.save(prefix + "-0020.params", released_arrays(seed=params_seed))
        net = get_model(preset)
        load_checkpoint(net, prefix, epoch)
    onnx_path = str(tmp_path / "net.onnx")
    export_model(prefix, epoch, str(tmp_path / "out"), preset, shape=(64, 64), onnx_path=onnx_path)
    model = onnx.load(onnx_path)
    assert [i.name for i in model.graph.input] == ["data"]
    assert [(o.domain, o.version) for o in model.opset_import] == [("", ONNX_OPSET)]
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)
    assert not any(n.op_type == "Div" for n in model.graph.node)
    x = np.random.RandomState(6).uniform(-120, 120, (1, 3, 64, 64)).astype(np.float32)
    expected = pixel_probabilities(net, x)
    assert_runtimes_equal_silently(onnx_path, x, expected, capfd)


def test_batch_norm_folding_is_exact_on_a_hand_made_graph():
    import onnx
    from onnx import helper, numpy_helper

    from tusimple_duc.io.onnx_graph import fold_batch_norms

    rng = np.random.RandomState(0)
    w = rng.standard_normal((2, 1, 1, 1)).astype(np.float32)
    gamma, beta = np.array([2.0, 0.5], np.float32), np.array([1.0, -1.0], np.float32)
    mean, var = np.array([0.5, -2.0], np.float32), np.array([3.0, 0.25], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"]),
         helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], epsilon=1.0)],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 1, 1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 1, 1])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (gamma, "g"), (beta, "b"), (mean, "m"), (var, "v"))])
    assert fold_batch_norms(graph) == 1
    (conv,) = graph.node
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    # by hand: y = gamma * (w x - mean) / sqrt(var + 1) + beta; sqrt(4) = 2, sqrt(1.25)
    np.testing.assert_allclose(arrays[conv.input[1]].ravel(), w.ravel() * [2.0 / 2.0, 0.5 / np.sqrt(1.25)], rtol=1e-6)
    np.testing.assert_allclose(arrays[conv.input[2]], [-0.5 * 1.0 + 1.0, 2.0 * 0.5 / np.sqrt(1.25) - 1.0], rtol=1e-6)
    assert list(conv.output) == ["y"]
