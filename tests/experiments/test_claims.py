"""Claims 2-3 of tools/reproduce_claims.py: the measures by hand, the gridding ratio on tiny nets,
the paired tests, resumable runs, the report from saved runs, the CLI."""
import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import mxnet as mx
import numpy as np
import pytest
from scipy import stats

from experiments.claims import pipeline
from experiments.claims.measures import (band_confusion, band_iou, gridding_ratio, gridding_spectrum, period_bins,
                                         thin_band, uniform_cells)
from experiments.claims.runs import DUC_CONSTANT, DUC_HDC, Design, build_network, class_weights, crop_offsets, run_path
from experiments.claims.stats import paired, power

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "reproduce_claims.py")
#: A design of seconds: 2 seeds, 1 epoch of 4 small images, width 2.
TINY = Design("test", (64, 128), 4, 2, 0, 1, 2, 64, 0.5, 2, (0, 1))


# ---------------------------------------------------------------------------- band IoU
def test_thin_band_and_band_iou_by_hand():
    gt = np.zeros((5, 7), dtype=np.uint8)  # road
    gt[:, 3] = 5  # a 1-px pole in column 3
    gt[0, 0] = 255  # ignored
    band = thin_band(gt, [5, 6, 7], radius=1)
    np.testing.assert_array_equal(band.any(axis=0), [False, False, True, True, True, False, False])
    assert band[:, 2:5].all()
    pred = np.zeros_like(gt)
    pred[:, 3:5] = 5  # the pole predicted 2 px wide
    pred[0, 3] = 0  # one pole pixel missed
    matrix = band_confusion(pred, gt, 19, [5, 6, 7], radius=1)
    # band: columns 2-4, 15 px; pole: 5 GT, 4 TP, 5 FP (column 4), 1 FN -> 4 / 10;
    # road: 10 GT, 5 TP (column 2 and row 0 of column 3 is pole GT...) -> GT road in band = columns 2 and 4 = 10 px,
    # TP 5 (column 2), FP 1 (pixel (0, 3)), FN 5 (column 4) -> 5 / 11
    assert matrix.sum() == 15
    assert band_iou(matrix) == pytest.approx((4 / 10 + 5 / 11) / 2)
    assert math.isnan(band_iou(np.zeros((19, 19))))


def test_thin_crops_are_class_balanced():
    labels = np.zeros((2, 4, 40), dtype=np.uint8)
    labels[0, :, 2:4] = 5  # poles at the left edge of image 0
    labels[0, 0, 30] = 7  # one sign pixel at column 30 of image 0
    rng = np.random.default_rng(0)
    draws = np.array([crop_offsets(labels, 10, 1.0, rng) for _ in range(400)])
    # image 0: pole (centre 2 or 3 -> offset clamped to 0) or sign (centre 30 -> offset 25), each half the time
    assert set(draws[:, 0]) == {0, 25} and abs(np.mean(draws[:, 0] == 25) - 0.5) < 0.1
    # image 1 has no thin pixel: uniform over 0..30
    assert draws[:, 1].min() == 0 and draws[:, 1].max() == 30
    uniform = np.array([crop_offsets(labels, 10, 0.0, rng) for _ in range(400)])
    assert len(set(uniform[:, 0])) > 20


# ---------------------------------------------------------------------------- gridding ratio
def test_period_bins_and_ratio_by_hand():
    bins = period_bins(8)
    assert bins.sum() == 15 and not bins[0, 0] and bins[4, 4] and bins[0, 2] and not bins[1, 0]
    cells = np.zeros((8, 8), dtype=int)
    y, x = np.mgrid[0:8, 0:8]
    checker = (-1.0) ** (x + y)  # period 2 along both axes: all energy in bin (4, 4), |DFT| = 64
    spectrum, windows = gridding_spectrum(checker[None], cells)
    assert windows == 1 and gridding_ratio(spectrum) == pytest.approx(1.0)
    slow = np.cos(2 * np.pi * x / 8) * np.cos(2 * np.pi * y / 8)  # bins (+-1, +-1), |DFT| = 64 / 4 each
    assert gridding_ratio(gridding_spectrum(slow[None], cells)[0]) == pytest.approx(0.0, abs=1e-12)
    mix = checker + slow
    assert gridding_ratio(gridding_spectrum(mix[None], cells)[0]) == pytest.approx(64 ** 2 / (64 ** 2 + 4 * 16 ** 2))
    shaded = checker + 3.0 + 0.5 * x - 0.2 * y  # a plane (smooth shading) is removed before the DFT
    np.testing.assert_allclose(gridding_spectrum(shaded[None], cells)[0], spectrum, atol=1e-9)


def test_uniform_cells_and_windows():
    gt = np.full((16, 24), 10, dtype=np.uint8)  # sky
    gt[0, 0] = 5  # one pole pixel spoils the first 8x8 cell
    cells = uniform_cells(gt, 8, [0, 2, 10])
    np.testing.assert_array_equal(cells, [[-1, 10, 10], [10, 10, 10]])
    spectrum, windows = gridding_spectrum(np.ones((2, 2, 3)), cells, window=2 * 2)
    assert windows == 0 and not spectrum.any()


def _lowpass_backbone_features(variant, seed):
    """Stages 4-5 of a tiny backbone with non-negative (low-pass) kernels on i.i.d. stage-4 input."""
    mx.random.seed(seed)
    net = build_network(TINY, variant)
    net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34))
    for name, param in net.backbone.collect_params().items():
        if name.endswith("weight") and param.data().ndim == 4:
            param.set_data(param.data().abs())
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, net.backbone.config.stage_in_channels(4), 40, 40)).astype(np.float32)
    return net.backbone.forward_stages(mx.nd.array(x), 4).asnumpy()[0]


def test_gridding_ratio_responds_to_constant_rates():
    """Constant rates decouple the feature parities: a smoothing net then leaves energy at the
    period-2 bins that the HDC schedule (rate 1 first) does not (same input, same seeds)."""
    for seed in (0, 1):
        ratios = {}
        for variant in (DUC_HDC, DUC_CONSTANT):
            features = _lowpass_backbone_features(variant, seed)
            spectrum, windows = gridding_spectrum(features, np.zeros(features.shape[1:], dtype=int))
            assert windows == 81
            ratios[variant.key] = gridding_ratio(spectrum)
        assert ratios["duc_constant"] > ratios["duc_hdc"] + 0.05, ratios


# ---------------------------------------------------------------------------- tests and power
def test_paired_tests_against_closed_forms():
    a, b = [3.0, 5.0, 4.0, 7.0, 6.0, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    c = paired(a, b)
    d = np.array(a) - np.array(b)  # 2, 3, 1, 3, 1, 3
    t = d.mean() / (d.std(ddof=1) / math.sqrt(6))
    assert c.t_statistic == pytest.approx(t)
    assert c.t_p == pytest.approx(2 * stats.t.sf(t, 5))
    # all 6 differences positive: W = 0, exact two-sided p = 2 / 2^6
    assert c.wilcoxon_statistic == 0 and c.wilcoxon_p == pytest.approx(2 / 64)
    half = stats.t.ppf(0.975, 5) * d.std(ddof=1) / math.sqrt(6)
    assert (c.ci_low, c.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert c.wins == 6 and c.effect == pytest.approx(d.mean() / d.std(ddof=1))


def test_power_matches_alpha_and_a_simulation():
    assert power(0.0, 6) == pytest.approx(0.05)
    rng = np.random.default_rng(0)
    samples = rng.normal(loc=1.2, size=(20000, 6))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / math.sqrt(6))
    simulated = np.mean(np.abs(t) > stats.t.ppf(0.975, 5))
    assert power(1.2, 6) == pytest.approx(simulated, abs=0.015)


# ---------------------------------------------------------------------------- runs and report
def test_runs_are_resumable_and_a_changed_design_retrains(tmp_path):
    work = str(tmp_path / "work")
    variants = [DUC_HDC]
    assert pipeline.train_runs(work, TINY, variants, jobs=1, show_progress=False) == 2
    saved = json.load(open(run_path(work, DUC_HDC, 0)))
    assert saved["design"] == TINY.fingerprint() and len(saved["curve"]) == TINY.epochs
    assert pipeline.train_runs(work, TINY, variants, jobs=1, show_progress=False) == 0  # all skipped
    longer = replace(TINY, epochs=2)
    assert pipeline.pending_runs(work, longer, variants) == [(DUC_HDC, 0), (DUC_HDC, 1)]
    assert pipeline.train_runs(work, longer, variants, jobs=1, show_progress=False) == 2
    assert len(json.load(open(run_path(work, DUC_HDC, 0)))["curve"]) == 2
    assert pipeline.pending_runs(work, TINY, variants) == [(DUC_HDC, 0), (DUC_HDC, 1)]  # the old ones replaced
    more_seeds = replace(longer, seeds=(0, 1, 2))  # adding seeds keeps the finished ones
    assert pipeline.pending_runs(work, more_seeds, variants) == [(DUC_HDC, 2)]


def test_class_weighting_of_a_design():
    labels = np.array([[[0, 0, 0, 0, 0, 0, 5, 5, 6, 255]]], dtype=np.uint8)  # road 6, pole 2, light 1 of 9
    assert class_weights(TINY, labels) is None
    weights = class_weights(replace(TINY, class_weighting="median-frequency"), labels)
    # median of (6, 2, 1) / 9 = 2 / 9: raw weights road 1/3, pole 1, light 2; absent classes 2;
    # mean per pixel (6/9)(1/3) + (2/9)(1) + (1/9)(2) = 2/3 -> divide by 2/3
    assert weights.shape == (19,)
    np.testing.assert_allclose(weights[[0, 5, 6, 1]], [0.5, 1.5, 3.0, 3.0], rtol=1e-6)
    log_weights = class_weights(replace(TINY, class_weighting="log-frequency"), labels)
    raw = 1 / np.log(1.02 + np.array([6, 2, 1]) / 9)
    np.testing.assert_allclose(log_weights[[0, 5, 6]], raw / (np.array([6, 2, 1]) / 9 * raw).sum(), rtol=1e-6)
    assert replace(TINY, class_weighting="median-frequency").fingerprint() != TINY.fingerprint()
    with pytest.raises(ValueError, match="class_weighting 'inverse': expected one of none, log-frequency"):
        class_weights(replace(TINY, class_weighting="inverse"), labels)


def test_report_from_saved_runs(tmp_path):
    out, work = str(tmp_path / "out"), str(tmp_path / "work")
    markdown = pipeline.reproduce_claims(out, work, TINY, ["duc", "hdc"], show_progress=False)
    for heading in ("## Summary", "## Design of claims 2-3", "## 2. DUC vs bilinear", "## 3. HDC vs constant"):
        assert heading in markdown
    for name in ("learning_curves.png", "duc_vs_bilinear.png", "thin_crops.png", "gridding_spectra.png",
                 "hdc_vs_constant.png"):
        assert os.path.getsize(os.path.join(out, name)) > 1000
    run = json.load(open(run_path(work, DUC_HDC, 1)))
    assert f"{100 * run['miou']:.1f})" in markdown.split("| mIoU |")[1].split("\n")[0]  # seed 1 shown last
    os.remove(os.path.join(out, pipeline.REPORT))
    again = pipeline.reproduce_claims(out, work, TINY, ["duc", "hdc"], report_only=True, show_progress=False)
    assert again == markdown


def test_cli_errors(tmp_path):
    result = subprocess.run([sys.executable, TOOL, "--claims", "gridding,crf", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --claims 'gridding,crf': expected a comma-separated subset of " \
                                    "gridding, duc, hdc"
    result = subprocess.run([sys.executable, TOOL, "--budget", "quick", "--claims", "duc", "--report-only",
                             "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "no saved run of duc_hdc seed 0 for the 'quick' design" in result.stderr
