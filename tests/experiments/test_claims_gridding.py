"""Claim 1 of tools/reproduce_claims.py: exact gridding counts (brute force), and the upsampling ceiling."""
import itertools

import cv2
import numpy as np
import pytest

from experiments.claims.gridding import gridding_markdown, run_gridding
from experiments.claims.measures import ceiling_labels

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
    text = gridding_markdown(result)
    assert "| ResNet-101 `deeplab` | 2x23 \\| 4x3 | 117x117 | 3481 / 13689 (25.4%) | 10208 |" in text


def test_upsampling_ceiling_by_hand():
    labels = np.zeros((16, 32), dtype=np.uint8)  # road
    labels[:, 6:8] = 5  # a 2-px pole on the 2-px grid
    # stride 1: nothing to resize, the ground truth itself
    np.testing.assert_array_equal(ceiling_labels(labels, 1, 19), labels)
    # stride 2: cell 3 is all pole; pixel 6 samples cell position 2.75 (3/4 pole), 7 -> 3.25, 5 -> 2.25, 8 -> 3.75
    np.testing.assert_array_equal(ceiling_labels(labels, 2, 19), labels)
    # stride 8: every cell is at most 2/8 pole, so bilinear mixing of cells never lets pole win
    assert not (ceiling_labels(labels, 8, 19) == 5).any()
