"""tools/bench.py on the comparison systems (main section): tiny FCN-8s (predictions at the input
resolution, zero-initialised score layers) and tiny PSPNet (predictions at stride 8, an auxiliary
head the exported graph leaves out).

The timings mean nothing at this size. What is checked: every applicable variant is measured and
agrees with the reference, the reference and ONNX Runtime outputs equal independent runs (an
imperative Gluon forward of the saved weights, a separate ``onnxruntime`` session on the saved
ONNX, ``mx.mod.Module`` on the saved graph), the outputs are not constant (FCN's zero score
layers would make every check vacuous), and DUC-only requests are one-line errors.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import warnings

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
import mxnet as mx
import numpy as np
import onnxruntime
import pytest

from tusimple_duc.io.checkpoint import load_checkpoint
from tusimple_duc.models import get_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench  # noqa: E402
from experiments.bench.peers import PEER_VARIANTS  # noqa: E402

#: what test.py runs a system with: MXNet fp32, OpenVINO fp32/bf16, ONNX Runtime fp32 (+ Module)
APPLICABLE = {"gluon", "module", "openvino-fp32", "openvino-bf16", "onnxruntime-fp32"}
DUC_ONLY = {"torch", "openvino-int8", "openvino-int8-all", "onnxruntime-int8", "predict-whole", "predict-openvino", "bare-openvino",
            "openvino-int8-bf16", "openvino-taps-fp32", "openvino-taps-bf16", "openvino-taps-int8",
            "openvino-taps-int8-bf16", "openvino-phases-fp32", "openvino-phases-bf16", "openvino-phases-int8",
            "openvino-phases-int8-bf16", *PEER_VARIANTS}
SHAPE = (64, 96)
TAG = "64x96"
TOLERANCE = 1e-3


def run_bench(folder, preset, *extra):
    """``tools/bench.py`` main section at :data:`SHAPE`, one run; (exit code, JSON results, workdir)."""
    out, workdir = folder / f"{preset}.json", folder / f"work-{preset}"
    code = bench.main(["--preset", preset, "--shapes", TAG, "--runs", "1", "--gemm-size", "128",
                       "--workdir", str(workdir), "--out", str(out), *extra])
    return code, (json.loads(out.read_text()) if code == 0 else None), workdir


@pytest.fixture(scope="module")
def fcn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-fcn")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code, results, workdir = run_bench(folder, "tiny_fcn8s")
    assert code == 0
    return results, workdir, stdout.getvalue()


@pytest.fixture(scope="module")
def pspnet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-pspnet")
    code, results, workdir = run_bench(folder, "tiny_pspnet", "--main-variants", "gluon,module,onnxruntime-fp32")
    assert code == 0
    return results, workdir


def imperative_probabilities(preset: str, workdir) -> np.ndarray:
    """softmax(net(x)) of the saved weights on the saved input, Gluon not hybridized."""
    net = get_model(preset)
    load_checkpoint(net, str(workdir / "weights"), 0, ctx=mx.cpu())
    x = mx.nd.array(np.load(workdir / f"input-{TAG}.npy"))
    return mx.nd.softmax(net(x), axis=1).asnumpy()


def saved(workdir, variant: str) -> np.ndarray:
    return np.load(workdir / f"out-{TAG}-{variant}.npy")


def test_fcn_every_applicable_variant_agrees(fcn):
    results, _, _ = fcn
    (entry,) = results["main"]
    assert set(entry["variants"]) == APPLICABLE and not entry["unavailable"]
    for name, v in entry["variants"].items():
        assert v["reference"] == "gluon"
        if name == "openvino-bf16":
            assert v["argmax_agreement"] >= 0.9
        else:
            assert v["argmax_agreement"] == 1.0 and v["max_abs_difference"] < TOLERANCE
        assert v["peak_rss_mb"] > 0 and v["median_s"] > 0


def test_fcn_duc_only_variants_skipped_with_one_note(fcn):
    results, _, stdout = fcn
    notes = [line for line in stdout.splitlines() if "do not apply" in line]
    assert len(notes) == 1
    listed = set(notes[0].split(": ", 1)[1].split(" do not apply")[0].split(", "))
    assert listed == DUC_ONLY == set(results["not_applicable"])
    assert set(results["options"]["sections"]) == {"main"}


def test_fcn_outputs_equal_independent_runs(fcn):
    results, workdir, _ = fcn
    reference = saved(workdir, "gluon")
    assert reference.shape == (1, 19) + SHAPE    # FCN-8s predicts at the input resolution
    np.testing.assert_allclose(reference, imperative_probabilities("tiny_fcn8s", workdir), atol=1e-5)
    labels = reference.argmax(axis=1)
    assert len(np.unique(labels)) > 1 and reference.std(axis=(2, 3)).max() > 1e-3   # not a constant map
    session = onnxruntime.InferenceSession(str(workdir / "weights.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"data": np.load(workdir / f"input-{TAG}.npy")})
    np.testing.assert_allclose(saved(workdir, "onnxruntime-fp32"), onnx_out, atol=1e-6)
    assert "score_fr_weight" in results["weights"]["source"]


def test_fcn_throughput_from_the_graph_count(fcn):
    results, _, _ = fcn
    macs = results["macs"][TAG]["gemm"]
    assert macs > 0
    for v in results["main"][0]["variants"].values():
        assert v["gflops"] == pytest.approx(2 * macs / v["median_s"] / 1e9)


def test_pspnet_stride_8_outputs_and_module_graph(pspnet):
    results, workdir = pspnet
    (entry,) = results["main"]
    assert set(entry["variants"]) == {"gluon", "module", "onnxruntime-fp32"}
    for v in entry["variants"].values():
        assert v["argmax_agreement"] == 1.0 and v["max_abs_difference"] < TOLERANCE
    reference = saved(workdir, "gluon")
    assert reference.shape == (1, 19, SHAPE[0] // 8, SHAPE[1] // 8)
    np.testing.assert_allclose(reference, imperative_probabilities("tiny_pspnet", workdir), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = mx.mod.Module.load(str(workdir / "module"), 0, context=mx.cpu())
        module.bind(data_shapes=[("data", (1, 3) + SHAPE)], for_training=False)
    module.forward(mx.io.DataBatch([mx.nd.array(np.load(workdir / f"input-{TAG}.npy"))]), is_train=False)
    np.testing.assert_allclose(saved(workdir, "module"), module.get_outputs()[0].asnumpy(), atol=1e-6)
    assert not any(name.startswith("aux") for name in module.get_params()[0])   # the auxiliary head left out


@pytest.mark.parametrize("extra, named", [
    (["--sections", "main,levers"], "levers"),
    (["--sections", "precision"], "precision"),
    (["--main-variants", "gluon,module,torch"], "torch"),
    (["--main-variants", "gluon,openvino-int8"], "openvino-int8"),
])
def test_duc_only_requests_are_one_line_errors(tmp_path, capsys, extra, named):
    code = bench.main(["--preset", "tiny_fcn8s", "--shapes", TAG, "--workdir", str(tmp_path / "w"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "\n" not in err and named in err and "tiny_fcn8s" in err
