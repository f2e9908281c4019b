"""Configs -> ModelSpec: the preset, then every key that is set."""
import os

import pytest

from tusimple_duc.config import load_test_config, load_train_config
from tusimple_duc.errors import ConfigError
from tusimple_duc.models.from_config import spec_from_test_config, spec_from_train_config
from tusimple_duc.models.presets import PRESETS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_CFG = os.path.join(ROOT, "configs", "train", "train_cityscapes.cfg")
TEST_CFG = os.path.join(ROOT, "configs", "test", "test_full_image.cfg")


def test_released_configs_describe_the_released_network():
    released = PRESETS["resnet101_duc_hdc_released"]
    assert spec_from_train_config(load_train_config(TRAIN_CFG)) == released
    assert spec_from_test_config(load_test_config(TEST_CFG)) == released


def test_unset_keys_keep_the_preset_values():
    config = load_train_config(TRAIN_CFG, ["network.preset=resnet101_duc_ds8_aspp6_cell1"])
    spec = spec_from_train_config(config)
    # The released config sets aspp=4 and cell_width=2 explicitly: they override the preset.
    assert (spec.aspp, spec.cell_width) == (4, 2)
    bare = load_train_config(None, ["data.train_list=x", "network.preset=resnet101_duc_ds8_aspp6_cell1"])
    spec = spec_from_train_config(bare)
    assert (spec.aspp, spec.cell_width, spec.stem) == (6, 1, "classic")


def test_test_config_keys_apply():
    config = load_test_config(TEST_CFG, ["network.preset=tiny_duc_hdc", "data.cell_width=1", "model.label_num=2"])
    spec = spec_from_test_config(config)
    assert (spec.cell_width, spec.num_classes, spec.width) == (1, 2, PRESETS["tiny_duc_hdc"].width)


def test_bad_preset_names_the_key():
    config = load_test_config(TEST_CFG, ["network.preset=nope"])
    with pytest.raises(ConfigError, match=r"test_full_image.cfg: \[network\] unknown model preset 'nope'"):
        spec_from_test_config(config)


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "configs", "test"))))
def test_every_shipped_test_config_loads_and_builds_a_spec(name):
    config = load_test_config(os.path.join(ROOT, "configs", "test", name))
    spec = spec_from_test_config(config)
    assert spec.num_classes == config.model.label_num
    assert spec.num_classes == {"cityscapes": 19, "kitti": 2, "voc": 21}[config.data.dataset]
