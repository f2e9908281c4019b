"""configs/{train,test}/<system preset>.cfg: one pair per full-size comparison system, naming its
publication's number (from ``PUBLISHED``) and building the preset's network spec."""
import dataclasses
import os

import pytest

from engine_helpers import ROOT
from tusimple_duc.config import load_test_config, load_train_config
from tusimple_duc.engine.batches import sampling_spec
from tusimple_duc.models.from_config import spec_from_test_config, spec_from_train_config
from tusimple_duc.models.systems import PUBLISHED, SYSTEM_PRESETS

FULL_SIZE = [name for name in SYSTEM_PRESETS if not name.startswith("tiny_")]
DATASET_NAME = {"voc": "VOC 2012 test", "cityscapes": "Cityscapes test"}
# The publications' settings these configs restate (lr, momentum, batch, aux weight, init).
STATED = {
    "fcn8s_vgg16": dict(lr=1e-4, momentum=0.9, batch_size=20, pretrained="vgg16"),
    "segnet_vgg16": dict(lr=0.1, momentum=0.9, batch_size=12, pretrained="vgg16_bn"),
    "dilation8_vgg16_frontend": dict(lr=1e-3, momentum=0.9, batch_size=14, pretrained="vgg16"),
    "deeplabv1_largefov_vgg16": dict(lr=1e-3, momentum=0.9, batch_size=20, pretrained="vgg16"),
    "deeplabv3_resnet101": dict(lr=0.007, momentum=0.9, batch_size=16, pretrained="resnet101_v1"),
    "pspnet_resnet101": dict(lr=0.01, momentum=0.9, batch_size=16, pretrained="resnet101_v1s"),
    "unet": dict(momentum=0.99, batch_size=1, pretrained=None),
}


def _path(kind: str, preset: str) -> str:
    return os.path.join(ROOT, "configs", kind, f"{preset}.cfg")


def _header(path: str) -> str:
    with open(path) as f:
        return "".join(line for line in f if line.startswith("#"))


@pytest.mark.parametrize("preset", FULL_SIZE)
def test_system_configs_build_their_preset_and_name_the_published_number(preset):
    train = load_train_config(_path("train", preset))
    spec = spec_from_train_config(train)
    assert spec == dataclasses.replace(SYSTEM_PRESETS[preset], num_classes=train.network.label_num,
                                       bn_use_global_stats=spec.bn_use_global_stats)
    assert sampling_spec(train, spec).prediction_stride == spec.prediction_stride
    test = load_test_config(_path("test", preset))
    test_spec = spec_from_test_config(test)
    assert (test_spec.system, test_spec.num_classes) == (spec.system, spec.num_classes)
    assert test.model.model_prefix == train.model.save_model_prefix
    rows = [row for row in PUBLISHED if row.preset == preset and row.dataset == DATASET_NAME[train.data.dataset]]
    for path in (_path("train", preset), _path("test", preset)):
        header = _header(path)
        for row in rows:
            assert f"{row.miou} % mIoU on {row.dataset}" in header, path
        if not rows:
            assert "no " + DATASET_NAME[train.data.dataset] + " number" in header, path


@pytest.mark.parametrize("preset, stated", sorted(STATED.items()))
def test_system_configs_restate_the_publications_settings(preset, stated):
    config = load_train_config(_path("train", preset))
    assert config.model.lr == pytest.approx(stated.get("lr", config.model.lr))
    assert (config.model.momentum, config.data.batch_size, config.model.pretrained) == (
        stated["momentum"], stated["batch_size"], stated["pretrained"])


def test_pspnet_config_trains_with_the_auxiliary_weight_and_poly_schedule():
    config = load_train_config(_path("train", "pspnet_resnet101"))
    spec = spec_from_train_config(config)
    assert spec.aux_loss_weight == pytest.approx(0.4)
    assert (config.model.lr_policy, config.model.poly_power, config.data.crop_shape) == ("poly", 0.9, (712, 712))
    assert config.network.bn_use_global_stats is False
