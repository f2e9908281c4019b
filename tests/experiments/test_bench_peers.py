"""Peer variants of the benchmark (experiments/bench/peers.py, peer_worker.py) with the project's own
interpreter as the "peer python": it has openvino but not nncf, so the NNCF variants must come out
as unavailable in this interpreter, cleanly. The peer runs behind a wrapper that makes importing
mxnet, tusimple_duc or the experiments package fail: the peer worker must need none of them.
"""
from __future__ import annotations

import os
import stat
import sys

import numpy as np
import onnxruntime
import pytest

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
from experiments.bench.peers import PEER_SCRIPT, PEER_VARIANTS, peer_command, probe, unavailable_reason
from experiments.bench.process import BenchError
from experiments.bench.suite import BenchOptions, Suite

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools"))
import bench  # noqa: E402

SHAPE = (64, 128)
VARIANTS = ("gluon", "peer-openvino-fp32", "peer-openvino-default", "peer-nncf-int8", "openvino-int8")
PRECISION_PEERS = ("peer-openvino-fp32", "peer-nncf-int8")
#: a Python that refuses to import the project: ``sys.modules[name] = None`` makes ``import name`` fail
BLOCKING_PYTHON = """#!/bin/sh
exec "{python}" -c 'import runpy, sys
sys.modules.update(mxnet=None, tusimple_duc=None, experiments=None)
sys.argv = sys.argv[1:]
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
runpy.run_path(sys.argv[0], run_name="__main__")' "$@"
"""


@pytest.fixture(scope="module")
def blocking_python(tmp_path_factory):
    path = tmp_path_factory.mktemp("peer-python") / "python"
    path.write_text(BLOCKING_PYTHON.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory, blocking_python):
    workdir = tmp_path_factory.mktemp("peers")
    options = BenchOptions(workdir=str(workdir), preset="tiny_duc_hdc", shapes=(SHAPE,), runs=2, warmup=0,
                           sections=("main", "precision"), calibration_images=2, precision_images=2,
                           gemm_size=128, main_variants=VARIANTS, precision_backends=PRECISION_PEERS,
                           peer_python=blocking_python)
    return Suite(options, log=lambda line: None).run(), workdir


def test_the_probe_reports_what_the_interpreter_has(blocking_python):
    probed = probe(blocking_python)
    assert probed["versions"]["nncf"] is None and probed["versions"]["openvino"]
    assert probed["versions"]["numpy"] == np.__version__
    assert probed["project_modules_loaded"] == []


def test_peers_run_interleaved_checked_and_measured(run):
    results, workdir = run
    entry = results["main"][0]
    variants = entry["variants"]
    assert list(variants) == ["gluon", "peer-openvino-fp32", "peer-openvino-default", "openvino-int8"]
    assert entry["interleaved"]
    fp32 = variants["peer-openvino-fp32"]
    assert fp32["max_abs_difference"] < 1e-4 and fp32["argmax_agreement"] == 1.0
    for name in ("peer-openvino-fp32", "peer-openvino-default"):
        v = variants[name]
        assert len(v["runs_s"]) == 2 and all(t > 0 for t in v["runs_s"])
        assert v["memory_source"] == "VmHWM" and v["peak_rss_mb"] >= v["built_rss_mb"] > 0
        assert v["versions"]["openvino"] and v["versions"]["nncf"] is None
        assert v["threads"]["INFERENCE_NUM_THREADS"] >= 1
    assert fp32["inference_precision"] == "f32"
    assert variants["peer-openvino-default"]["inference_precision"] in ("f32", "bf16", "f16")   # the CPU's choice
    assert results["peer"]["versions"]["nncf"] is None


def test_the_peer_output_is_the_onnx_models(run):
    """The peer's saved output (as the model gives it) equals ONNX Runtime's on the same file and input."""
    _, workdir = run
    saved = np.load(workdir / "out-64x128-peer-openvino-fp32.npy")
    session = onnxruntime.InferenceSession(str(workdir / "weights.onnx"), providers=["CPUExecutionProvider"])
    x = np.load(workdir / "input-64x128.npy")
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert saved.shape == expected.shape and np.abs(saved - expected).max() < 1e-4


def test_nncf_missing_in_the_peer_interpreter_is_unavailable(run, blocking_python):
    results, _ = run
    reason = results["main"][0]["unavailable"]["peer-nncf-int8"]
    assert reason == f"nncf unavailable in this interpreter ({blocking_python})"


def test_unavailable_reasons_by_hand():
    assert "--peer-python" in unavailable_reason("peer-openvino-fp32", None, None)
    probed = {"versions": {"openvino": None, "nncf": None}}
    assert unavailable_reason("peer-nncf-int8", "/p", probed) == "openvino and nncf unavailable in this interpreter (/p)"
    assert unavailable_reason("peer-openvino-bf16", "/p", {"versions": {"openvino": "x"}}) is None


def test_peer_command_carries_the_settings():
    command = peer_command("/p", "peer-nncf-int8-mixed", "m.onnx", "x.npy", "c.npy")
    assert command[:2] == ["/p", PEER_SCRIPT] and os.path.isfile(PEER_SCRIPT)
    assert '"quantize": "mixed"' in command[2] and '"calibration": "c.npy"' in command[2]
    assert '"calibration": null' in peer_command("/p", "peer-openvino-bf16", "m.onnx", "x.npy", "c.npy")[2]
    assert PEER_VARIANTS["peer-openvino-bf16"].hint == "bf16"


def test_a_peer_python_that_does_not_answer_is_named(tmp_path):
    with pytest.raises(BenchError, match=r"--peer-python /bin/false: the probe failed \(status 1\)"):
        probe("/bin/false")
    with pytest.raises(BenchError, match="cannot run it"):
        probe(str(tmp_path / "missing-python"))


def test_a_peer_python_that_is_not_executable_is_one_line(tmp_path, capsys):
    missing = str(tmp_path / "python")
    assert bench.main(["--preset", "tiny_duc_hdc", "--shapes", "64x128", "--sections", "main",
                       "--peer-python", missing]) == 2
    assert capsys.readouterr().err == f"error: --peer-python {missing}: not an executable file\n"


def test_project_int8_is_quantized_in_its_own_process_and_timed_from_the_cache(run):
    """The quantization's peak is reported apart; the kept file is the QDQ model of the same
    weights, calibration and groups (what the timed worker read)."""
    results, workdir = run
    from tusimple_duc.inference.backends import runtime_model_bytes
    from tusimple_duc.inference.fast import INT8_FP32_DEFAULT
    from tusimple_duc.models import get_model

    v = results["main"][0]["variants"]["openvino-int8"]
    assert v["quantization"]["peak_rss_mb"] > 0 and v["quantization"]["build_s"] > 0
    assert v["argmax_agreement"] > 0.75 and v["max_abs_difference"] > 0   # int8 ran
    (kept,) = workdir.glob("weights-0000.int8-*.onnx")
    with open(workdir / "weights.onnx", "rb") as f:
        expected = runtime_model_bytes(get_model("tiny_duc_hdc"), "openvino", "int8", f.read(),
                                       np.load(workdir / "calibration-64x128.npy"), INT8_FP32_DEFAULT)
    assert kept.read_bytes() == expected
    from experiments.bench.report import format_report

    line = next(line for line in format_report(results).splitlines() if line.startswith("OpenVINO int8: quantized"))
    assert f"peak RSS {v['quantization']['peak_rss_mb'] / 1024:.2f} GB" in line


def test_peers_are_scored_in_the_precision_section(run, blocking_python):
    results, _ = run
    block = results["precision"]["random_weights"]
    peer = block["variants"]["peer-openvino-fp32"]   # the same ONNX in OpenVINO fp32: FastForward fp32's labels
    assert peer["argmax_agreement"] == 1.0 and peer["max_abs_difference"] < 1e-4 and peer["miou_change"] == 0.0
    assert block["unavailable"]["peer-nncf-int8"] == f"nncf unavailable in this interpreter ({blocking_python})"


def test_every_low_precision_variant_is_compared_on_the_argmax():
    """bf16 / int8 variants (project and peers) are checked on the argmax, fp32 ones on the probabilities."""
    from experiments.bench.backend_variants import BARE_VARIANTS
    from experiments.bench.compare import is_low_precision

    for name in (*BARE_VARIANTS, *PEER_VARIANTS):
        assert is_low_precision(name) == (not name.endswith("-fp32")), name
