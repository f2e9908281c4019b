"""``[inference] dilated_conv_form = taps`` on the ONNX backends: the DUC head's dilated
convolutions rewritten, outputs equal to the direct form, errors where it does not apply, and
``precision = auto`` measuring both forms."""
import collections

import numpy as np
import onnx
import pytest

import tusimple_duc  # noqa: F401  (before mxnet)

from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.backends import make_forward, runtime_model_bytes, tap_weights
from tusimple_duc.inference.fast import INT8_FP32_DEFAULT
from tusimple_duc.inference.precision_auto import auto_forward, candidates, parse_candidate
from inference_toys import initialised_preset

SHAPE = (64, 96)


@pytest.fixture(scope="module")
def tiny():
    return initialised_preset("tiny_duc_hdc")


@pytest.fixture(scope="module")
def batch():
    return np.random.RandomState(4).uniform(-120, 120, (2, 3) + SHAPE).astype(np.float32)


def _dilated_conv_weights(model):
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    return {node.input[1] for node in model.graph.node if node.op_type == "Conv" and node.input[1] in weights
            and weights[node.input[1]].shape[2:] == (3, 3)
            and any(a.name == "dilations" and max(a.ints) > 1 for a in node.attribute)}


def test_taps_rewrite_exactly_the_head_aspp_branches(tiny):
    direct = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "fp32", None, None, ()))
    head_branches = {f"fc1_cityscapes_c{k}_weight" for k in range(4)}  # ASPP4: four dilated branches
    assert head_branches <= _dilated_conv_weights(direct)
    assert set(tap_weights(tiny, direct)) == head_branches
    taps = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "fp32", None, None, (), "taps"))
    assert _dilated_conv_weights(taps) == _dilated_conv_weights(direct) - head_branches  # backbone unchanged
    assert collections.Counter(n.op_type for n in taps.graph.node)["Slice"] == 9 * 4


def test_phases_rewrite_the_same_branches_with_one_dense_convolution_each(tiny):
    direct = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "fp32", None, None, ()))
    phases = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "fp32", None, None, (), "phases"))
    head_branches = {f"fc1_cityscapes_c{k}_weight" for k in range(4)}
    assert _dilated_conv_weights(phases) == _dilated_conv_weights(direct) - head_branches
    kinds = collections.Counter(n.op_type for n in phases.graph.node)
    assert kinds["SpaceToDepth"] == kinds["DepthToSpace"] == 4
    assert kinds["Conv"] == collections.Counter(n.op_type for n in direct.graph.node)["Conv"]   # one for one


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("form", ["taps", "phases"])
def test_rewritten_forms_equal_the_direct_form(tiny, batch, backend, form):
    direct = make_forward(tiny, backend, "fp32")(batch)
    rewritten = make_forward(tiny, backend, "fp32", conv_form=form)(batch)
    assert rewritten.shape == direct.shape == (2, 19, 32, 48)
    np.testing.assert_allclose(rewritten, direct, rtol=0, atol=1e-5)


def test_int8_keeps_the_head_fp32_so_its_taps_apply(tiny, batch):
    calibration = batch[:1]
    model = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "int8", None, calibration,
                                                      INT8_FP32_DEFAULT, "taps"))
    kinds = collections.Counter(n.op_type for n in model.graph.node)
    assert kinds["Slice"] == 36 and kinds["QuantizeLinear"] > 0
    quantized_head = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "int8", None, calibration,
                                                               ("residual",), "taps"))
    assert collections.Counter(n.op_type for n in quantized_head.graph.node)["Slice"] == 0  # head int8: direct
    out = make_forward(tiny, "onnxruntime", "int8", calibration=calibration, conv_form="taps")(batch)
    ref = make_forward(tiny, "onnxruntime", "int8", calibration=calibration)(batch)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def test_taps_where_they_do_not_apply_are_one_line_errors(tiny):
    with pytest.raises(ConfigError, match="^\\[inference\\] dilated_conv_form = taps rewrites the ONNX export: "
                                          "it needs backend openvino or onnxruntime, not mxnet$"):
        make_forward(tiny, "mxnet", "fp32", conv_form="taps")
    with pytest.raises(ConfigError, match="this network has no DUC head"):
        make_forward(initialised_preset("tiny_baseline"), "onnxruntime", "fp32", conv_form="taps")
    with pytest.raises(ConfigError, match="dilated_conv_form = sideways: unknown"):
        make_forward(tiny, "onnxruntime", "fp32", conv_form="sideways")
    with pytest.raises(ConfigError, match="^\\[inference\\] dilated_conv_form = auto compares forms of the ONNX "
                                          "export: it needs backend openvino or onnxruntime, not mxnet$"):
        auto_forward(tiny, "mxnet", np.zeros((1, 3, 32, 32), np.float32), None, 1, "", conv_form="auto")


def test_auto_candidates_per_form():
    assert candidates("openvino", "direct") == ["fp32", "bf16", "int8", "int8-bf16"]
    assert candidates("onnxruntime", "taps") == ["fp32", "fp32+taps", "int8+taps"]
    assert candidates("openvino", "auto") == ["fp32", "bf16", "int8", "int8-bf16", "fp32+taps", "bf16+taps",
                                              "int8+taps", "int8-bf16+taps", "fp32+phases", "bf16+phases",
                                              "int8+phases", "int8-bf16+phases"]
    assert candidates("onnxruntime", "phases") == ["fp32", "fp32+phases", "int8+phases"]
    assert parse_candidate("bf16+taps") == ("bf16", "taps") and parse_candidate("int8") == ("int8", "direct")


def test_precision_auto_picks_the_faster_form_and_caches_per_form(tiny, batch, tmp_path):
    seconds = {"fp32": 3.0, "fp32+taps": 2.0, "int8": 2.5, "int8+taps": 4.0, "fp32+phases": 2.2,
               "int8+phases": 2.1}
    timed = []

    def timer(forward, _):
        timed.append(forward.precision)
        return seconds[forward.precision]

    choice, forward = auto_forward(tiny, "onnxruntime", batch[:1], None, 1, str(tmp_path), timer=timer,
                                   conv_form="auto")
    assert set(choice.seconds) == set(seconds) and choice.precision == "fp32+taps" == forward.precision
    assert choice.agreement["fp32+taps"] == 1.0  # exact rewrite: the same argmax everywhere
    again, _ = auto_forward(tiny, "onnxruntime", batch[:1], None, 1, str(tmp_path), timer=timer, conv_form="auto")
    assert again.cached and again.precision == "fp32+taps"
    count = len(timed)
    direct_only, _ = auto_forward(tiny, "onnxruntime", batch[:1], None, 1, str(tmp_path), timer=timer)
    assert not direct_only.cached and direct_only.precision in ("fp32", "int8")  # another cache entry
    assert set(timed[count:]) == {"fp32", "int8"}
