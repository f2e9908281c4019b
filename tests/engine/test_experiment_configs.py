"""configs/train/*.cfg: every paper experiment has a valid config naming its row and number."""
import glob
import os

import pytest

from engine_helpers import ROOT
from tusimple_duc.config import load_train_config
from tusimple_duc.engine.batches import sampling_spec
from tusimple_duc.engine.schedules import schedule_from_config
from tusimple_duc.models.from_config import spec_from_train_config

CONFIG_DIR = os.path.join(ROOT, "configs", "train")

# The paper's numbers (paper.md: Tables 1-3, sections 4.1.2, 4.2, 4.3) and what each row is.
PAPER = {
    "table1_row1_baseline_ds8": ("72.3", dict(head="bilinear", output_stride=8, aspp=4)),
    "table1_row2_baseline_ds4": ("70.9", dict(head="bilinear", output_stride=4, aspp=4)),
    "table1_row3_duc_ds8_noaspp_noaug_cell1": ("71.9", dict(head="duc", output_stride=8, aspp=0, cell_width=1)),
    "table1_row4_duc_ds8_aspp4_noaug_cell1": ("72.8", dict(head="duc", output_stride=8, aspp=4, cell_width=1)),
    "table1_row5_duc_ds8_aspp4_cell1": ("74.3", dict(head="duc", output_stride=8, aspp=4, cell_width=1)),
    "table1_row6_duc_ds4_aspp4_cell1": ("73.7", dict(head="duc", output_stride=4, aspp=4, cell_width=1)),
    "table1_row7_duc_ds8_aspp6_cell1": ("74.5", dict(head="duc", output_stride=8, aspp=6, cell_width=1)),
    "table1_row8_duc_ds8_aspp6_cell2": ("74.7", dict(head="duc", output_stride=8, aspp=6, cell_width=2)),
    "sec412_bigger_patch_duc": ("75.7", dict(head="duc", aspp=6, cell_width=2)),
    "sec412_deconv_one_step": ("75.1", dict(head="deconv", deconv_mode="one-step")),
    "sec412_deconv_two_step": ("75.0", dict(head="deconv", deconv_mode="two-step")),
    "table2_no_dilation": ("72.9", dict(dilation_schedule="none")),
    "table2_dilation_conv": ("75.0", dict(dilation_schedule="dilation-conv")),
    "table2_dilation_rf": ("75.4", dict(dilation_schedule="dilation-rf")),
    "table2_dilation_bigger": ("76.4", dict(dilation_schedule="dilation-bigger", depth=101)),
    "table3_r101_duc_hdc_fine_coarse": ("76.2", dict(dilation_schedule="dilation-bigger", depth=101)),
    "table3_r152_deconv_phase1_bn": ("76.4", dict(head="deconv", depth=152, bn_use_global_stats=False)),
    "table3_r152_deconv_phase2": ("76.4", dict(head="deconv", depth=152, bn_use_global_stats=True)),
    "table3_r152_duc_hdc_phase1_bn": ("76.7", dict(head="duc", depth=152, bn_use_global_stats=False)),
    "table3_r152_duc_hdc_phase2": ("76.7", dict(head="duc", depth=152, bn_use_global_stats=True)),
    "table3_r152_duc_hdc_fine_coarse_phase1_bn": ("77.1", dict(depth=152, bn_use_global_stats=False)),
    "table3_r152_duc_hdc_fine_coarse_phase2": ("77.1", dict(depth=152, bn_use_global_stats=True)),
    "kitti_road": ("96.41", dict(num_classes=2, head="duc")),
    "voc_pretrain_train_aug": ("83.1", dict(num_classes=21, depth=152, head="duc")),
    "voc_finetune_trainval_aug": ("83.1", dict(num_classes=21, depth=152, head="duc")),
}
PAPER_SETTINGS = dict(lr=2.5e-4, lr_policy="poly", poly_power=0.9, momentum=0.9, weight_decay=5e-4)


def config_path(name):
    return os.path.join(CONFIG_DIR, name + ".cfg")


def header(path):
    with open(path) as handle:
        return "".join(line for line in handle if line.startswith("#"))


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_config_is_valid_and_names_its_result(name):
    number, architecture = PAPER[name]
    path = config_path(name)
    config = load_train_config(path)
    spec = spec_from_train_config(config)
    for field, value in architecture.items():
        assert getattr(spec, field) == value, field
    sampling_spec(config, spec)  # crop, scheme and label geometry are consistent
    schedule = schedule_from_config(config.model, 1000, path)
    assert schedule.power == 0.9 and schedule(1) < 2.5e-4
    for key, value in PAPER_SETTINGS.items():
        assert getattr(config.model, key) == value, key
    text = header(path)
    assert "Reproduces the paper's" in text and f"{number}" in text
    assert config.model.save_model_prefix == name


def test_paper_patch_settings():
    twelve = load_train_config(config_path("table1_row5_duc_ds8_aspp4_cell1")).data
    assert (twelve.patch_scheme, twelve.crop_shape, twelve.inner_crop, twelve.batch_size) == (
        "12fold", (800, 800), (544, 544), 12)
    bigger = load_train_config(config_path("sec412_bigger_patch_duc"))
    assert (bigger.data.patch_scheme, bigger.data.crop_shape, bigger.data.batch_size) == ("7fold", (880, 880), 4)
    assert bigger.env.gpus == (0, 1, 2, 3) and bigger.data.random_bound == (80, 80)  # 160x160 box
    kitti = load_train_config(config_path("kitti_road")).data
    assert kitti.crop_shape == (320, 320) and kitti.dataset == "kitti" and not kitti.use_random_crop
    voc = load_train_config(config_path("voc_pretrain_train_aug")).data
    assert voc.crop_shape == (512, 512) and voc.dataset == "voc"


def test_resnet152_second_phase_continues_the_first():
    for name in ("table3_r152_deconv", "table3_r152_duc_hdc", "table3_r152_duc_hdc_fine_coarse"):
        first = load_train_config(config_path(name + "_phase1_bn"))
        second = load_train_config(config_path(name + "_phase2"))
        assert first.model.num_epochs == 10 and second.model.num_epochs - second.model.load_epoch == 20
        assert second.model.load_model_prefix == first.model.save_model_prefix
        assert second.model.load_model_dir == first.model.model_dir
        assert spec_from_train_config(first).head == spec_from_train_config(second).head


def test_every_training_config_loads():
    paths = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.cfg")))
    assert {os.path.basename(p)[:-4] for p in paths} >= set(PAPER) | {"tiny_synthetic", "train_cityscapes"}
    for path in paths:
        config = load_train_config(path)
        sampling_spec(config, spec_from_train_config(config))
