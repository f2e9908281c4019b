"""The comparison systems (``models.systems``) through train.py and test.py, and their configs."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from engine_helpers import ROOT, TRAIN_PY, newest_prefix, set_args, single_thread_env, tiny_overrides
from tusimple_duc.config import load_train_config
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.checkpoint import load_checkpoint, save_checkpoint, symbol_path
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.presets import get_model
from tusimple_duc.models.systems import SystemSpec

TEST_PY = os.path.join(ROOT, "test.py")

# [network] and [data] of a system run: no DUC keys (aspp, cell_width), ds_rate only where it is
# the system's prediction stride.
TRAIN_CFG = """[env]
use_cpu=True
seed=0
[network]
preset={preset}
label_num=19
ignore_label=255
[model]
num_epochs=1
save_model_prefix={preset}
checkpoint_interval=1
lr=0.01
lr_policy=poly
momentum=0.9
weight_decay=0.0005
eval_metric=acc_ignore,IoU
[data]
dataset=cityscapes
rgb_mean=122.675,116.669,104.008
batch_size=2
{ds_rate}
convert_label=True
scale_factors=1.0
use_mirror=True
use_random_crop=True
use_val=True
"""

TEST_CFG = """[model]
model_dir={model_dir}
model_prefix={preset}
model_epoch=1
gpu=-1
result_dir={result_dir}
label_num=19
[network]
preset={preset}
[data]
dataset=cityscapes
image_list={root}/lists/val.lst
test_img_dir={root}
gt_dir={root}
test_shape=64,128
result_shape=64,128
rgb_mean=122.675,116.669,104.008
[output]
save_color=False
save_probabilities=True
evaluate=True
"""


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _train_cfg(tmp_path, preset: str, ds_rate: str = "") -> str:
    return _write(tmp_path / f"{preset}-train.cfg", TRAIN_CFG.format(preset=preset, ds_rate=ds_rate))


@pytest.mark.parametrize("preset, ds_rate", [("tiny_fcn8s", ""), ("tiny_pspnet", "ds_rate=8")])
def test_train_py_and_test_py_run_a_system(synthetic_root, tmp_path, preset, ds_rate, warm_python):
    model_dir, result_dir = tmp_path / "model", tmp_path / "results"
    train_cfg = _train_cfg(tmp_path, preset, ds_rate)
    trained = subprocess.run([warm_python, TRAIN_PY, train_cfg,
                              *set_args(tiny_overrides(synthetic_root, str(model_dir)))],
                             capture_output=True, text=True, timeout=300, env=single_thread_env())
    assert trained.returncode == 0, trained.stderr[-2000:]
    prefix = newest_prefix(str(model_dir), preset)
    assert os.path.isfile(f"{prefix}-0001.params")
    assert not os.path.exists(symbol_path(prefix))  # no released graph for a comparison system

    # The checkpoint loads strictly into the inference network (PSPNet: without the auxiliary output).
    net = get_model(preset)
    load_checkpoint(net, prefix, 1)
    assert np.isfinite(net(mx.nd.zeros((1, 3, 64, 64))).asnumpy()).all()

    test_cfg = _write(tmp_path / "test.cfg", TEST_CFG.format(model_dir=os.path.dirname(prefix), preset=preset,
                                                             result_dir=result_dir, root=synthetic_root))
    tested = subprocess.run([warm_python, TEST_PY, test_cfg], capture_output=True, text=True, timeout=300,
                            env=single_thread_env())
    assert tested.returncode == 0, tested.stderr[-2000:]
    metrics = json.loads((result_dir / "metrics.json").read_text())
    assert (metrics["dataset"], metrics["num_images"]) == ("cityscapes", 1)
    assert 0.0 <= metrics["summary"]["mIoU"] <= 1.0

    # The same checkpoint on ONNX Runtime (the system's clean ONNX export): the same probabilities.
    onnx_dir = tmp_path / "results_onnxruntime"
    tested = subprocess.run([warm_python, TEST_PY, test_cfg, "--set", "inference.backend=onnxruntime",
                             "--set", f"model.result_dir={onnx_dir}"], capture_output=True, text=True,
                            timeout=300, env=single_thread_env())
    assert tested.returncode == 0, tested.stderr[-2000:]
    assert "warning" not in tested.stderr.lower()
    (name,) = os.listdir(result_dir / "prob")
    expected, got = (np.load(folder / "prob" / name)["probabilities"].astype(np.float32)
                     for folder in (result_dir, onnx_dir))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)  # float16 files


def test_system_checkpoint_round_trip_is_bit_exact(tmp_path):
    net = get_model("tiny_segnet", num_classes=3)
    net.initialize(mx.init.Normal(1.0))
    net(mx.nd.zeros((1, 3, 32, 32)))
    sym_file, _ = save_checkpoint(net, str(tmp_path / "segnet"), 2)
    assert sym_file is None
    copy = get_model("tiny_segnet", num_classes=3)
    load_checkpoint(copy, str(tmp_path / "segnet"), 2)
    originals = net.collect_params()
    for name, param in copy.collect_params().items():
        assert np.array_equal(param.data().asnumpy(), originals[name].data().asnumpy()), name


def _spec(tmp_path, preset: str, ds_rate: str = "", *overrides: str):
    config = load_train_config(_train_cfg(tmp_path, preset, ds_rate),
                               tiny_overrides(str(tmp_path), str(tmp_path / "model"), *overrides))
    return spec_from_train_config(config)


def test_system_spec_from_config(tmp_path):
    assert _spec(tmp_path, "tiny_fcn8s") == SystemSpec("fcn", vgg_width=4, fc_channels=16)
    v3 = _spec(tmp_path, "deeplabv3_resnet101", "ds_rate=8", "network.label_num=21", "network.depth=50")
    assert (v3.system, v3.output_stride, v3.num_classes, v3.depth) == ("deeplab_v3", 8, 21, 50)
    assert _spec(tmp_path, "pspnet_resnet101", "ds_rate=8").prediction_stride == 8


@pytest.mark.parametrize("preset, ds_rate, override, named", [
    ("tiny_fcn8s", "", "network.aspp=4", "[network] aspp"),
    ("tiny_fcn8s", "", "network.depth=50", "[network] depth"),
    ("tiny_pspnet", "ds_rate=8", "network.cell_width=2", "[network] cell_width"),
    ("tiny_pspnet", "ds_rate=16", "network.label_num=19", "[data] ds_rate"),
    ("tiny_dilation", "ds_rate=4", "network.label_num=19", "[data] ds_rate"),
])
def test_keys_that_do_not_apply_to_a_system_are_errors(tmp_path, preset, ds_rate, override, named):
    with pytest.raises(ConfigError, match=r"\n?" + named.replace("[", r"\[").replace("]", r"\]")):
        _spec(tmp_path, preset, ds_rate, override)
