"""Presets, ModelSpec validation, overrides and parameter naming."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest

from tusimple_duc.errors import ConfigError
from tusimple_duc.models import (PAPER_ROWS, PRESETS, ModelSpec, ModelSpecError, count_parameters,
                                 describe_preset, get_model, list_presets)
from tusimple_duc.models.heads import duc_head_parameters


def test_every_preset_builds_with_consistent_attributes():
    assert set(list_presets()) == set(PRESETS)
    for name in list_presets():
        spec = PRESETS[name]
        net = get_model(name)
        assert net.spec == spec
        assert net.num_classes == spec.num_classes == 19
        assert net.output_stride == spec.output_stride
        assert net.prediction_stride == spec.prediction_stride
        assert describe_preset(name)
        if not name.startswith(("tiny", "resnet101_duc_hdc_released")):
            assert spec.stem == "classic", name
    assert {row.preset for row in PAPER_ROWS} <= set(PRESETS)


def test_paper_table_presets():
    assert PRESETS["resnet101_baseline_ds4"].output_stride == 4
    assert PRESETS["resnet101_duc_ds8_aspp0_cell1"].aspp == 0
    assert PRESETS["resnet152_duc_hdc"].blocks == (3, 8, 36, 3)
    table2 = [PRESETS[f"resnet101_duc_hdc_{v}"].dilation_schedule for v in ("none", "conv", "rf", "bigger")]
    assert table2 == ["none", "dilation-conv", "dilation-rf", "dilation-bigger"]


def test_non_released_names():
    net = get_model("resnet152_deconv")
    names = set(net.collect_params().keys())
    assert {"conv1_7x7_s2_weight", "conv1_7x7_s2/bn_gamma", "conv4_36_3x3_weight",
            "conv4_36_3x3/bn_running_var", "conv5_1_1x1_proj_weight", "fc1_cityscapes_c5_weight",
            "fc1_cityscapes_deconv1_weight", "fc1_cityscapes_deconv1_bias"} <= names
    assert not any(n.startswith("conv1_1_3x3") for n in names)
    two = get_model("resnet101_deconv_two_step", head_name="fc1_voc", num_classes=21)
    assert {"fc1_voc_deconv1_weight", "fc1_voc_deconv2_weight"} <= set(two.collect_params().keys())
    assert set(get_model("resnet101_duc_ds8_aspp0_cell1").head.collect_params().keys()) == \
        {"fc1_cityscapes_c0_weight", "fc1_cityscapes_c0_bias"}


def test_deconv_matches_duc_parameter_count():
    for name in ("resnet101_deconv_one_step", "resnet101_deconv_two_step"):
        head = get_model(name).head
        duc = duc_head_parameters(2048, 19, 8, 2, 6)
        assert abs(count_parameters(head) - duc) / duc < 0.005


def test_head_parameters_are_separate():
    net = get_model("tiny_duc_hdc", num_classes=3)
    head = set(net.head.collect_params().keys())
    assert head == {f"fc1_cityscapes_c{i}_{k}" for i in range(4) for k in ("weight", "bias")}
    assert not head & set(net.backbone.collect_params().keys())


def test_overrides_and_errors():
    net = get_model("resnet101_duc_hdc_released", num_classes=2, cell_width=1, aspp=6)
    assert net.head.raw_channels == 2 * 64 and len(net.head.aspp.branches) == 6
    with pytest.raises(ModelSpecError, match="unknown ModelSpec field.*colour"):
        get_model("tiny_duc_hdc", colour=3)
    with pytest.raises(ModelSpecError, match="unknown model preset 'resnet9'"):
        get_model("resnet9")
    with pytest.raises(ModelSpecError, match=r"ModelSpec.output_stride: must be one of 4, 8, 16"):
        get_model("tiny_duc_hdc", output_stride=32)
    with pytest.raises(ModelSpecError, match=r"ModelSpec.dilation_schedule: .*stage 4 has 4 blocks"):
        ModelSpec(blocks_per_stage=(1, 1, 4, 3), dilation_schedule=((1, 2, 5), (5, 9, 17)))
    with pytest.raises(ModelSpecError, match="ModelSpec.cell_width"):
        ModelSpec(cell_width=3)
    with pytest.raises(ModelSpecError, match="ModelSpec.head:"):
        ModelSpec(head="fcn")
    with pytest.raises(ModelSpecError, match="ModelSpec.depth"):
        ModelSpec(depth=34)
    with pytest.raises(ModelSpecError, match="ModelSpec.stride_in_1x1"):
        ModelSpec(stride_in_1x1="yes")
    assert issubclass(ModelSpecError, ConfigError) and issubclass(ModelSpecError, ValueError)


def test_explicit_schedule_spec_is_hashable():
    spec = ModelSpec(blocks_per_stage=[1, 1, 2, 1], width=4, dilation_schedule=[[1, 2], [3]])
    assert spec.dilation_schedule == ((1, 2), (3,)) and spec.blocks_per_stage == (1, 1, 2, 1)
    hash(spec)
    assert get_model(spec).backbone.rates[4] == (1, 2)


def test_bn_switches():
    net = get_model("tiny_duc_hdc", bn_eps=1e-5, bn_use_global_stats=False, bn_fix_gamma=True)
    kwargs = net.backbone.stage4[0].conv3x3.bn._kwargs
    assert kwargs["eps"] == 1e-5 and not kwargs["use_global_stats"] and kwargs["fix_gamma"]
    net.initialize()
    with mx.autograd.record():
        assert net(mx.nd.ones((2, 3, 16, 16))).shape == (2, 19, 8, 8)
