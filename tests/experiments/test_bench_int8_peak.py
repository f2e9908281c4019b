"""The int8 GEMM peak of the benchmark (experiments/bench/int8_peak.py): the QDQ product computes the
quantized product (NumPy), and OpenVINO really runs it in int8 (its runtime model says so)."""
import numpy as np
import onnxruntime

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
from experiments.bench.int8_peak import int8_gemm_peak, matmul_model

SIZE = 64


def test_the_qdq_product_is_the_quantized_product():
    steps = np.random.RandomState(3).randint(-20, 300, (SIZE, SIZE))   # off the rounding ties: step + 0.2
    a = ((steps + 0.2) * 0.05).astype(np.float32)
    options = onnxruntime.SessionOptions()   # the graph's own semantics: ORT's u8 x s8 fusion saturates on AVX2
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(matmul_model(SIZE, True).SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    weight = np.random.RandomState(0).randint(-127, 128, (SIZE, SIZE)).astype(np.float64) * 0.01
    a_q = np.clip(steps, 0, 255) * 0.05   # u8 per tensor, zero point 0: negatives clip to 0, 255 at most
    np.testing.assert_allclose(session.run(None, {"a": a})[0], a_q @ weight, rtol=1e-5, atol=1e-3)
    fp32 = onnxruntime.InferenceSession(matmul_model(SIZE, False).SerializeToString(),
                                        providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(fp32.run(None, {"a": a})[0], a @ weight, rtol=1e-5, atol=1e-3)


def test_openvino_runs_the_product_in_int8():
    peak = int8_gemm_peak(SIZE, repeats=1)
    assert peak["int8_runtime_precision"] in ("u8", "i8") and peak["size"] == SIZE
    assert peak["int8_gops"] > 0 and peak["fp32_gflops"] > 0
