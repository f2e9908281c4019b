"""tools/paper/*.sh before any work (tools/preflight.py) and their REHEARSE=1 run, on datasets in
the official layouts (tusimple_duc.synthetic), in a copy of the repository's scripts and configs."""
import os
import shlex
import shutil
import subprocess
import sys

import pytest

import mxnet as mx

from compat_helpers import ROOT
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.presets import get_model
from tusimple_duc.config import load_train_config
from tusimple_duc.data.lists import read_list
from tusimple_duc.pipelines import preflight as preflight_module
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes
from tusimple_duc.synthetic.kitti_road import write_synthetic_kitti_road
from tusimple_duc.synthetic.voc import write_synthetic_voc

SIZE = (64, 128)


@pytest.fixture
def repo(tmp_path):
    """The scripts, tools and configs the paper scripts run, copied (lists and models are written there)."""
    copy = tmp_path / "repo"
    (copy / "tools").mkdir(parents=True)
    shutil.copytree(os.path.join(ROOT, "tools", "paper"), copy / "tools" / "paper")
    for name in ("preflight.py", "paper_table.py"):
        shutil.copy(os.path.join(ROOT, "tools", name), copy / "tools" / name)
    for name in ("train.py", "test.py"):
        shutil.copy(os.path.join(ROOT, name), copy / name)
    shutil.copytree(os.path.join(ROOT, "configs"), copy / "configs")
    return copy


def run_script(repo, script, python=sys.executable, **env):
    environment = dict(os.environ, PYTHON=python, OMP_NUM_THREADS="1", PYTHONPATH=ROOT,
                       MXNET_HOME=str(repo / "mxnet_home"), **env)
    return subprocess.run(["bash", str(repo / "tools" / "paper" / script)], env=environment, capture_output=True,
                          text=True, timeout=900, cwd=str(repo.parent))


def commands(stdout):
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def table_rows(stdout):
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("experiment"))
    rows = {}
    for line in lines[start + 2:]:
        if not line or line.startswith("rehearsal done"):
            break
        rows[line.split()[0]] = line.split()
    return rows


def test_kitti_rehearsal_runs_every_step_and_ends_with_the_table(repo, tmp_path, monkeypatch, warm_python):
    root = str(tmp_path / "data_road")
    write_synthetic_kitti_road(root, n_train=3, n_test=1, image_size=SIZE)
    done = run_script(repo, "kitti.sh", python=warm_python, REHEARSE="1", DATA_ROOT=root)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"preflight: made data_lists/kitti/train_patches.lst" in out  # the user's full list, made first
    assert len(read_list(str(repo / "data_lists" / "kitti" / "train_patches.lst"))) == 3  # 320x patches of 64x128
    assert "preflight: the real run will need: ImageNet weights resnet101_v1" in out
    steps = [c[1] for c in commands(out)]
    assert steps == ["train.py", "test.py", "tools/paper_table.py"]
    rehearsal = repo / "rehearsal" / "kitti"
    monkeypatch.chdir(repo)  # the printed paths are relative to the repository
    train = load_train_config(commands(out)[0][2], [])
    assert (train.network.width, train.model.num_epochs, train.env.use_cpu, train.model.pretrained) == (8, 1, True, None)
    assert (rehearsal / "results" / "kitti_road" / "metrics.json").is_file()
    row = table_rows(out)["kitti_road"]
    assert row[-3] == "96.41" and row[-2] != "-"  # the paper's number beside a measured one
    assert "rehearsal done" in out


def test_voc_rehearsal_fine_tunes_the_pretrained_rehearsal(repo, tmp_path, warm_python):
    root = str(tmp_path / "VOCdevkit")
    write_synthetic_voc(root, n_images=6, n_aug_only=2, image_size=SIZE)
    done = run_script(repo, "voc.sh", python=warm_python, REHEARSE="1", DATA_ROOT=root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "preflight: made data_lists/voc/train_aug.lst" in done.stdout
    assert "preflight: made data_lists/voc/trainval_aug.lst" in done.stdout
    finetune = load_train_config(str(repo / "rehearsal" / "voc" / "configs" / "voc_finetune_trainval_aug.cfg"))
    assert finetune.model.load_model_dir == os.path.join("rehearsal", "voc", "models", "voc_pretrain_train_aug")
    assert table_rows(done.stdout)["voc_finetune_trainval_aug"][-2] != "-"


def test_sec412_rehearsal_on_cityscapes(repo, tmp_path, warm_python):
    root = str(tmp_path / "cityscapes")
    write_synthetic_cityscapes(root, {"train": 2, "val": 2}, image_size=SIZE)
    done = run_script(repo, "sec412.sh", python=warm_python, REHEARSE="1", DATA_ROOT=root)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = table_rows(done.stdout)
    assert sorted(rows) == ["sec412_bigger_patch_duc", "sec412_deconv_one_step", "sec412_deconv_two_step"]
    assert all(row[-2] != "-" for row in rows.values())


@pytest.mark.parametrize("script, trained, tested", [("table1.sh", 8, 8), ("table2.sh", 4, 4), ("table3.sh", 7, 4)])
def test_rehearsals_of_the_cityscapes_tables(repo, tmp_path, monkeypatch, warm_python, script, trained, tested):
    """REHEARSE=1: the lists are made (fine + coarse concatenated), every training reads a
    rehearsal config (tiny backbone, one epoch, the CPU, the short lists; phase 2 goes on from
    the rehearsed phase 1), every experiment is trained, tested and scored, and the table ends
    with a measured number in every row."""
    root = str(tmp_path / "cityscapes")
    write_synthetic_cityscapes(root, {"train": 2, "val": 2}, image_size=SIZE, coarse=True)
    done = run_script(repo, script, python=warm_python, REHEARSE="1", DATA_ROOT=root)
    assert done.returncode == 0, done.stderr[-3000:]
    lists = repo / "data_lists" / "cityscapes"
    monkeypatch.chdir(repo)  # the printed paths are relative to the repository
    steps = commands(done.stdout)
    trains = [c for c in steps if c[1] == "train.py"]
    assert len(trains) == trained and [c[1] for c in steps].count("test.py") == tested  # table 3: phase 2 tested
    for command in trains:
        config = load_train_config(command[2], [])
        phase2 = bool(config.model.load_model_dir)  # goes on from the rehearsed phase 1's epoch 1
        assert (config.network.width, config.model.num_epochs, config.env.use_cpu) == (8, 2 if phase2 else 1, True)
        assert not phase2 or (config.model.load_model_dir.startswith("rehearsal/") and config.model.load_epoch == 1)
        assert len(read_list(config.data.train_list)) <= 4 and os.path.isfile(config.data.train_list)
    rows = table_rows(done.stdout)
    measured = {name: row[-2] for name, row in rows.items()}
    assert len(rows) == tested
    assert all(value != "-" and 0 <= float(value) <= 100 for value in measured.values()), measured
    if script == "table3.sh":  # 2 fine + 2 coarse images, 7 patches each, numbered anew
        both = read_list(str(lists / "train_fine_coarse_7fold.lst"))
        assert [e.index for e in both] == list(range(28))
        assert [("gtCoarse" in e.label) for e in both] == [False] * 14 + [True] * 14


def test_missing_items_are_one_line_each_before_any_work(repo, tmp_path):
    root = str(tmp_path / "cityscapes")
    write_synthetic_cityscapes(root, {"train": 1, "val": 1}, image_size=SIZE)  # no gtCoarse, no train_extra
    done = run_script(repo, "table3.sh", DATA_ROOT=root, GPUS="0,1")
    assert done.returncode == 2
    lines = [line for line in done.stdout.splitlines() if line.startswith("preflight: missing: ")]
    coarse = [line for line in lines if "train_fine_coarse_7fold.lst" in line]
    assert len(coarse) == 1  # one line, though three experiments read the list
    assert "gtCoarse/train_extra/ (gtCoarse.zip)" in coarse[0] and "leftImg8bit/train_extra/" in coarse[0]
    assert "https://www.cityscapes-dataset.com/downloads/" in coarse[0]
    assert any(line.startswith("preflight: missing: GPUS=0,1: this machine has") for line in lines)
    assert any("get_model('resnet101_v1', pretrained=True)" in line for line in lines)
    assert "+ " not in done.stdout and not (repo / "models").exists()  # nothing started
    assert done.stderr.strip().endswith("missing item(s); nothing was started")


def test_disk_and_gpu_checks(tmp_path, monkeypatch):
    root = tmp_path / "cityscapes"
    write_synthetic_cityscapes(str(root), {"train": 1, "val": 1}, image_size=SIZE)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(os.path.join(ROOT, "configs"), tmp_path / "configs")
    monkeypatch.setattr(preflight_module, "visible_gpus", lambda: 2)
    monkeypatch.setattr(preflight_module, "free_bytes", lambda folder: 10**9)
    monkeypatch.setattr(preflight_module, "locate_model_file", lambda source: source)
    result = preflight_module.preflight(["table1_row8_duc_ds8_aspp6_cell2"], str(root), "lists", "0,1,2,3")
    assert result.problems[0] == ("GPUS=0,1,2,3: this machine has 2 GPU(s) (mx.context.num_gpus()); "
                                  "set GPUS to devices 0..1")
    config = load_train_config("configs/train/table1_row8_duc_ds8_aspp6_cell2.cfg")
    count = preflight_module.parameter_count(config)
    net = get_model(spec_from_train_config(config))
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    assert count == sum(p.data().size for name, p in net.collect_params().items() if not name.endswith(("running_mean", "running_var", "moving_mean", "moving_var")))
    disk = [line for line in result.problems if line.startswith("disk:")]
    assert disk == [f"disk: the checkpoints need about {count * 8 * 20 / 1e9:.1f} GB where the models go "
                    f"(models/table1_row8_duc_ds8_aspp6_cell2), 1.0 GB free: free space, or raise "
                    f"[model] checkpoint_interval (--set model.checkpoint_interval=5)"]
    assert os.path.isfile("data_lists/cityscapes/train_12fold.lst") and os.path.isfile("lists/val.lst")
