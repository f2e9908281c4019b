"""train(): learning on the tiny set, output files, metrics log and plot, NaN stop, config checks."""
import importlib.util
import json
import os
import re

import mxnet as mx
import numpy as np
import pytest

from engine_helpers import ROOT, TINY_CFG, newest_prefix, run_train, set_args, tiny_config, tiny_overrides
from tusimple_duc.config import load_train_config
from tusimple_duc.engine import run as run_module
from tusimple_duc.engine.logs import read_metrics
from tusimple_duc.viz.curves import plot_training_log
from tusimple_duc.engine.run import train
from tusimple_duc.engine.state import load_training_state, parameter_digest
from tusimple_duc.engine.trainer import TrainingDivergedError
from tusimple_duc.errors import CheckpointError, ConfigError, DUCError
from tusimple_duc.io.names import gluon_name
from tusimple_duc.io.paramfile import read_params

PREFIX = "tiny_duc_hdc"


def params_digest(path):
    """Digest of a saved .params in Gluon names (as state.parameter_digest computes it)."""
    return parameter_digest({gluon_name(k.split(":", 1)[1]): v.asnumpy() for k, v in read_params(path).items()})


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """6 epochs x 7 updates, fixed crops (no augmentation), validation, summary."""
    model_dir = str(tmp_path_factory.mktemp("run"))
    config = tiny_config(synthetic_root, model_dir, "model.num_epochs=6", "model.checkpoint_interval=4",
                         "data.scale_factors=1", "data.use_mirror=False", "data.use_random_crop=False",
                         "model.lr=0.02", "misc.draw_network=True", "model.log_interval=3")
    return config, train(config), model_dir


def test_loss_decreases(trained):
    _, result, model_dir = trained
    records = read_metrics(os.path.join(result.run_dir, f"{PREFIX}-metrics.jsonl"))
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == list(range(6)) and result.updates == 42
    first, last = epochs[0]["loss"], epochs[-1]["loss"]
    assert last < 0.6 * first, (first, last)
    assert epochs[-1]["pixel_acc"] > epochs[0]["pixel_acc"]


def test_output_files(trained):
    config, result, model_dir = trained
    prefix = os.path.join(result.run_dir, PREFIX)
    # The original solver's folder: <model_dir>/<prefix>/<YYYY_MM_DD_HH:MM:SS>/.
    assert os.path.dirname(result.run_dir) == os.path.join(model_dir, PREFIX)
    assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d\d:\d\d:\d\d", os.path.basename(result.run_dir))
    # Checkpoints every 4 epochs and after the last one.
    for epoch in (4, 6):
        for suffix in (".params", ".states", ".state.json"):
            assert os.path.isfile(f"{prefix}-{epoch:04d}{suffix}")
    assert not os.path.exists(f"{prefix}-0005.params")
    assert result.checkpoint == f"{prefix}-0006.params"
    state = load_training_state(prefix, 6)
    assert (state.epoch, state.updates, state.updates_per_epoch) == (6, 42, 7)
    assert state.params_sha1 == result.params_sha1 == params_digest(result.checkpoint)
    assert os.path.isfile(prefix + "-symbol.json")
    stamp = os.path.basename(result.run_dir)
    again = load_train_config(os.path.join(result.run_dir, f"train_{stamp}.cfg"))
    assert again.model == config.model and again.data == config.data and again.network == config.network
    summary = open(prefix + "-summary.txt").read()
    assert "conv1_1_3x3_s2" in summary and "Total params" in summary
    log_text = open(os.path.join(result.run_dir, f"{PREFIX}_{stamp}.log")).read()
    assert "Saved checkpoint" in log_text
    # the two IoUs the lines carry are named once: the project's (classes present) and the original's
    legend = next(line for line in log_text.splitlines() if "metrics: " in line)
    assert "mean_iou = this project's mean IoU over the classes present" in legend
    assert "IoU = the original's IoUMetric: mean over ALL classes (an absent class counts 0), the epoch so far" \
        in legend


def test_metrics_log_and_plot(trained, tmp_path, capsys):
    _, result, model_dir = trained
    log = os.path.join(result.run_dir, f"{PREFIX}-metrics.jsonl")
    records = read_metrics(log)
    train_records = [r for r in records if r["kind"] == "train"]
    # 7 batches per epoch, a record every 3 batches: batches 3 and 6 of each epoch.
    assert [(r["epoch"], r["batch"]) for r in train_records[:3]] == [(0, 3), (0, 6), (1, 3)]
    assert train_records[1]["progress"] == pytest.approx(6 / 7)
    assert {"loss", "pixel_acc", "mean_iou", "lr", "samples_per_sec"} <= set(train_records[0])
    val = [r for r in records if r["kind"] == "val"]
    assert len(val) == 6 and len(val[0]["per_class_iou"]) == 19
    assert 0 <= val[-1]["mean_iou"] <= 1 and val[-1]["mean_iou"] == result.validation["mean_iou"]
    png = str(tmp_path / "curves.png")
    counts = plot_training_log(log, png)
    assert counts["train:loss"] == 12 and counts["val:mean_iou"] == 6 and counts["train:lr"] == 12
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    from tusimple_duc.cli import run_cli

    spec = importlib.util.spec_from_file_location("plot_log_tool", os.path.join(ROOT, "tools", "plot_log.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert run_cli(tool.main, [log, png]) == 0
    assert capsys.readouterr().out.strip().endswith(
        "mIoU panel: mean_iou = this project's mean IoU over the classes present (ground truth or prediction), "
        "batches since the previous line (the log's IoU is the original's)")


class NaNAfter:
    """Wraps the training iterator: from ``(epoch, batch)`` on, images are NaN."""

    def __init__(self, inner, epoch, batch):
        self.inner, self.epoch, self.batch = inner, epoch, batch
        self.count = 0
        self.dataset = inner.dataset

    def set_epoch(self, epoch):
        self.current, self.count = epoch, 0
        self.inner.set_epoch(epoch)

    def __iter__(self):
        for batch in self.inner:
            if (self.current, self.count) >= (self.epoch, self.batch):
                batch.data[0][:] = float("nan")
            self.count += 1
            yield batch

    def close(self):
        self.inner.close()


def test_nan_loss_stops_and_keeps_the_last_checkpoint(synthetic_root, tmp_path, monkeypatch):
    original = run_module.batch_setup.train_iterator
    monkeypatch.setattr(run_module.batch_setup, "train_iterator",
                        lambda *args, **kw: NaNAfter(original(*args, **kw), epoch=1, batch=2))
    config = tiny_config(synthetic_root, str(tmp_path), "model.num_epochs=3", "data.use_val=False")
    with pytest.raises(TrainingDivergedError) as err:
        train(config)
    message = str(err.value)
    prefix = newest_prefix(str(tmp_path))
    # A NaN input gives a NaN loss, or (oneDNN's fused ReLU maps NaN to 0) a finite loss with NaN gradients.
    assert ("loss is nan at epoch 1 batch 2" in message or "gradient is nan (loss" in message) and "\n" not in message
    assert "at epoch 1 batch 2" in message
    assert f"last good checkpoint: {prefix}-0001.params" in message
    assert isinstance(err.value, DUCError)
    assert not os.path.exists(f"{prefix}-0002.params")
    saved = read_params(f"{prefix}-0001.params")
    assert all(np.isfinite(v.asnumpy()).all() for v in saved.values())
    assert load_training_state(prefix, 1).params_sha1 == params_digest(f"{prefix}-0001.params")


def test_non_finite_parameters_are_never_saved(synthetic_root, tmp_path, monkeypatch):
    original = run_module._Run.train_epoch

    def poison_second_epoch(self, trainer, data_iter, epoch, *args):
        values = original(self, trainer, data_iter, epoch, *args)
        if epoch == 1:
            param = trainer.net.collect_params()["conv1_1_3x3_s2_weight"]
            param.set_data(param.data() * float("inf"))
        return values

    monkeypatch.setattr(run_module._Run, "train_epoch", poison_second_epoch)
    config = tiny_config(synthetic_root, str(tmp_path), "model.num_epochs=3", "data.use_val=False")
    with pytest.raises(TrainingDivergedError, match="conv1_1_3x3_s2_weight .* is NaN or infinite after epoch 1: "
                                                    "checkpoint 2 not written; last good checkpoint: .*0001.params"):
        train(config)
    prefix = newest_prefix(str(tmp_path))
    assert os.path.isfile(f"{prefix}-0001.params") and not os.path.exists(f"{prefix}-0002.params")


def test_train_py_reports_config_errors_in_one_line(synthetic_root, tmp_path, warm_python):
    bad_key = run_train(set_args(tiny_overrides(synthetic_root, str(tmp_path), "model.lr_polcy=poly")), warm_python)
    assert bad_key.returncode == 2
    assert bad_key.stderr.startswith("error: ") and "[model] lr_polcy: unknown key" in bad_key.stderr
    assert "Traceback" not in bad_key.stderr and len(bad_key.stderr.strip().splitlines()) == 1
    no_data = run_train(set_args(tiny_overrides(str(tmp_path / "nowhere"), str(tmp_path))), warm_python)
    assert no_data.returncode == 2 and "list file not found" in no_data.stderr


def test_train_py_run_prints_no_warning(synthetic_root, tmp_path):
    # A normal run logs to stdout and its log file; Python and Gluon warnings would go to stderr.
    done = run_train(set_args(tiny_overrides(synthetic_root, str(tmp_path), "model.num_epochs=1")))
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "warn(" not in done.stderr, done.stderr


@pytest.mark.parametrize("overrides, environ, fragment", [
    (["env.kv_store=dist_sync"], {}, "[env] kv_store: dist_sync needs the parameter-server environment"),
    (["env.kv_store=dist_async"], {}, "[env] kv_store: dist_async is not supported"),
    (["env.kv_store=nccl"], {}, "[env] kv_store: nccl needs GPUs"),
    ([], {"DMLC_ROLE": "worker"}, "[env] kv_store: local in a parameter-server worker"),
    (["model.eval_metric=acc_ignore,mIoU"], {}, "[model] eval_metric: unknown metric 'mIoU'"),
    (["model.lr_policy=step", "model.lr_factor=2"], {}, "[model] lr_factor: the step policy multiplies"),
    (["env.use_cpu=False", "env.gpus=0"], {}, "[env] gpus: GPU 0 not available"),
    (["data.ds_rate=None", "data.crop_shape=60,60"], {}, "[data] crop_shape: sides must be multiples of the output stride 8"),
    (["network.preset=tiny_nope"], {}, "[network] unknown model preset 'tiny_nope'"),
])
def test_engine_cross_checks_name_the_key(synthetic_root, tmp_path, monkeypatch, overrides, environ, fragment):
    for name in ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if mx.context.num_gpus() and "env.gpus=0" in overrides:
        pytest.fail("this test expects a machine without GPUs")
    with pytest.raises(ConfigError) as err:
        train(tiny_config(synthetic_root, str(tmp_path), *overrides))
    assert fragment in str(err.value) and str(err.value).startswith(TINY_CFG)
    assert not os.path.exists(os.path.join(str(tmp_path), PREFIX))  # checked before the run folder is made


def test_metrics_log_lines_are_json(trained):
    _, result, _ = trained
    with open(os.path.join(result.run_dir, f"{PREFIX}-metrics.jsonl")) as handle:
        for line in handle:
            assert isinstance(json.loads(line), dict)


def test_resume_without_checkpoint_is_a_clear_error(synthetic_root, tmp_path):
    config = tiny_config(synthetic_root, str(tmp_path), "data.use_val=False")
    with pytest.raises(CheckpointError) as err:
        train(config, resume=True)
    assert str(err.value) == (f"{tmp_path}/{PREFIX}: no run folder <YYYY_MM_DD_HH:MM:SS> to resume (run without "
                              f"--resume first, or give the folder: --resume PATH)")
    empty_run = tmp_path / "elsewhere"
    empty_run.mkdir()
    with pytest.raises(CheckpointError, match=rf"^{empty_run}/{PREFIX}-\*\.state\.json: no complete checkpoint to "
                                              rf"resume from in {empty_run} \(run without --resume first\)$"):
        train(config, resume=str(empty_run))
