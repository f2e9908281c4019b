"""``cd train && python train_model.py ../CONFIG`` and ``cd test && python predict_full_image.py ../CONFIG``
run train.py / test.py with paths relative to those folders, as the original's README says."""
import os
import shutil
import subprocess
import sys

import numpy as np

from compat_helpers import ROOT
from tusimple_duc.io.paramfile import read_params

TRAIN_CONFIG = """[env]
use_cpu=True
kv_store=local
seed=0
[network]
preset=tiny_duc_hdc
label_num=19
[model]
num_epochs=1
model_dir=../work/models
save_model_prefix=tiny
checkpoint_interval=1
lr=0.01
lr_policy=poly
[data]
data_dir=../work/cityscapes
label_dir=../work/cityscapes
train_list=../work/cityscapes/lists/train_7fold.lst
use_val=False
batch_size=7
ds_rate=8
convert_label=True
scale_factors=1
crop_shape=32,32
use_mirror=False
use_random_crop=False
random_bound=0,0
"""

TEST_CONFIG = """[model]
model_dir=../work/models
model_prefix=tiny
model_epoch=1
gpu=-1
result_dir=../work/results
label_num=19
[network]
preset=tiny_duc_hdc
[data]
image_list=../work/cityscapes/lists/val.lst
test_img_dir=../work/cityscapes
gt_dir=../work/cityscapes
test_shape=64,128
result_shape=64,128
"""


def _repository_copy(tmp_path, cityscapes_root):
    """The two scripts and the entry points in a fresh tree with a ``work/`` folder beside them."""
    tree = tmp_path / "repo"
    for name in ("train.py", "test.py"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), tree / name)
    for folder, script in (("train", "train_model.py"), ("test", "predict_full_image.py")):
        (tree / folder).mkdir()
        shutil.copy(os.path.join(ROOT, folder, script), tree / folder / script)
    shutil.copytree(cityscapes_root, tree / "work" / "cityscapes")
    (tree / "configs").mkdir()
    (tree / "configs" / "train.cfg").write_text(TRAIN_CONFIG)
    (tree / "configs" / "test.cfg").write_text(TEST_CONFIG)
    return tree


def _run(cwd, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_train_model_and_predict_full_image_with_relative_paths(tmp_path, cityscapes_root):
    tree = _repository_copy(tmp_path, cityscapes_root)
    trained = _run(tree / "train", "train_model.py", "../configs/train.cfg")
    assert trained.returncode == 0, trained.stderr[-2000:]
    # The original's layout: model_dir/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/; test.cfg is pointed there.
    (run_dir,) = (tree / "work" / "models" / "tiny").iterdir()
    arrays = read_params(str(run_dir / "tiny-0001.params"))
    assert "arg:fc1_cityscapes_c0_weight" in arrays and (run_dir / "tiny-symbol.json").is_file()
    assert np.all(np.isfinite(arrays["arg:fc1_cityscapes_c0_weight"].asnumpy()))
    assert (run_dir / f"train_{run_dir.name}.cfg").is_file() and (run_dir / f"tiny_{run_dir.name}.log").is_file()
    (tree / "configs" / "test.cfg").write_text(TEST_CONFIG.replace("model_dir=../work/models",
                                                                   f"model_dir=../work/models/tiny/{run_dir.name}"))

    tested = _run(tree / "test", "predict_full_image.py", "../configs/test.cfg")
    assert tested.returncode == 0, tested.stderr[-2000:]
    scores = os.listdir(tree / "work" / "results" / "score")
    assert len(scores) == 1 and (tree / "work" / "results" / "confidence.txt").is_file()


def test_bad_config_is_one_error_line_and_exit_2(tmp_path, cityscapes_root):
    tree = _repository_copy(tmp_path, cityscapes_root)
    (tree / "configs" / "train.cfg").write_text(TRAIN_CONFIG.replace("batch_size=7", "batch_size=seven"))
    failed = _run(tree / "train", "train_model.py", "../configs/train.cfg")
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1].startswith("error: ../configs/train.cfg")


def test_a_config_written_for_the_repository_root_is_one_line_from_train(tmp_path, cityscapes_root):
    """cd train && python train_model.py ../configs/root.cfg, whose paths are relative to the repository
    root: one line saying so, before any file (log, model folder) is written."""
    tree = _repository_copy(tmp_path, cityscapes_root)
    (tree / "configs" / "root.cfg").write_text(TRAIN_CONFIG.replace("../work", "work"))
    failed = _run(tree / "train", "train_model.py", "../configs/root.cfg")
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1] == (
        f"error: work/cityscapes/lists/train_7fold.lst: list file not found from {tree / 'train'}; "
        f"../configs/root.cfg is written for the repository root: run python train.py configs/root.cfg from {tree}")
    assert not (tree / "work" / "models").exists() and not (tree / "train" / "work").exists()
    ran = _run(tree, "train.py", "configs/root.cfg", "--set", "model.num_epochs=1")  # from the root it trains
    assert ran.returncode == 0, ran.stderr[-2000:]
