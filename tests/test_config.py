"""The config schema: original INI files read unchanged, typed values, clear errors."""
import os

import pytest

from tusimple_duc.config import (
    PAPER_TEST_SCALES,
    load_test_config,
    load_train_config,
    parse_value,
    to_ini,
)
from tusimple_duc.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_CFG = os.path.join(ROOT, "configs", "train", "train_cityscapes.cfg")
TEST_CFG = os.path.join(ROOT, "configs", "test", "test_full_image.cfg")


def test_released_train_config_reads_unchanged():
    config = load_train_config(TRAIN_CFG)
    assert config.env.gpus == (0,) and config.env.use_cpu is False and config.env.kv_store == "local"
    assert (config.network.label_num, config.network.aspp, config.network.aspp_stride) == (19, 4, 6)
    assert config.network.cell_width == 2 and config.network.bn_use_global_stats is True
    assert config.model.lr == 1e-4 and config.model.lr_policy == "step" and config.model.lr_factor == 0.5
    assert config.model.weight_decay == 5e-5 and config.model.load_epoch == 20
    assert config.model.eval_metric == ("acc_ignore", "IoU")
    assert config.data.val_list is None
    assert config.data.rgb_mean == (122.675, 116.669, 104.008)
    assert config.data.scale_factors == (0.5, 0.75, 1.0, 1.25, 1.5)
    assert config.data.crop_shape == (800, 800) and config.data.random_bound == (120, 120)
    assert config.misc.draw_network is False


def test_released_test_config_reads_unchanged():
    config = load_test_config(TEST_CFG)
    assert config.model.model_epoch == 20 and config.model.gpu == 0
    assert config.data.test_shape == (1024, 2048) and config.data.result_shape == (1024, 2048)
    assert config.data.test_scales == (1.0,) and config.scales == (1.0,)
    assert config.inference.mode == "whole" and config.inference.flip is False


def test_multi_scales_expands_to_paper_scales():
    config = load_test_config(TEST_CFG, ["model.multi_scales=True"])
    assert config.scales == PAPER_TEST_SCALES == (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    explicit = load_test_config(TEST_CFG, ["model.multi_scales=True", "data.test_scales=0.5,1"])
    assert explicit.scales == (0.5, 1.0)


def test_overrides_are_typed():
    config = load_train_config(TRAIN_CFG, ["env.gpus=0,1,2,3", "data.batch_size=4", "model.lr_policy=poly"])
    assert config.env.gpus == (0, 1, 2, 3) and config.data.batch_size == 4 and config.model.lr_policy == "poly"


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("data.foo=1", "[data] foo: unknown key"),
        ("bogus.key=1", "[bogus]: unknown section"),
        ("data.crop_shape=800", "[data] crop_shape: expected 2 integers"),
        ("data.batch_size=two", "[data] batch_size: expected an integer, got 'two'"),
        ("data.batch_size=1.5", "[data] batch_size: expected an integer"),
        ("env.use_cpu=maybe", "[env] use_cpu: expected True or False"),
        ("model.lr_policy=cosine", "[model] lr_policy: expected one of step, poly"),
        ("data.ds_rate=6", "[data] ds_rate: must be 4, 8 or 16"),
        ("network.cell_width=3", "cell_width: must be 1, 2 or 4"),
        ("data.crop_shape=801,800", "[data] crop_shape: sides must be positive multiples"),
        ("data.use_val=True", "[data] val_list: must be set"),
        ("nodot=1", "expected section.key=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_train_config(TRAIN_CFG, [override])
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_batch_must_split_over_gpus():
    with pytest.raises(ConfigError, match="does not split evenly over 4 devices"):
        load_train_config(TRAIN_CFG, ["env.gpus=0,1,2,3", "data.batch_size=6"])


def test_values_are_never_evaluated(tmp_path):
    path = tmp_path / "evil.cfg"
    path.write_text("[data]\ntrain_list=x\nbatch_size=__import__('os').getpid()\n")
    with pytest.raises(ConfigError, match=r"\[data\] batch_size: expected an integer"):
        load_train_config(str(path))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_train_config(str(tmp_path / "missing.cfg"))
    broken = tmp_path / "broken.cfg"
    broken.write_text("lr=1\n")
    with pytest.raises(ConfigError, match="broken.cfg: not a valid INI file"):
        load_train_config(str(broken))


def test_to_ini_round_trips(tmp_path):
    config = load_train_config(TRAIN_CFG, ["network.blocks_per_stage=1,1,2,1", "data.num_workers=2"])
    path = tmp_path / "resolved.cfg"
    path.write_text(to_ini(config))
    again = load_train_config(str(path))
    for section in ("env", "network", "model", "data", "misc"):
        assert getattr(again, section) == getattr(config, section)


def test_parse_value_optional_and_lists():
    from typing import Optional, Tuple

    assert parse_value(Optional[int], "None") is None
    assert parse_value(Optional[int], "") is None
    assert parse_value(Optional[int], "-1") == -1
    assert parse_value(Tuple[float, ...], "0.5, 1,2") == (0.5, 1.0, 2.0)
