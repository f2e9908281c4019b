"""HDC: schedules, the paper's gridding rule, exact coverage (checked by brute force)."""
import itertools

import tusimple_duc  # noqa: F401  (before mxnet)
import numpy as np
import pytest

from tusimple_duc.models import get_spec
from tusimple_duc.models.gridding import backbone_coverage, coverage_pattern, gradient_coverage, stack_coverage
from tusimple_duc.models.hdc import (NAMED_SCHEDULES, ScheduleError, hdc_check, receptive_field_increase,
                                     resolve_schedule, schedule_report)

R101 = (3, 4, 23, 3)


def brute_force_offsets(rates, kernel=3):
    """All (dy, dx) reachable by picking one tap per layer (independent of hdc.py)."""
    half = kernel // 2
    taps = [[(ty * r, tx * r) for ty in range(-half, half + 1) for tx in range(-half, half + 1)]
            for r in rates]
    return {tuple(map(sum, zip(*choice))) for choice in itertools.product(*taps)}


def pattern_offsets(coverage):
    ys, xs = np.nonzero(coverage.pattern)
    return {(int(y) - coverage.radius, int(x) - coverage.radius) for y, x in zip(ys, xs)}


# ----------------------------------------------------------------- the rule, Eq. (2)
def test_paper_examples():
    good = hdc_check([1, 2, 5], kernel=3)
    assert good.m2 == 2 and not good.grids
    bad = hdc_check([1, 2, 9], kernel=3)
    assert bad.m2 == 5 and bad.grids
    common = hdc_check([2, 4, 8], kernel=3)
    assert common.common_factor == 2 and common.grids
    assert hdc_check([1, 2, 3]).max_distances == (1, 2, 3)
    assert hdc_check([2, 2, 2]).grids          # M_2 = 2 but common factor 2
    assert not hdc_check([1]).grids and hdc_check([2]).grids


def test_rule_per_named_schedule():
    def grids(name):
        return {(r.stage, r.check.rates): r.check.grids
                for r in schedule_report(name, R101, 8) if r.stage in (4, 5)}

    assert not any(grids("none").values())
    assert all(grids("deeplab").values())                       # (2,...,2), (4, 4, 4)
    rf = grids("dilation-rf")
    assert rf[(4, (1, 2, 3))] is False
    assert rf[(5, (3, 4, 5))] is True                            # M_2 = 4 > 3 by Eq. (2)
    assert rf[(4, (2, 2))] is True                               # the two kept r = 2 blocks
    bigger = grids("dilation-bigger")
    assert bigger[(4, (1, 2, 5, 9))] is False and bigger[(4, (1, 2, 5))] is False
    assert bigger[(5, (5, 9, 17))] is True                       # M_2 = 9 > 3
    released = grids("released")
    assert released[(4, (2, 2, 5, 9))] is False
    conv = grids("dilation-conv")
    assert conv[(4, (2, 1))] is False and conv[(5, (4, 1))] is False and conv[(4, (2,))] is True


# ------------------------------------------------------------------------- schedules
def test_named_schedules_resnet101():
    r = {name: resolve_schedule(name, R101, 8) for name in NAMED_SCHEDULES}
    assert r["none"][4] == (1,) * 23 and r["none"][5] == (1, 1, 1)
    assert r["deeplab"][4] == (2,) * 23 and r["deeplab"][5] == (4, 4, 4)
    assert r["dilation-conv"][4] == (2, 1) * 11 + (2,) and r["dilation-conv"][5] == (4, 1, 4)
    assert r["dilation-rf"][4] == (1, 2, 3) * 7 + (2, 2) and r["dilation-rf"][5] == (3, 4, 5)
    assert r["dilation-bigger"][4] == (1, 2, 5, 9) * 5 + (1, 2, 5)
    assert r["dilation-bigger"][5] == (5, 9, 17)
    assert r["released"][4] == (2, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5)
    assert r["released"][5] == (5, 9, 17)
    for name in NAMED_SCHEDULES:
        assert r[name][2] == (1, 1, 1) and r[name][3] == (1, 1, 1, 1)
    # Table 2 "RF increased": exact for Dilation-conv and Dilation-RF
    assert receptive_field_increase(r["dilation-conv"]) == 88
    assert receptive_field_increase(r["dilation-rf"]) == 116


@pytest.mark.parametrize("blocks", [(3, 4, 6, 3), (3, 8, 36, 3), (1, 1, 1, 1), (1, 1, 5, 2)])
@pytest.mark.parametrize("name", NAMED_SCHEDULES)
def test_any_block_count(blocks, name):
    for stride in (4, 8, 16):
        rates = resolve_schedule(name, blocks, stride)
        assert [len(rates[s]) for s in (2, 3, 4, 5)] == list(blocks)
        assert all(r >= 1 for s in rates for r in rates[s])


def test_output_stride_rules():
    os4 = resolve_schedule("deeplab", R101, 4)
    assert os4[3] == (2,) * 4 and os4[4] == (4,) * 23 and os4[5] == (8,) * 3
    os16 = resolve_schedule("dilation-rf", R101, 16)
    assert os16[4] == (1,) * 23 and os16[5] == (1, 2, 3)
    assert resolve_schedule("dilation-rf", R101, 4)[3] == (1, 2, 3, 2)
    assert resolve_schedule("dilation-bigger", (3, 8, 36, 3), 8)[4] == (1, 2, 5, 9) * 9


def test_explicit_schedule_validation():
    rates = resolve_schedule(((1, 2, 3, 1), (5, 6)), (1, 1, 4, 2), 8)
    assert rates[4] == (1, 2, 3, 1) and rates[5] == (5, 6) and rates[3] == (1,)
    with pytest.raises(ScheduleError, match="lists 22 rates for stage 4, but stage 4 has 23 blocks"):
        resolve_schedule(((1,) * 22, (1, 1, 1)), R101, 8)
    with pytest.raises(ScheduleError, match="unknown dilation schedule 'hdc'"):
        resolve_schedule("hdc", R101, 8)
    with pytest.raises(ScheduleError, match=">= 1"):
        resolve_schedule(((0, 1, 1, 1), (1,)), (1, 1, 4, 1), 8)


# -------------------------------------------------------------------------- coverage
def test_single_rate2_layer_uses_9_of_25():
    cov = coverage_pattern([2])
    assert (cov.covered, cov.total) == (9, 25)
    assert pattern_offsets(cov) == brute_force_offsets([2]) == \
        {(2 * a, 2 * b) for a in (-1, 0, 1) for b in (-1, 0, 1)}


def test_three_rate2_layers_grid():
    cov = coverage_pattern([2, 2, 2])
    truth = brute_force_offsets([2, 2, 2])
    assert pattern_offsets(cov) == truth
    assert cov.total == 13 * 13 and cov.covered == len(truth) == 49
    assert not cov.full and cov.pattern[6, 7] == False  # noqa: E712  odd offset = hole


def test_hdc_rates_cover_full_square():
    cov = coverage_pattern([1, 2, 3])
    assert cov.full and cov.total == 13 * 13
    assert pattern_offsets(cov) == brute_force_offsets([1, 2, 3])


@pytest.mark.parametrize("rates", [[1, 2, 5], [1, 2, 9], [2, 4, 8], [5, 9, 17], [2, 1, 2, 1]])
def test_coverage_matches_brute_force(rates):
    assert pattern_offsets(coverage_pattern(rates)) == brute_force_offsets(rates)


def test_stride_in_stack():
    # 3x3 stride 2, then 3x3 rate 1: second layer taps move 2 input pixels
    cov = stack_coverage([(3, 1, 2), (3, 1, 1)])
    assert pattern_offsets(cov) == {(a + 2 * c, b + 2 * d) for a in (-1, 0, 1) for b in (-1, 0, 1)
                                    for c in (-1, 0, 1) for d in (-1, 0, 1)}


@pytest.mark.parametrize("preset,overrides", [
    ("tiny_duc_hdc", {}),
    ("tiny_baseline", {}),
    ("tiny_duc_hdc", {"output_stride": 16, "stride_in_1x1": False}),
])
def test_gradient_coverage_agrees_with_numpy(preset, overrides):
    config = get_spec(preset, **overrides).backbone_config()
    for start in (3, 4):
        exact = backbone_coverage(config, start)
        measured = gradient_coverage(config, start, width=1)
        np.testing.assert_array_equal(measured.pattern, exact.pattern)


def test_backbone_coverage_released_vs_deeplab():
    released = backbone_coverage(get_spec("resnet101_duc_hdc_released").backbone_config())
    deeplab = backbone_coverage(get_spec("resnet101_duc_ds8_aspp6_cell2").backbone_config())
    assert released.full and released.radius == 125
    assert not deeplab.full and deeplab.covered * 4 < deeplab.total * 1.05  # ~ checkerboard
