"""int8 on OpenVINO and ONNX Runtime: the QDQ export, its fp32 layer groups, agreement with fp32."""
import collections

import numpy as np
import onnx
import onnxruntime
import pytest

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx

from inference_toys import has_int8_dot_product
from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.backends import int8_fp32_weights, make_forward, runtime_model_bytes
from tusimple_duc.inference.fast import INT8_FP32_DEFAULT
from tusimple_duc.inference.precision_auto import auto_forward
from tusimple_duc.models.presets import get_model

SHAPE = (64, 128)


@pytest.fixture(scope="module")
def tiny():
    mx.random.seed(11)
    net = get_model("tiny_duc_hdc")
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, 32, 32)))
    return net


@pytest.fixture(scope="module")
def calibration():
    return np.random.RandomState(0).uniform(-120, 120, (2, 3) + SHAPE).astype(np.float32)


@pytest.fixture(scope="module")
def batch():
    return np.random.RandomState(1).uniform(-120, 120, (2, 3) + SHAPE).astype(np.float32)


def _kept_by_hand(net, groups):
    """The weights the groups keep fp32, from the network's structure: the head's, the last
    stage's, and every bottleneck's ``_1x1_increase`` (the convolution oneDNN fuses the sum into)."""
    kept = set()
    if "head" in groups:
        kept |= {n for n in net.head.collect_params() if n.endswith("_weight")}
    if "last_stage" in groups:
        kept |= {n for n in net.backbone.stages()[-1].collect_params() if n.endswith("_weight")}
    if "residual" in groups:
        kept |= {n for n in net.backbone.collect_params() if n.endswith("_1x1_increase_weight")}
    return kept


@pytest.mark.parametrize("groups", [INT8_FP32_DEFAULT, ("head",), ("residual",), ()])
def test_fp32_groups_map_onto_the_export_weights(tiny, groups):
    assert int8_fp32_weights(tiny, groups) == _kept_by_hand(tiny, groups)


def test_kept_groups_have_no_qdq_before_their_convolutions(tiny, calibration):
    model = onnx.load_from_string(runtime_model_bytes(tiny, "onnxruntime", "int8", None, calibration,
                                                      INT8_FP32_DEFAULT))
    producer = {output: node for node in model.graph.node for output in node.output}
    initializers = {init.name: init for init in model.graph.initializer}
    kept = _kept_by_hand(tiny, INT8_FP32_DEFAULT)
    convolutions = [node for node in model.graph.node if node.op_type == "Conv"]
    assert len(kept) < len(convolutions)
    for conv in convolutions:
        reads_dq = [name in producer and producer[name].op_type == "DequantizeLinear" for name in conv.input]
        if conv.input[1] in kept:
            assert not any(reads_dq), conv.input[1]
            assert initializers[conv.input[1]].data_type == onnx.TensorProto.FLOAT
        else:
            assert all(reads_dq), conv.input[1]


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_int8_agrees_with_fp32_and_loads_silently(tiny, calibration, batch, backend, capfd):
    capfd.readouterr()
    int8 = make_forward(tiny, backend, "int8", calibration=calibration)(batch)
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""
    fp32 = make_forward(tiny, "mxnet", "fp32")(batch)
    assert int8.shape == fp32.shape == (2, 19, 32, 64)
    assert not np.array_equal(int8, fp32)
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= (0.95 if has_int8_dot_product() else 0.90)
    # Tolerance: 8-bit activations carry about 2 significant digits (a step of 1/255 of the range,
    # relative error <= 0.2 % per tensor, compounding over the ~20 quantized layers); a probability
    # moves by at most 1/4 of its logit's change, and the head's logits are fp32 from int8-rounded
    # features: the mean difference stays near a thousandth (5x margin) and no probability moves by
    # more than 0.25 (a logit change of 1, the size at which argmaxes near ties flip).
    # Without int8 dot-product instructions the runtimes' int8 kernels were measured less exact
    # (mean 0.0053-0.0060, largest 0.42 on an AMD EPYC of family 23, AVX2): the bounds double there.
    difference = np.abs(int8 - fp32)
    widen = 1 if has_int8_dot_product() else 2
    assert difference.mean() < 0.005 * widen and difference.max() < 0.25 * widen


def test_the_runtimes_really_run_int8(tiny, calibration, tmp_path):
    model_bytes = runtime_model_bytes(tiny, "onnxruntime", "int8", None, calibration, INT8_FP32_DEFAULT)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    fused = collections.Counter(node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)
    assert fused["QLinearConv"] > 0
    import openvino

    core = openvino.Core()
    model = core.read_model(model_bytes)
    model.reshape({"data": list(calibration[:1].shape)})
    runtime = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).get_runtime_model()
    precisions = collections.Counter(op.get_rt_info()["runtimePrecision"].astype(str) for op in runtime.get_ops()
                                     if op.get_rt_info()["layerType"].astype(str) == "Convolution")
    assert precisions["u8"] + precisions["i8"] > 0 and precisions["f32"] > 0  # int8 and the kept fp32 ones


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_missing_calibration_is_one_line_error(tiny, backend):
    with pytest.raises(ConfigError, match=f"^\\[inference\\] precision = int8 with backend {backend} needs "
                                          "calibration inputs") as err:
        make_forward(tiny, backend, "int8")
    assert "\n" not in str(err.value)


def test_precision_auto_considers_int8(tiny, calibration, tmp_path):
    seconds = {"fp32": 3.0, "int8": 1.0}

    def timer(forward, batch):
        return seconds[forward.precision]

    choice, forward = auto_forward(tiny, "onnxruntime", calibration, None, 1, str(tmp_path), timer=timer)
    assert set(choice.agreement) == {"fp32", "int8"}
    assert choice.precision == ("int8" if choice.agreement["int8"] >= 0.99 else "fp32")
    assert forward.precision == choice.precision



def test_openvino_int8_bf16_runs_the_layers_not_quantized_in_bf16(tiny, calibration, batch):
    import openvino

    forward = make_forward(tiny, "openvino", "int8-bf16", calibration=calibration)
    model = forward.core.read_model(runtime_model_bytes(tiny, "openvino", "int8-bf16", None, calibration,
                                                        INT8_FP32_DEFAULT))
    model.reshape({"data": list(batch[:1].shape)})
    runtime = openvino.Core().compile_model(model, "CPU", forward.config).get_runtime_model()
    precisions = collections.Counter(op.get_rt_info()["runtimePrecision"].astype(str) for op in runtime.get_ops()
                                     if op.get_rt_info()["layerType"].astype(str) == "Convolution")
    # OpenVINO runs a bf16 hint in f32 on a CPU without bf16 instructions
    with open("/proc/cpuinfo") as f:
        kept = "bf16" if {"avx512_bf16", "amx_bf16"} & set(f.read().split()) else "f32"
    assert precisions["u8"] + precisions["i8"] > 0 and precisions[kept] > 0
    assert sum(precisions.values()) == precisions["u8"] + precisions["i8"] + precisions[kept]
    out = forward(batch)
    int8 = make_forward(tiny, "openvino", "int8", calibration=calibration)(batch)
    assert out.shape == int8.shape and (kept == "f32") == np.array_equal(out, int8)  # kept layers in bf16
    assert np.mean(out.argmax(axis=1) == int8.argmax(axis=1)) >= 0.9


def test_int8_cache_hit_reads_the_quantized_file(tiny, calibration, batch, tmp_path, monkeypatch):
    import tusimple_duc.inference.backends as backends

    stem = str(tmp_path / "tiny-0003")
    first = make_forward(tiny, "onnxruntime", "int8", calibration=calibration, int8_cache=stem)(batch)
    (cached,) = tmp_path.glob("tiny-0003.int8-*.onnx")

    def no_quantizing(*args, **kwargs):
        raise AssertionError("quantized again on a cache hit")

    monkeypatch.setattr(backends, "quantize_qdq", no_quantizing)
    again = make_forward(tiny, "onnxruntime", "int8", calibration=calibration, int8_cache=stem)(batch)
    np.testing.assert_array_equal(again, first)
    with pytest.raises(AssertionError, match="quantized again"):   # another setting: a miss
        make_forward(tiny, "onnxruntime", "int8", calibration=calibration, int8_cache=stem, int8_fp32=())
    assert list(tmp_path.glob("tiny-0003.int8-*.onnx")) == [cached]
