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


def test_uneven_batch_over_gpus_reads():
    """Module splits 3 samples over 2 devices as 2 + 1: the config accepts it (whether the
    devices can share a batch is the engine's check, tests/engine/test_uneven_split.py)."""
    config = load_train_config(TRAIN_CFG, ["env.gpus=0,1", "data.batch_size=3"])
    assert config.data.batch_size == 3 and config.env.gpus == (0, 1)


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


def test_a_config_path_that_is_a_directory_says_so(tmp_path):
    for load in (load_train_config, load_test_config):
        with pytest.raises(ConfigError, match=f"^{tmp_path}: is a directory, not a config file$"):
            load(str(tmp_path))


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


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("model.lr=inf", "[model] lr: must be a finite number, got inf"),
        ("model.lr=0", "[model] lr: must be > 0, got 0.0"),
        ("model.weight_decay=nan", "[model] weight_decay: must be a finite number, got nan"),
        ("model.weight_decay=-1e-4", "[model] weight_decay: must be >= 0, got -0.0001"),
        ("model.poly_power=nan", "[model] poly_power: must be a finite number, got nan"),
        ("model.momentum=nan", "[model] momentum: must be a finite number, got nan"),
        ("model.momentum=1", "[model] momentum: must be >= 0 and < 1, got 1.0"),
        ("model.momentum=-0.1", "[model] momentum: must be >= 0 and < 1, got -0.1"),
        ("model.clip_gradient=-inf", "[model] clip_gradient: must be a finite number, got -inf"),
        ("env.seed=-1", "[env] seed: must be >= 0 and <= 4294967295, got -1"),
        ("env.seed=4294967296", "[env] seed: must be >= 0 and <= 4294967295, got 4294967296"),
        ("env.gpus=0,-1", "[env] gpus: must be >= 0, got -1"),
        ("data.scale_factors=0.5,0", "[data] scale_factors: must be > 0, got 0.0"),
        ("data.scale_factors=1,nan", "[data] scale_factors: must be a finite number, got nan"),
        ("data.rgb_mean=1,2,300", "[data] rgb_mean: must be >= 0 and <= 255, got 300.0"),
        ("data.crop_shape=0,800", "[data] crop_shape: must be >= 1, got 0"),
        ("data.random_bound=-1,0", "[data] random_bound: must be >= 0, got -1"),
        ("data.batch_size=0", "[data] batch_size: must be >= 1, got 0"),
        ("network.ignore_label=256", "[network] ignore_label: must be >= 0 and <= 255, got 256"),
        ("model.num_epochs=0", "[model] num_epochs: must be >= 1, got 0"),
        ("model.lr_factor_epoch=inf", "[model] lr_factor_epoch: must be a finite number, got inf"),
    ],
)
def test_numbers_must_be_finite_and_in_range(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_train_config(TRAIN_CFG, [override])
    assert str(err.value) == f"{TRAIN_CFG}: {fragment}"


@pytest.mark.parametrize("override, fragment", [
    ("inference.crf_sigma_alpha=0", "[inference] crf_sigma_alpha: must be > 0, got 0.0"),
    ("inference.crf_w1=nan", "[inference] crf_w1: must be a finite number, got nan"),
    ("data.test_scales=1,-0.5", "[data] test_scales: must be > 0, got -0.5"),
    ("model.gpu=-2", "[model] gpu: must be >= -1, got -2"),
])
def test_test_config_numbers_are_checked_too(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_test_config(TEST_CFG, [override])
    assert str(err.value) == f"{TEST_CFG}: {fragment}"


def test_every_numeric_key_has_a_range_its_default_satisfies():
    import dataclasses
    import typing

    from tusimple_duc.config import TestConfig, TrainConfig, field_range
    from tusimple_duc.config_values import is_numeric_hint, range_problem

    checked = 0
    for config in (TrainConfig(), TestConfig()):
        for section in dataclasses.fields(config):
            if section.name == "source":
                continue
            values = getattr(config, section.name)
            hints = typing.get_type_hints(type(values))
            for item in dataclasses.fields(values):
                if is_numeric_hint(hints[item.name]):
                    bounds = field_range(type(values), item.name)
                    assert bounds is not None, f"[{section.name}] {item.name} has no range"
                    assert range_problem(bounds, getattr(values, item.name)) is None, item.name
                    checked += 1
    assert checked >= 50  # the test is not vacuous (54 numeric keys when written)


def test_keys_are_case_insensitive_and_sections_are_not(tmp_path):
    # The original read its configs with Python 2's RawConfigParser: option names lower-cased,
    # section names as written.
    path = tmp_path / "mixed.cfg"
    path.write_text("[model]\nLR=0.25\nNum_Epochs=3\n[data]\nTrain_List=x.lst\nBATCH_SIZE=2\n")
    config = load_train_config(str(path), ["model.Momentum=0.5"])
    assert (config.model.lr, config.model.num_epochs, config.model.momentum) == (0.25, 3, 0.5)
    assert (config.data.train_list, config.data.batch_size) == ("x.lst", 2)
    upper = tmp_path / "upper_section.cfg"
    upper.write_text("[Model]\nlr=0.25\n[data]\ntrain_list=x.lst\n")
    with pytest.raises(ConfigError, match=r"upper_section.cfg: \[Model\]: unknown section"):
        load_train_config(str(upper))
    duplicate = tmp_path / "duplicate.cfg"
    duplicate.write_text("[model]\nlr=0.25\nLR=0.5\n[data]\ntrain_list=x.lst\n")
    with pytest.raises(ConfigError, match=r"duplicate.cfg: not a valid INI file: .*line +3.*option 'lr' in section 'model' already exists"):
        load_train_config(str(duplicate))


def test_every_shipped_config_still_reads():
    for kind, loader in (("train", load_train_config), ("test", load_test_config)):
        folder = os.path.join(ROOT, "configs", kind)
        for name in sorted(os.listdir(folder)):
            loader(os.path.join(folder, name))
