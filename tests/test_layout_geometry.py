"""The geometry constraints of tusimple_duc.layout, checked once for config, sampling, specs and heads."""
import pytest

from tusimple_duc.config import load_test_config, load_train_config
from tusimple_duc.data.sample import SamplingSpec
from tusimple_duc.errors import ConfigError
from tusimple_duc.layout import CELL_WIDTHS, OUTPUT_STRIDES, duc_ratio, sides_are_multiples
from tusimple_duc.models.heads import DUCHead
from tusimple_duc.models.presets import ModelSpec, ModelSpecError


@pytest.mark.parametrize("stride", OUTPUT_STRIDES)
@pytest.mark.parametrize("cell", CELL_WIDTHS)
def test_duc_ratio_is_stride_over_cell(stride, cell):
    assert duc_ratio(stride, cell) * cell == stride


@pytest.mark.parametrize("stride, cell", [(8, 3), (6, 4), (8, 0), (2, 4)])
def test_duc_ratio_refuses_a_cell_that_does_not_divide(stride, cell):
    with pytest.raises(ValueError, match=f"cell width {cell} does not divide output stride {stride}"):
        duc_ratio(stride, cell)


@pytest.mark.parametrize("shape, multiple, expected", [
    ((800, 800), 8, True), ((544, 880), 16, True), ((801, 800), 8, False), ((800, 804), 8, False),
    ((0, 8), 8, False), ((8, 8), 0, False), ((7, 5), 1, True)])
def test_sides_are_multiples(shape, multiple, expected):
    assert sides_are_multiples(shape, multiple) is expected


def test_every_caller_refuses_a_cell_width_that_does_not_divide_the_stride():
    with pytest.raises(ConfigError, match=r"\[network\] cell_width"):
        SamplingSpec(crop_shape=(48, 48), ds_rate=6, cell_width=4)
    with pytest.raises(ValueError, match="cell width 3 does not divide output stride 8"):
        DUCHead("fc1", 8, 2, 8, 3, (1,))
    with pytest.raises(ModelSpecError, match="ModelSpec.cell_width"):
        ModelSpec(cell_width=3)
    with pytest.raises(ConfigError, match=r"\[data\] cell_width: must be 1, 2 or 4, got 3"):
        load_test_config(None, ["data.image_list=x", "data.cell_width=3"])


def test_every_caller_refuses_a_crop_that_is_not_a_multiple_of_the_stride():
    with pytest.raises(ConfigError, match=r"\[data\] crop_shape: \(44, 48\) is not a multiple of ds_rate 8"):
        SamplingSpec(crop_shape=(44, 48), ds_rate=8, cell_width=2)
    with pytest.raises(ConfigError, match=r"\[data\] inner_crop: sides must be positive multiples of ds_rate 16"):
        load_train_config(None, ["data.train_list=x", "data.ds_rate=16", "data.patch_scheme=12fold",
                                 "data.inner_crop=552,544"])
