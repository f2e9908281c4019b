"""The CPU's int8 matrix-product peak, measured with OpenVINO (what runs the int8 convolutions).

A ``size x size x size`` product in QDQ form (``QuantizeLinear``/``DequantizeLinear`` on both
operands, as :func:`tusimple_duc.io.onnx_quantize.quantize_qdq` writes the convolutions), compiled
by OpenVINO's CPU plugin with the hint f32: it fuses the pairs into an int8 ``MatMul`` (u8
activations x i8 weights), like the int8 convolutions. The same product without QDQ gives
OpenVINO's fp32 figure on the same shape. Best of ``repeats`` runs, all threads. The op counts
are 2 size^3 in both (a multiply-add is two operations), so the int8 peak is comparable with the
GFLOP/s of the int8 variants.
"""
from __future__ import annotations

import time
from typing import Dict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tusimple_duc.io.onnx_graph import ONNX_OPSET


def matmul_model(size: int, quantized: bool, seed: int = 0) -> onnx.ModelProto:
    """``y = a @ W`` (a: (size, size) float32 input; W: random constant), in QDQ int8 form if ``quantized``."""
    weight = np.random.RandomState(seed).randint(-127, 128, (size, size)).astype(np.int8)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "a_scale"),
             numpy_helper.from_array(np.array(0, np.uint8), "a_zero"),
             numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "w_zero")]
    if quantized:
        inits.append(numpy_helper.from_array(weight, "w_q"))
        nodes = [helper.make_node("QuantizeLinear", ["a", "a_scale", "a_zero"], ["a_q"]),
                 helper.make_node("DequantizeLinear", ["a_q", "a_scale", "a_zero"], ["a_dq"]),
                 helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"]),
                 helper.make_node("MatMul", ["a_dq", "w"], ["y"])]
    else:
        inits = [numpy_helper.from_array(weight.astype(np.float32) * 0.01, "w")]
        nodes = [helper.make_node("MatMul", ["a", "w"], ["y"])]
    graph = helper.make_graph(nodes, "matmul", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])


def matmul_precision(compiled) -> str:
    """The runtime precision OpenVINO executes the MatMul in (``i8``/``u8``: int8, ``f32``)."""
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in ("MatMul", "FullyConnected"):
            return info["runtimePrecision"].astype(str).lower()
    raise ValueError("no MatMul in OpenVINO's runtime model")


def int8_gemm_peak(size: int = 4096, repeats: int = 5) -> Dict[str, object]:
    """``{"int8_gops", "fp32_gflops", "int8_runtime_precision", "size"}``: best-of-``repeats``
    throughput of the QDQ int8 product and of the fp32 one in OpenVINO (module docstring)."""
    import openvino

    core = openvino.Core()
    a = np.random.RandomState(1).uniform(0, 6, (size, size)).astype(np.float32)
    results: Dict[str, object] = {"size": size}
    for key, quantized in (("int8_gops", True), ("fp32_gflops", False)):
        model = core.read_model(matmul_model(size, quantized).SerializeToString(), b"")
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        compiled(a)   # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            compiled(a)
            best = min(best, time.perf_counter() - start)
        results[key] = 2.0 * size ** 3 / best / 1e9
        if quantized:
            results["int8_runtime_precision"] = matmul_precision(compiled)
    return results
