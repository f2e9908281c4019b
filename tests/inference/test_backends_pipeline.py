"""test.py end to end with backend = openvino / onnxruntime on a synthetic Cityscapes split, and
quiet: no warning printed by a normal run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from inference_toys import has_int8_dot_product

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = (64, 128)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, synthetic_val_split, tiny_checkpoint):
    root = tmp_path_factory.mktemp("backends")
    synthetic_val_split(root, SIZE, seed=5)
    tiny_checkpoint(root / "models" / "tiny", 7, SIZE, mx_seed=3)
    return root


def _test_py(root, result_dir, *extra, expect_success=True):
    sets = [f"data.image_list={root / 'val.lst'}", f"data.test_img_dir={root / 'cityscapes'}",
            f"data.gt_dir={root / 'cityscapes'}", f"model.model_dir={root / 'models'}", "model.model_prefix=tiny",
            "model.model_epoch=7", "model.gpu=-1", f"model.result_dir={result_dir}", "network.preset=tiny_duc_hdc",
            f"data.test_shape={SIZE[0]},{SIZE[1]}", f"data.result_shape={SIZE[0]},{SIZE[1]}",
            "output.save_probabilities=True", *extra]
    command = [sys.executable, os.path.join(ROOT, "test.py"), os.path.join(ROOT, "configs", "test", "test_full_image.cfg")]
    for item in sets:
        command += ["--set", item]
    result = subprocess.run(command, capture_output=True, text=True, cwd=str(result_dir.parent),
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert (result.returncode == 0) == expect_success, result.stderr
    return result


def _probabilities(result_dir):
    folder = result_dir / "prob"
    return {name: np.load(folder / name)[list(np.load(folder / name).keys())[0]].astype(np.float32)
            for name in sorted(os.listdir(folder))}


def _near_ties(probabilities, margin=1e-3):
    """Pixels of an (L, H, W) probability map whose two largest probabilities are within ``margin``."""
    top2 = np.sort(probabilities, axis=0)[-2:]
    return int((top2[1] - top2[0] < margin).sum())


def _confusion_distance(metrics_a, metrics_b):
    """Pixels counted in another cell of the confusion matrix between two metrics.json files."""
    counts = [np.array(json.loads(path.read_text())["confusion"]["counts"]) for path in (metrics_a, metrics_b)]
    assert counts[0].sum() == counts[1].sum() > 0
    return int(np.abs(counts[0] - counts[1]).sum()) // 2


def _warning_lines(stderr):
    return [line for line in stderr.splitlines() if "warning" in line.lower()]


@pytest.fixture(scope="module")
def mxnet_run(dataset, tmp_path_factory):
    result_dir = tmp_path_factory.mktemp("mx") / "out"
    return _test_py(dataset, result_dir), result_dir


def test_default_run_prints_no_warning(mxnet_run):
    result, _ = mxnet_run
    assert _warning_lines(result.stderr) == []


@pytest.mark.parametrize("backend, form", [("openvino", "direct"), ("onnxruntime", "direct"), ("openvino", "taps")])
def test_backend_run_equals_mxnet_and_is_quiet(dataset, mxnet_run, tmp_path, backend, form):
    result = _test_py(dataset, tmp_path / "out", f"inference.backend={backend}", f"inference.dilated_conv_form={form}")
    assert _warning_lines(result.stderr) == []
    expected = _probabilities(mxnet_run[1])
    got = _probabilities(tmp_path / "out")
    assert sorted(got) == sorted(expected) and len(got) == 2
    for name in expected:  # float16 files: 1e-4 agreement within their rounding
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-3)
    assert sorted(os.listdir(tmp_path / "out" / "score")) == sorted(os.listdir(mxnet_run[1] / "score"))
    # the same labels but at near ties (random weights: many), where another runtime's summation
    # order may pick the other class (one pixel on an AMD EPYC, none on an Intel Xeon)
    ties = sum(_near_ties(probabilities) for probabilities in expected.values())
    moved = _confusion_distance(tmp_path / "out" / "metrics.json", mxnet_run[1] / "metrics.json")
    assert moved <= min(ties, 10)


def test_precision_auto_run_caches_its_choice(dataset, tmp_path):
    cache = tmp_path / "cache"
    result = _test_py(dataset, tmp_path / "out", "inference.backend=openvino", "inference.precision=auto",
                      f"inference.precision_cache_dir={cache}")
    assert _warning_lines(result.stderr) == []
    entries = json.loads((cache / "precision.json").read_text())
    (entry,) = entries.values()
    offered = {"fp32", "bf16", "int8", "int8-bf16"}  # OpenVINO's precisions, the direct form (the default)
    assert entry["precision"] in offered and set(entry["seconds"]) == offered
    chosen = entry["precision"]
    assert chosen == "fp32" or (entry["seconds"][chosen] < entry["seconds"]["fp32"] and entry["agreement"][chosen] >= 0.99)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_int8_backend_run_agrees_with_mxnet_and_is_quiet(dataset, mxnet_run, tmp_path, backend):
    result = _test_py(dataset, tmp_path / "out", f"inference.backend={backend}", "inference.precision=int8",
                      "inference.calibration_images=2")
    assert _warning_lines(result.stderr) == []
    assert list((dataset / "models").glob("tiny-0007.int8-*.onnx"))   # quantized once, kept next to the checkpoint
    expected = _probabilities(mxnet_run[1])
    got = _probabilities(tmp_path / "out")
    assert sorted(got) == sorted(expected) and len(got) == 2
    # agreement of a random-weight network (many near ties): >= 0.95 measured on an Intel Xeon with
    # VNNI, 0.84-0.93 on an AMD EPYC of family 23 (AVX2, no VNNI)
    least = 0.95 if has_int8_dot_product() else 0.75
    for name in expected:
        assert not np.array_equal(got[name], expected[name])  # int8 arithmetic really ran
        assert (got[name].argmax(0) == expected[name].argmax(0)).mean() >= least


def test_conv_form_auto_without_precision_auto_is_one_line_error(dataset, tmp_path):
    result = _test_py(dataset, tmp_path / "out", "inference.backend=openvino", "inference.dilated_conv_form=auto",
                      expect_success=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "[inference] dilated_conv_form = auto is measured with precision = auto (precision is fp32)" in last
