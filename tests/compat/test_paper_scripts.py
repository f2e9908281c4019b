"""tools/paper/*.sh in dry-run mode and tools/paper_table.py on synthetic metrics files."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from compat_helpers import ROOT
from tusimple_duc.config import load_test_config, load_train_config
from tusimple_duc.models.from_config import spec_from_test_config, spec_from_train_config

sys.path.insert(0, os.path.join(ROOT, "tools"))
import paper_table  # noqa: E402

SCRIPTS = {
    "table1.sh": 8, "table2.sh": 4, "table3.sh": 4, "sec412.sh": 3, "kitti.sh": 1, "voc.sh": 1,
}


def _dry_run(script, **env):
    environment = dict(os.environ, DRY_RUN="1", PYTHON=sys.executable, OMP_NUM_THREADS="1", **env)
    done = subprocess.run(["bash", os.path.join(ROOT, "tools", "paper", script)], env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line[2:]) for line in done.stdout.splitlines() if line.startswith("+ ")]


def _config_and_overrides(command):
    overrides = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    return os.path.join(ROOT, command[2]), overrides


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_dry_run_commands_build_matching_train_and_test_networks(script):
    commands = _dry_run(script, GPUS="2,3")
    trained = {}
    tested = []
    for command in commands:
        assert command[0] == sys.executable
        if command[1] == "train.py":
            path, overrides = _config_and_overrides(command)
            config = load_train_config(path, overrides)
            assert config.env.gpus == "2,3" or list(config.env.gpus) == [2, 3]
            trained[config.model.save_model_prefix] = spec_from_train_config(config)
            if config.model.load_model_prefix:  # a next phase reads the newest run of the one before
                assert config.model.load_model_prefix in trained
                assert config.model.load_model_dir == f"<newest run folder of {config.model.load_model_prefix}>"
        elif command[1] == "test.py":
            path, overrides = _config_and_overrides(command)
            config = load_test_config(path, overrides)
            assert config.model.gpu == 2
            assert config.model.result_dir == os.path.join("results/paper", config.model.model_prefix)
            # the network test.py builds is the one trained, read from the last checkpoint
            assert spec_from_test_config(config) == trained[config.model.model_prefix]
            assert config.model.model_dir == f"<newest run folder of {config.model.model_prefix}>"
            assert config.model.model_epoch == load_train_config(
                os.path.join(ROOT, "configs", "train", config.model.model_prefix + ".cfg")).model.num_epochs
            tested.append(config.model.model_prefix)
        else:
            assert command[1] == "tools/paper_table.py" and command[2] == "table"
            assert command[5:] == tested
    assert len(tested) == SCRIPTS[script]
    assert all(name in paper_table.EXPERIMENTS for name in tested)


def test_run_dir_names_the_newest_run_folder(tmp_path):
    from tusimple_duc.engine.run_dirs import create_run_dir

    config = os.path.join(ROOT, "configs", "train", "kitti_road.cfg")
    overrides = [f"model.model_dir={tmp_path}"]
    prefix = load_train_config(config, overrides).model.save_model_prefix
    folders = [create_run_dir(str(tmp_path), prefix, now) for now in (1780000000.0, 1780000100.0)]
    assert paper_table.run_dir(config, overrides) == folders[1]


def test_cpu_run_and_unknown_argument(tmp_path):
    commands = _dry_run("kitti.sh", GPUS="-1")
    train = next(c for c in commands if c[1] == "train.py")
    config = load_train_config(*_config_and_overrides(train))
    assert config.env.use_cpu is True
    failed = subprocess.run(["bash", os.path.join(ROOT, "tools", "paper", "voc.sh"), "--fast"],
                            capture_output=True, text=True)
    assert failed.returncode == 2 and failed.stderr.startswith("error: unknown argument --fast")


def _metrics(folder, name, summary):
    os.makedirs(folder / name)
    (folder / name / "metrics.json").write_text(json.dumps({"dataset": "x", "summary": summary}))


def test_table_on_synthetic_metrics(tmp_path):
    _metrics(tmp_path, "table1_row1_baseline_ds8", {"mIoU": 0.7012, "iIoU": 0.5})
    _metrics(tmp_path, "kitti_road", {"MaxF": 0.9700, "AP": 0.9})
    _metrics(tmp_path, "table2_dilation_rf", {"mIoU": None})
    text = paper_table.table_text(str(tmp_path), ["table1_row1_baseline_ds8", "kitti_road", "table2_dilation_rf",
                                                  "voc_finetune_trainval_aug"])
    rows = {line.split()[0]: line for line in text.splitlines()[2:]}
    assert rows["table1_row1_baseline_ds8"].split()[-3:] == ["72.3", "70.1", "-2.2"]
    assert rows["kitti_road"].split()[-3:] == ["96.41", "97.0", "+0.6"]
    assert rows["table2_dilation_rf"].split()[-3:] == ["75.4", "-", "-"]
    assert rows["voc_finetune_trainval_aug"].split()[-3:] == ["83.1", "-", "-"]


def test_every_train_config_naming_a_paper_number_is_an_experiment_or_a_phase():
    for name, (table, row, key) in paper_table.EXPERIMENTS.items():
        with open(os.path.join(ROOT, "configs", "train", name + ".cfg")) as handle:
            header = handle.read().split("[")[0]
        assert f"Paper: {paper_table.paper_number(name):g}" in header or f"{paper_table.paper_number(name):g}" in header


def test_table_with_broken_metrics_is_one_error_line(tmp_path):
    os.makedirs(tmp_path / "kitti_road")
    (tmp_path / "kitti_road" / "metrics.json").write_text("{}")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "paper_table.py"), "table", "--results",
                           str(tmp_path), "kitti_road"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'kitti_road' / 'metrics.json'}: no summary 'MaxF' " \
                                  f"(KeyError: 'summary')"
