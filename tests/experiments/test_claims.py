"""tools/reproduce_claims.py: exact gridding counts (brute force), the gridding index, the report."""
import itertools
import json
import math
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from experiments.claims import pipeline as claims
from experiments.claims.gridding import run_gridding
from experiments.claims.measures import DifferenceEnergy, block_means, ceiling_labels, gridding_index
from experiments.claims.report import compare
from experiments.claims.training import QUICK_BUDGET, RunResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_CFG = os.path.join(ROOT, "configs", "train", "demo_synthetic.cfg")
TEST_CFG = os.path.join(ROOT, "configs", "test", "demo_synthetic.cfg")
TOOL = os.path.join(ROOT, "tools", "reproduce_claims.py")

# Stage 4 | stage 5 rates of ResNet-101 written from the paper (section 4.1.3) and the released model.
RESNET101 = {
    "none": ([1] * 23, [1] * 3),
    "deeplab": ([2] * 23, [4] * 3),
    "dilation-conv": ([2, 1] * 11 + [2], [4, 1, 4]),
    "dilation-rf": ([1, 2, 3] * 7 + [2, 2], [3, 4, 5]),
    "dilation-bigger": ([1, 2, 5, 9] * 5 + [1, 2, 5], [5, 9, 17]),
    "released": ([2, 2, 5, 9] + [1, 2, 5, 9] * 4 + [1, 2, 5], [5, 9, 17]),
}
# The tiny backbone (blocks 1/1/4/3), by the same rules.
TINY = {
    "none": ([1] * 4, [1] * 3),
    "deeplab": ([2] * 4, [4] * 3),
    "dilation-conv": ([2, 1, 2, 1], [4, 1, 4]),
    "dilation-rf": ([1, 2, 3, 2], [3, 4, 5]),
    "dilation-bigger": ([1, 2, 5, 9], [5, 9, 17]),
    "released": ([2, 2, 5, 9], [5, 9, 17]),
}


def enumerate_taps(rates):
    """Every (dy, dx) reachable by choosing one 3x3 tap per layer: all 9^n combinations."""
    taps = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    return {(sum(t[0] * r for t, r in zip(combo, rates)), sum(t[1] * r for t, r in zip(combo, rates)))
            for combo in itertools.product(taps, repeat=len(rates))}


def reachable_1d(rates):
    """Offsets along one axis, by growing a set layer by layer (the 2-D set is its square)."""
    reach = {0}
    for rate in rates:
        reach = {s + t * rate for s in reach for t in (-1, 0, 1)}
    return reach


@pytest.fixture(scope="module")
def gridding(tmp_path_factory):
    out = tmp_path_factory.mktemp("gridding")
    return out, run_gridding(str(out), gradient_checks=(("tiny_duc_hdc", "deeplab"), ("tiny_duc_hdc", "dilation-rf")))


def test_paper_example_and_figure2(gridding):
    _, result = gridding
    single = result.row("stack", "one 3x3, r=2").coverage
    assert (single.covered, single.total) == (9, 25)  # "only 9 out of 25 pixels"
    for name, rates in (("Fig. 2a: r=2,2,2", (2, 2, 2)), ("Fig. 2b: r=1,2,3", (1, 2, 3))):
        coverage = result.row("stack", name).coverage
        offsets = enumerate_taps(rates)
        side = 2 * sum(rates) + 1
        assert (coverage.covered, coverage.total) == (len(offsets), side * side)
    assert result.row("stack", "Fig. 2a: r=2,2,2").coverage.covered == 49
    assert result.row("stack", "Fig. 2b: r=1,2,3").coverage.full


@pytest.mark.parametrize("label,table", [("ResNet-101", RESNET101), ("tiny (blocks 1/1/4/3)", TINY)])
def test_backbone_counts_brute_force(gridding, label, table):
    _, result = gridding
    for schedule, (stage4, stage5) in table.items():
        row = result.row(label, schedule)
        line = reachable_1d(stage4 + stage5)
        side = 2 * sum(stage4 + stage5) + 1
        assert (row.coverage.covered, row.coverage.total) == (len(line) ** 2, side * side), schedule
        assert row.side == side


def test_constant_rates_leave_holes_hdc_does_not(gridding):
    _, result = gridding
    assert result.row("ResNet-101", "deeplab").coverage.holes == 117 ** 2 - 59 ** 2
    for schedule in ("dilation-conv", "dilation-rf", "dilation-bigger", "released"):
        assert result.row("ResNet-101", schedule).coverage.full
    assert result.row("tiny (blocks 1/1/4/3)", "deeplab").gradient_agrees is True
    assert result.row("tiny (blocks 1/1/4/3)", "dilation-rf").gradient_agrees is True
    assert result.row("ResNet-101", "deeplab").gradient_agrees is None  # not measured here


def test_gridding_figures_and_markdown(gridding):
    out, result = gridding
    for name in result.figures:
        image = cv2.imread(str(out / name))
        assert image is not None and min(image.shape[:2]) > 200
    text = claims.gridding_markdown(result)
    assert "| ResNet-101 `deeplab` | 2x23 \\| 4x3 | 117x117 | 3481 / 13689 (25.4%) | 10208 |" in text


def test_block_means_and_difference_energy_by_hand():
    maps = np.arange(2 * 4 * 6, dtype=np.float64).reshape(2, 4, 6)
    means = block_means(maps, 2)
    assert means.shape == (2, 2, 3)
    assert means[1, 1, 2] == np.mean([maps[1, 2, 4], maps[1, 2, 5], maps[1, 3, 4], maps[1, 3, 5]])
    ramp = np.tile(np.arange(8.0), (8, 1))[None]  # linear along x, constant along y
    energy = DifferenceEnergy()
    energy.add(ramp)
    assert energy.index == pytest.approx(0.25)  # (1^2 per pair) / (2^2 per pair)
    step = np.zeros((1, 5, 9))
    step[0, :, 4:] = 1.0
    energy = DifferenceEnergy()
    energy.add(step)
    # x: 5 rows x 8 pairs at distance 1 (one jump per row), 5 x 7 at distance 2 (two jumps per row);
    # y: 9 columns x 4 and 9 x 3 pairs, all equal
    assert energy.index == pytest.approx((5 / (40 + 36)) / (10 / (35 + 27)))


def test_gridding_index_grows_with_a_period_two_pattern():
    y, x = np.mgrid[0:64, 0:64]
    slope, amplitude = 8 / 64.0, 0.05  # per 8x8 cell
    smooth = np.stack([x / 64.0, 1 - x / 64.0])
    grid = amplitude * ((y // 8 + x // 8) % 2)  # checkerboard of 8x8 cells = period 2 on the feature grid
    assert gridding_index([smooth], 8) == pytest.approx(0.25)
    # per cell pair at distance 1: x (slope +- amplitude)^2 on average slope^2 + amplitude^2, y amplitude^2;
    # at distance 2: x (2 slope)^2, y 0; equal numbers of x and y pairs
    expected = (slope ** 2 + 2 * amplitude ** 2) / (4 * slope ** 2)
    assert gridding_index([smooth + grid], 8) == pytest.approx(expected)
    assert gridding_index([smooth + 2 * grid], 8) > expected


def test_upsampling_ceiling_by_hand():
    labels = np.zeros((16, 32), dtype=np.uint8)  # road
    labels[:, 6:8] = 5  # a 2-px pole on the 2-px grid
    # stride 1: nothing to resize, the ground truth itself
    np.testing.assert_array_equal(ceiling_labels(labels, 1, 19), labels)
    # stride 2: cell 3 is all pole; pixel 6 samples cell position 2.75 (3/4 pole), 7 -> 3.25, 5 -> 2.25, 8 -> 3.75
    np.testing.assert_array_equal(ceiling_labels(labels, 2, 19), labels)
    # stride 8: every cell is at most 2/8 pole, so bilinear mixing of cells never lets pole win
    assert not (ceiling_labels(labels, 8, 19) == 5).any()


def _run(seed, miou):
    return RunResult("v", seed, miou, {}, 0.0, 0.0, "")


def test_paired_t_test_against_the_closed_form():
    # differences 1, 2, 3: t = 2 / (1 / sqrt 3) = sqrt 12; for 2 degrees of freedom p = 1 - t / sqrt(2 + t^2)
    result = compare([_run(s, v) for s, v in enumerate((2.0, 4.0, 6.0))],
                     [_run(s, v) for s, v in enumerate((1.0, 2.0, 3.0))], lambda r: r.miou)
    assert result.wins == 3 and result.differences.mean == pytest.approx(2.0)
    assert result.p_value == pytest.approx(1 - math.sqrt(12) / math.sqrt(14), rel=1e-9)


def test_quick_training_claims_report(tmp_path):
    out, work = tmp_path / "report", tmp_path / "work"
    report = claims.reproduce_claims(str(out), str(work), [0], ["duc", "hdc"], QUICK_BUDGET, TRAIN_CFG, TEST_CFG)
    text = (out / claims.REPORT).read_text()
    for heading in ("## Summary", "## Training setup of claims 2-3", "## 2. DUC vs bilinear upsampling",
                    "## 3. HDC vs constant dilation"):
        assert heading in text
    assert "## 1. Gridding" not in text
    ceiling = re.search(r"\| mIoU \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \|", text)
    assert float(ceiling.group(1)) < float(ceiling.group(2)) < float(ceiling.group(3)) <= 100  # strides 8, 4, 2
    for name in (claims.DUC_FIGURE, claims.HDC_FIGURE, claims.PREDICTIONS_FIGURE, claims.CONFIDENCE_FIGURE):
        assert cv2.imread(str(out / name)) is not None
    # the mIoU row shows each variant's official score, read back from its own metrics.json
    row = next(line for line in text.splitlines() if line.startswith("| mIoU |") and "±" not in line)
    shown = [float(v) for v in re.findall(r"\| ([0-9.]+) \(", row)]
    stored = [json.loads((work / f"{key}_seed0" / "metrics.json").read_text())["summary"]["mIoU"]
              for key in ("duc_hdc", "bilinear_hdc")]
    assert shown == pytest.approx([round(100 * v, 1) for v in stored], abs=1e-9)
    assert set(report.runs) == {"duc_hdc", "bilinear_hdc", "duc_constant"}
    check = {(variant.head, lr): result.miou for variant, lr, result in report.lr_check}
    assert set(check) == {("duc", 0.4), ("duc", 0.08), ("bilinear", 0.08), ("bilinear", 0.4)}
    for (head, lr), value in check.items():
        assert f"| {head} | {lr:g} | {100 * value:.1f} |" in text
    index = re.search(r"\| gridding index G \| ([0-9.]+) \(", text)
    assert float(index.group(1)) == pytest.approx(report.runs["duc_hdc"][0].gridding, abs=5e-4)


def test_cli_rejects_unknown_claims(tmp_path):
    result = subprocess.run([sys.executable, TOOL, "--claims", "gridding,crf", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --claims 'gridding,crf': expected a comma-separated subset of " \
                                    "gridding, duc, hdc"
