"""Export of the comparison systems (``models.systems``): symbol JSON + params under plain
mx.mod.Module, and the clean ONNX model in ONNX Runtime and OpenVINO, against the Gluon network."""

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import onnx
import pytest

from io_helpers import assert_runtimes_equal_silently, load_tool, module_forward, numpy_softmax, random_checkpoint
from tusimple_duc.io.checkpoint import load_checkpoint
from tusimple_duc.io.export import export_model
from tusimple_duc.io.onnx_graph import ONNX_OPSET
from tusimple_duc.models.presets import get_model
from tusimple_duc.models.systems import SYSTEM_PRESETS, get_system_spec

TINY_SYSTEMS = [name for name in SYSTEM_PRESETS if name.startswith("tiny_")]
ODD = (45, 67)  # not a multiple of any stride: exercises the crops, ceil sizes and dynamic resizes


def _checkpoint(tmp_path, preset, seed=4, num_classes=3):
    return random_checkpoint(tmp_path, preset, 2, seed, 64, num_classes=num_classes)


@pytest.mark.parametrize("preset", TINY_SYSTEMS)
def test_system_export_equals_gluon_in_module_onnxruntime_and_openvino(tmp_path, capfd, preset):
    prefix, net = _checkpoint(tmp_path, preset)
    onnx_path = str(tmp_path / f"{preset}.onnx")
    result = export_model(prefix, 2, str(tmp_path / "out"), get_system_spec(preset, num_classes=3),
                          shape=(64, 64), onnx_path=onnx_path)
    x = np.random.RandomState(1).uniform(-60, 60, (2, 3) + ODD).astype(np.float32)
    expected = numpy_softmax(net, x)
    assert expected.std() > 1e-3  # far from uniform at the 1e-4 tolerance: the comparison can fail

    np.testing.assert_allclose(module_forward(str(tmp_path / "out"), 0, x), expected, rtol=0, atol=1e-4)
    if preset != "tiny_pspnet":  # (PSPNet's export has no auxiliary head)
        copy = get_model(preset, num_classes=3)
        load_checkpoint(copy, str(tmp_path / "out"), 0)  # the export is a checkpoint again, symbol checked
        np.testing.assert_allclose(numpy_softmax(copy, x), expected, rtol=0, atol=1e-6)

    model = onnx.load(result.onnx)
    assert [i.name for i in model.graph.input] == ["data"]
    assert [(o.domain, o.version) for o in model.opset_import] == [("", ONNX_OPSET)]
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)
    assert_runtimes_equal_silently(onnx_path, x, expected, capfd)


def test_pspnet_with_its_auxiliary_output_exports_the_inference_graph(tmp_path):
    prefix, net = _checkpoint(tmp_path, "tiny_pspnet")
    spec = get_system_spec("tiny_pspnet", num_classes=3, auxiliary=True)
    result = export_model(prefix, 2, str(tmp_path / "out"), spec)
    assert mx.sym.load(result.symbol).list_outputs() == ["seg_loss_output"]
    x = np.random.RandomState(2).uniform(-60, 60, (1, 3, 40, 48)).astype(np.float32)
    np.testing.assert_allclose(module_forward(str(tmp_path / "out"), 0, x), numpy_softmax(net, x), rtol=0, atol=1e-4)


def test_export_tool_takes_a_system_preset(tmp_path, capsys):
    prefix, _ = _checkpoint(tmp_path, "tiny_deeplabv3", num_classes=19)
    out = str(tmp_path / "out")
    assert load_tool("export_model").main(["--prefix", prefix, "--epoch", "2", "--out", out, "--preset",
                                           "tiny_deeplabv3", "--shape", "64,64", "--onnx", out + ".onnx"]) == 0
    assert capsys.readouterr().out.split() == [out + "-symbol.json", out + "-0000.params", out + ".onnx"]
