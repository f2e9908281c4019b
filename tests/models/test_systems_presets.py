"""System presets: sizes at odd inputs (hand-derived), published parameter counts, the auxiliary
training network, the published-results table and the spec's one-line errors."""
import warnings

import mxnet as mx
import pytest

from tusimple_duc.models.presets import PRESETS
from tusimple_duc.models.segnet import count_parameters
from tusimple_duc.models.systems import (PUBLISHED, SYSTEM_PRESETS, SystemSpec, SystemSpecError, build_system,
                                         get_system_spec, published_for)

# (preset, score map size for a 57 x 83 input), derived by hand from each system's geometry:
# full resolution (FCN crops, SegNet unpools to the encoder's sizes); Dilation ceil(x / 8);
# LargeFOV floor(x / 2) + 1 three times (57 -> 29 -> 15 -> 8, 83 -> 42 -> 22 -> 12); the classic
# ResNet stem (7x7/2 pad 3, 3x3/2 pad 1 pool) gives 57 -> 29 -> 15 and 83 -> 42 -> 21 at stride 4
# (RefineNet's scores), one more halving rounding up at stride 8 (15 -> 8, 21 -> 11); the padded
# U-Net halves by floor 4 times and doubles back: 57 -> 28 -> 14 -> 7 -> 3 -> 48, 83 -> 41 -> 20 ->
# 10 -> 5 -> 80.
SIZES_57x83 = {"tiny_fcn8s": (57, 83), "tiny_segnet": (57, 83), "tiny_dilation": (8, 11),
               "tiny_deeplabv1": (8, 12), "tiny_deeplabv3": (8, 11), "tiny_pspnet": (8, 11),
               "tiny_refinenet": (15, 21), "tiny_unet": (48, 80)}


@pytest.mark.parametrize("preset", sorted(SIZES_57x83))
def test_tiny_preset_score_size_at_an_odd_input(preset):
    net = build_system(get_system_spec(preset, num_classes=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PSPNet's unused auxiliary layers
        net.initialize()
        scores = net(mx.nd.zeros((1, 3, 57, 83)))
    assert scores.shape == (1, 3) + SIZES_57x83[preset]
    assert net.prediction_stride == get_system_spec(preset).prediction_stride


def test_every_tiny_preset_is_covered():
    assert sorted(n for n in SYSTEM_PRESETS if n.startswith("tiny")) == sorted(SIZES_57x83)


# Parameter counts of the publications (21 VOC classes): FCN-8s 134M (FCN paper, Table 1),
# SegNet 29.5M (SegNet paper, Table 6), DeepLab-LargeFOV 20.5M (DeepLab v1 paper, Table 2),
# U-Net's 23 convolutions about 31.0M.
@pytest.mark.parametrize("preset, millions, tolerance", [
    ("fcn8s_vgg16", 134.5, 0.5), ("segnet_vgg16", 29.5, 0.1), ("deeplabv1_largefov_vgg16", 20.5, 0.1),
    ("unet", 31.0, 0.1)])
def test_full_size_parameter_counts_match_the_publications(preset, millions, tolerance):
    net = build_system(get_system_spec(preset, num_classes=21))
    assert count_parameters(net) / 1e6 == pytest.approx(millions, abs=tolerance)


def test_pspnet_training_network_returns_the_auxiliary_scores_with_their_weight():
    train = build_system(get_system_spec("tiny_pspnet", num_classes=3, auxiliary=True, aux_loss_weight=0.25))
    infer = build_system(get_system_spec("tiny_pspnet", num_classes=3))
    assert sorted(train.collect_params()) == sorted(infer.collect_params())
    train.initialize()
    scores, aux = train(mx.nd.zeros((1, 3, 64, 64)))
    assert scores.shape == aux.shape == (1, 3, 8, 8)
    assert train.loss_weights == (1.0, 0.25) and infer.loss_weights == (1.0,)


def test_published_rows_name_existing_presets():
    assert all(row.preset in SYSTEM_PRESETS or row.preset in PRESETS for row in PUBLISHED)
    assert [row.miou for row in published_for("fcn8s_vgg16")] == [62.2, 65.3]


@pytest.mark.parametrize("field, value, message", [
    ("system", "fcnx", "SystemSpec.system: must be one of fcn"), ("fcn_variant", "4s", "SystemSpec.fcn_variant"),
    ("output_stride", 4, "SystemSpec.output_stride: must be 8 or 16"), ("vgg_width", 0, "SystemSpec.vgg_width")])
def test_invalid_fields_name_themselves(field, value, message):
    with pytest.raises(SystemSpecError, match=message):
        get_system_spec("tiny_fcn8s", **{field: value})


def test_unknown_preset_and_field():
    with pytest.raises(SystemSpecError, match="unknown system preset 'nope'"):
        get_system_spec("nope")
    with pytest.raises(SystemSpecError, match="unknown SystemSpec field"):
        get_system_spec(SystemSpec("unet"), colour=1)


def test_get_model_builds_system_presets_with_overrides():
    from tusimple_duc.models.presets import get_model

    net = get_model("tiny_dilation", num_classes=5, context="none")
    assert net.spec == get_system_spec("tiny_dilation", num_classes=5, context="none")
    assert net.decoder.context is None and net.num_classes == 5
    assert get_model(SystemSpec("unet", unet_width=2)).spec.unet_width == 2
