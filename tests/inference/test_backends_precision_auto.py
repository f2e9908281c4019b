"""precision = auto: decision logic with a fake timer (deterministic), and the cache."""
import json

import numpy as np
import pytest

from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.precision_auto import cache_key, choose_precision, cpu_identity, timing_batch

CALIBRATION = np.random.RandomState(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
SCORES = np.random.RandomState(1).uniform(0, 1, (2, 4, 4, 4)).astype(np.float32)


def _forward(flip_fraction):
    """A fake forward whose argmax differs from fp32's on ``flip_fraction`` of the 32 pixels."""
    def forward(batch):
        out = SCORES.copy()
        flat = out.transpose(0, 2, 3, 1).reshape(-1, 4)
        for row in range(int(round(flip_fraction * len(flat)))):  # scores < 1: 2.0 wins
            flat[row, (flat[row].argmax() + 1) % 4] = 2.0
        return flat.reshape(2, 4, 4, 4).transpose(0, 3, 1, 2)
    return forward


def _run(tmp_path, seconds, flips, key="cpu A | openvino | net | 1x3x8x8", built=None):
    timer_calls = []

    def timer(forward, batch):
        timer_calls.append(forward.precision)
        return seconds[forward.precision]

    def build(precision):
        if precision not in seconds:
            raise ConfigError(f"[inference] precision = {precision} is not available")
        forward = _forward(flips.get(precision, 0.0))
        forward.precision = precision
        if built is not None:
            built.append(precision)
        return forward

    choice, forward = choose_precision(build, ("fp32", "bf16", "int8"), CALIBRATION, CALIBRATION[:1], key,
                                       str(tmp_path / "precision.json"), timer=timer, runs=3)
    return choice, forward, timer_calls


def test_fastest_that_holds_is_chosen_and_timings_interleave(tmp_path):
    choice, forward, calls = _run(tmp_path, {"fp32": 4.0, "bf16": 2.0, "int8": 1.0}, {"int8": 0.0})
    assert choice.precision == "int8" and forward.precision == "int8" and not choice.cached
    assert calls == ["fp32", "bf16", "int8"] * 3
    assert choice.agreement == {"fp32": 1.0, "bf16": 1.0, "int8": 1.0}


def test_slower_than_fp32_is_never_chosen(tmp_path):
    choice, _, _ = _run(tmp_path, {"fp32": 4.0, "bf16": 4.5, "int8": 5.0}, {})
    assert choice.precision == "fp32"


def test_agreement_below_target_is_never_chosen(tmp_path):
    # int8 fastest but 1 of 32 pixels differs (96.9 % < 99 %): bf16 (100 %) wins
    choice, _, _ = _run(tmp_path, {"fp32": 4.0, "bf16": 3.0, "int8": 1.0}, {"int8": 1 / 32})
    assert choice.agreement["int8"] == pytest.approx(31 / 32)
    assert choice.precision == "bf16"


def test_unavailable_precision_is_left_out(tmp_path):
    choice, _, calls = _run(tmp_path, {"fp32": 4.0, "bf16": 3.0}, {})
    assert choice.precision == "bf16" and set(calls) == {"fp32", "bf16"}


def test_cache_hit_skips_timing_and_other_cpu_retimes(tmp_path):
    seconds = {"fp32": 4.0, "bf16": 2.0, "int8": 3.0}
    first, _, _ = _run(tmp_path, seconds, {})
    stored = json.loads((tmp_path / "precision.json").read_text())
    assert stored["cpu A | openvino | net | 1x3x8x8"]["precision"] == "bf16"
    built = []
    again, forward, calls = _run(tmp_path, {"fp32": 1.0, "bf16": 9.0, "int8": 9.0}, {}, built=built)
    assert again.cached and again.precision == "bf16" and forward.precision == "bf16"
    assert calls == [] and built == ["bf16"]
    other, _, calls = _run(tmp_path, {"fp32": 1.0, "bf16": 9.0, "int8": 9.0}, {}, key="cpu B | openvino | net | 1x3x8x8")
    assert not other.cached and other.precision == "fp32" and len(calls) == 9
    assert set(json.loads((tmp_path / "precision.json").read_text())) == {
        "cpu A | openvino | net | 1x3x8x8", "cpu B | openvino | net | 1x3x8x8"}


def test_key_and_identity(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Test CPU\nflags\t\t: sse avx\n\nmodel name\t: Test CPU\nflags\t\t: sse avx\n")
    import hashlib
    assert cpu_identity(str(info)) == "Test CPU flags:" + hashlib.sha256(b"avx sse").hexdigest()[:12]
    assert cache_key("c", "onnxruntime", "d", (1, 3, 64, 128)) == "c | onnxruntime | d | 1x3x64x128"


def test_timing_batch_is_the_predictor_input():
    assert timing_batch(CALIBRATION, None, 1).shape == (1, 3, 8, 8)
    windows = timing_batch(CALIBRATION, (16, 4), 2)
    assert windows.shape == (2, 3, 16, 4)
    np.testing.assert_array_equal(windows[1, :, :8], CALIBRATION[0, :, :, :4])
