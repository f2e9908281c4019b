"""The run folder: where a run writes (the original's layout), resume only the same config,
hostile or broken files, a full disk."""
import json
import os
import pickle
import shutil
import subprocess

import pytest

from engine_helpers import FAST, PREFIX, newest_prefix, run_train, set_args, tiny_config, tiny_overrides
from tusimple_duc.engine import run as run_module
from tusimple_duc.engine.run import train
from tusimple_duc.engine.run_dirs import create_run_dir, newest_run_dir, run_dirs
from tusimple_duc.engine.run_folder import check_resume
from tusimple_duc.engine.state import complete_checkpoints
from tusimple_duc.errors import CheckpointError, DataError, OutputError

#: one batch of one image per epoch (the val list as training list)
QUICK = ("data.use_val=False", "data.batch_size=1", "model.log_interval=100")


def quick(root, model_dir, *extra):
    return tiny_config(root, model_dir, *QUICK, f"data.train_list={os.path.join(root, 'lists', 'val.lst')}", *extra)


class DataRead(Exception):
    """Raised instead of reading the training data: everything before it passed."""


@pytest.fixture
def stop_before_data(monkeypatch):
    def refuse(*args, **kwargs):
        raise DataRead()

    monkeypatch.setattr(run_module.batch_setup, "train_iterator", refuse)


def test_run_folders_are_new_and_ordered(tmp_path):
    # Two runs started in the same second never share a folder (os.mkdir, then -2, -3 ...).
    now = 1780000000.0
    made = [create_run_dir(str(tmp_path), PREFIX, now) for _ in range(11)]
    stamp = os.path.basename(made[0])
    assert [os.path.basename(p) for p in made] == [stamp] + [f"{stamp}-{i}" for i in range(2, 12)]
    create_run_dir(str(tmp_path), PREFIX, now - 1)
    os.makedirs(tmp_path / PREFIX / "notes")
    assert run_dirs(str(tmp_path), PREFIX)[1:] == made and newest_run_dir(str(tmp_path), PREFIX) == made[-1]


def test_fine_tuning_in_the_released_folder_never_writes_there(synthetic_root, finished_run, tmp_path):
    # The released example config: model_dir is the folder holding the released files, and the
    # run loads <model_dir>/<prefix>-0002 from it. Two runs in a row both start and leave it as it was.
    released = tmp_path / "released"
    released.mkdir()
    source = newest_prefix(finished_run)
    for suffix in ("-symbol.json", "-0002.params"):
        shutil.copy(source + suffix, released / (PREFIX + suffix))
    before = {name: (released / name).read_bytes() for name in os.listdir(released)}
    settings = ("model.load_model_dir=" + str(released), "model.load_model_prefix=" + PREFIX,
                "model.load_epoch=2", "model.num_epochs=3")
    first = train(quick(synthetic_root, str(released), *settings))
    second = train(quick(synthetic_root, str(released), *settings))
    assert sorted(os.listdir(released)) == sorted(list(before) + [PREFIX])
    assert {name: (released / name).read_bytes() for name in before} == before
    assert first.run_dir != second.run_dir and run_dirs(str(released), PREFIX) == [first.run_dir, second.run_dir]
    assert second.checkpoint == os.path.join(second.run_dir, f"{PREFIX}-0003.params")
    stamp = os.path.basename(second.run_dir)
    assert sorted(os.listdir(second.run_dir)) == sorted(
        [f"train_{stamp}.cfg", f"{PREFIX}_{stamp}.log", f"{PREFIX}-metrics.jsonl", f"{PREFIX}-symbol.json",
         f"{PREFIX}-0003.params", f"{PREFIX}-0003.states", f"{PREFIX}-0003.state.json", "run.lock"])


def test_resume_refuses_another_config_and_allows_the_listed_keys(synthetic_root, old_run):
    prefix = newest_prefix(old_run)
    changed = tiny_config(synthetic_root, old_run, *FAST, "model.lr=0.02", "data.batch_size=4")
    with pytest.raises(CheckpointError) as err:
        check_resume(changed, prefix, trust_pickled_states=False)
    message = str(err.value)
    assert message.startswith(f"{prefix}-0002.state.json: checkpoint 2 was written with another config: ")
    assert "[model] lr 0.01 -> 0.02" in message and "[data] batch_size 2 -> 4" in message and "\n" not in message
    allowed = tiny_config(synthetic_root, old_run, "model.num_epochs=5", "data.use_val=False", "model.log_interval=3",
                          "model.checkpoint_interval=2", "data.num_workers=1", "misc.draw_network=True")
    epoch, state, notes = check_resume(allowed, prefix, trust_pickled_states=False)
    assert (epoch, state.epoch, state.updates, notes) == (2, 2, 14, [])


def test_resume_compares_with_train_cfg_for_format_1_checkpoints(synthetic_root, old_run):
    prefix = newest_prefix(old_run)
    with open(f"{prefix}-0002.state.json") as handle:
        raw = json.load(handle)
    del raw["config"], raw["optimizer"], raw["params_file_sha1"]
    raw["format"] = 1
    with open(f"{prefix}-0002.state.json", "w") as handle:
        json.dump(raw, handle)
    # Earlier versions wrote the config copy as <prefix>-train.cfg next to the checkpoints.
    stamp = os.path.basename(os.path.dirname(prefix))
    os.rename(os.path.join(os.path.dirname(prefix), f"train_{stamp}.cfg"), prefix + "-train.cfg")
    with pytest.raises(CheckpointError, match=r"\[model\] momentum 0.9 -> 0.5"):
        check_resume(tiny_config(synthetic_root, old_run, *FAST, "model.momentum=0.5"), prefix, False)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("legacy_state", [False, True], ids=["format 2 state", "format 1 state"])
def test_hostile_pickled_states_never_run(synthetic_root, old_run, tmp_path, legacy_state, warm_python):
    prefix = newest_prefix(old_run)
    marker = tmp_path / "pwned"
    with open(f"{prefix}-0002.states", "wb") as handle:
        pickle.dump(_WritesMarker(str(marker)), handle)
    if legacy_state:
        with open(f"{prefix}-0002.state.json") as handle:
            raw = json.load(handle)
        raw.update(format=1, optimizer=None, config=None)
        with open(f"{prefix}-0002.state.json", "w") as handle:
            json.dump(raw, handle)
    result = run_train(set_args(tiny_overrides(synthetic_root, old_run, *FAST)) + ["--resume"], warm_python)
    assert result.returncode == 2
    assert result.stderr == (f"error: {prefix}-0002.states: optimizer state in the pickled format, which runs code "
                             f"when read; pass --trust-pickled-states only if you trust this file\n")
    assert not marker.exists()


def test_truncated_states_is_a_one_line_error(synthetic_root, old_run):
    prefix = newest_prefix(old_run)
    size = os.path.getsize(f"{prefix}-0002.states")
    with open(f"{prefix}-0002.states", "r+b") as handle:
        handle.truncate(size - 100)
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(synthetic_root, old_run, *FAST, "model.num_epochs=3"), resume=True)
    assert str(err.value) == f"{prefix}-0002.states: optimizer state truncated or corrupt (mx.nd.load failed)"


def test_stale_temporaries_of_the_resumed_folder_are_removed(synthetic_root, old_run, stop_before_data):
    run_dir = newest_run_dir(old_run, PREFIX)
    stale = [f".{PREFIX}-0003.k2j4x_a9.tmp.params", f".{PREFIX}-0003.state.zz_00001.tmp.json",
             ".train_x.cfg.abcdefgh.tmp", f".{PREFIX}-0003.q1w2e3r4.tmp.states"]
    others = [f".{PREFIX}-0003.params.tmp", "notes.txt"]
    for name in stale + others:
        open(os.path.join(run_dir, name), "w").close()
    with pytest.raises(DataRead):
        train(tiny_config(synthetic_root, old_run, *FAST, "model.num_epochs=3"), resume=True)
    names = set(os.listdir(run_dir))
    assert not names & set(stale) and set(others) <= names


@pytest.mark.parametrize("kind", ["file", "under a file", "immutable"])
def test_unwritable_model_dir_stops_before_any_data(synthetic_root, tmp_path, stop_before_data, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    model_dir = {"file": blocker, "under a file": blocker / "model", "immutable": tmp_path / "immutable"}[kind]
    if kind == "immutable":
        model_dir.mkdir()
        subprocess.run(["chattr", "+i", str(model_dir)], check=True)
    try:
        with pytest.raises(OutputError) as err:
            train(tiny_config(synthetic_root, str(model_dir), *FAST))
    finally:
        if kind == "immutable":
            subprocess.run(["chattr", "-i", str(model_dir)], check=True)
    assert str(err.value).startswith(f"[model] model_dir {model_dir}: ")


def test_a_missing_list_makes_no_run_folder_and_a_later_stop_is_in_the_log(synthetic_root, tmp_path):
    # The lists are read before the folder exists: a missing one leaves nothing behind.
    missing = str(tmp_path / "nowhere.lst")
    with pytest.raises(DataError, match=r"nowhere\.lst"):
        train(tiny_config(synthetic_root, str(tmp_path / "a"), *FAST, f"data.train_list={missing}"))
    with pytest.raises(DataError, match=r"nowhere\.lst"):
        train(tiny_config(synthetic_root, str(tmp_path / "b"), *FAST, "data.use_val=True", f"data.val_list={missing}"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # Initial weights are loaded inside the run folder: the log ends with why the run stopped.
    weights = ("model.load_model_dir=" + str(tmp_path / "no_weights"), "model.load_model_prefix=gone",
               "model.load_epoch=3")
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(synthetic_root, str(tmp_path / "c"), *FAST, *weights))
    run_dir = newest_run_dir(str(tmp_path / "c"), PREFIX)
    log = os.path.join(run_dir, f"{PREFIX}_{os.path.basename(run_dir)}.log")
    with open(log, encoding="utf-8") as f:
        last = f.read().splitlines()[-1]
    assert last.endswith(f"stopped: CheckpointError: {str(err.value).splitlines()[0]}"), last


def test_train_py_unwritable_model_dir_and_resume_path(synthetic_root, tmp_path, warm_python):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = run_train(set_args(tiny_overrides(synthetic_root, str(blocker), *FAST)), warm_python)
    assert (result.returncode, result.stderr) == (2, f"error: [model] model_dir {blocker}: is a file, not a folder\n")
    missing = run_train(set_args(tiny_overrides(synthetic_root, str(tmp_path), *FAST)) + ["--resume", "nowhere"],
                        warm_python)
    assert (missing.returncode, missing.stderr) == (2, "error: --resume nowhere: no such run folder\n")


def test_resume_of_the_newest_run_without_checkpoint_names_the_older_one(synthetic_root, old_run, stop_before_data):
    older = newest_run_dir(old_run, PREFIX)
    with pytest.raises(DataRead):  # a fresh run that stopped before its first checkpoint
        train(tiny_config(synthetic_root, old_run, *FAST))
    newest = newest_run_dir(old_run, PREFIX)
    assert newest != older
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(synthetic_root, old_run, *FAST), resume=True)
    assert str(err.value) == (f"{newest}: the newest run of {PREFIX} has no complete checkpoint; the newest run "
                              f"with one is {older}: --resume {older}")
    with pytest.raises(DataRead):
        train(tiny_config(synthetic_root, old_run, *FAST), resume=older)


def test_resume_never_writes_into_the_fine_tuning_source(synthetic_root, old_run):
    run_dir = newest_run_dir(old_run, PREFIX)
    config = tiny_config(synthetic_root, old_run, *FAST, f"model.load_model_dir={run_dir}",
                         f"model.load_model_prefix={PREFIX}", "model.load_epoch=1")
    with pytest.raises(CheckpointError, match=r"^--resume .*: this is \[model\] load_model_dir, the folder the run "
                                              r"fine-tunes from; a run never writes there"):
        train(config, resume=run_dir)


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(synthetic_root, tmp_path, monkeypatch):
    import errno

    from tusimple_duc.io.atomic import atomic_write_with

    original = run_module.save_training_state

    def write_until_full(path):
        with open(path, "wb") as handle:  # the temporary file, half written
            handle.write(b"x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def disk_full_at_epoch_2(prefix, state, save_optimizer):
        if state.epoch == 2:
            return original(prefix, state, lambda path: atomic_write_with(path, write_until_full))
        return original(prefix, state, save_optimizer)

    monkeypatch.setattr(run_module, "save_training_state", disk_full_at_epoch_2)
    model_dir = str(tmp_path / "model")
    with pytest.raises(OutputError) as err:
        train(tiny_config(synthetic_root, model_dir, *FAST))
    prefix = newest_prefix(model_dir)
    assert str(err.value) == (f"{prefix}: checkpoint 2 not written (No space left on device); "
                              f"last complete checkpoint: {prefix}-0001.params")
    assert complete_checkpoints(prefix) == [1]
    # The .params written before the .states failed is removed with the temporary file.
    names = os.listdir(os.path.dirname(prefix))
    assert not [name for name in names if name.startswith(".") or "0002" in name]


def test_saved_config_records_the_network_the_checkpoint_defined(synthetic_root, tmp_path):
    # The loaded checkpoint's -symbol.json overrides [network] label_num (5 -> 19), as the
    # released solver replaced its symbol; export --config <run's config copy> then rebuilds it.
    import mxnet as mx

    from tusimple_duc.config import load_train_config
    from tusimple_duc.io.checkpoint import save_checkpoint
    from tusimple_duc.io.export import export_model
    from tusimple_duc.models.presets import build_model, get_spec

    source = build_model(get_spec("tiny_duc_hdc", num_classes=19))
    source.initialize(mx.init.Xavier())
    source(mx.nd.zeros((1, 3, 64, 64)))
    save_checkpoint(source, str(tmp_path / "source"), 1)
    config = quick(synthetic_root, str(tmp_path / "model"), f"model.load_model_dir={tmp_path}",
                   "model.load_model_prefix=source", "model.load_epoch=1", "model.num_epochs=2",
                   "network.label_num=5")
    result = train(config)
    copy = os.path.join(result.run_dir, f"train_{os.path.basename(result.run_dir)}.cfg")
    saved = load_train_config(copy)
    assert (saved.network.label_num, saved.data.ds_rate, saved.network.cell_width) == (19, 8, 2)
    assert saved.model == config.model and saved.data.crop_shape == config.data.crop_shape
    prefix = os.path.join(result.run_dir, PREFIX)
    exported = export_model(prefix, 2, str(tmp_path / "export" / "run"), config=copy)
    assert os.path.isfile(exported.params)
    # The run resumes with the user's config, and with the copy (both describe the same run).
    for again in (config, load_train_config(copy)):
        epoch, _, _ = check_resume(run_module.network.trained_config(again), prefix, trust_pickled_states=False)
        assert epoch == 2
