"""The run folder: one run per prefix, --overwrite, resume only the same config, hostile or broken files."""
import json
import os
import pickle
import shutil
import subprocess

import pytest

from engine_helpers import run_train, set_args, tiny_config, tiny_overrides
from tusimple_duc.engine import run as run_module
from tusimple_duc.engine.run import train
from tusimple_duc.engine.run_folder import check_resume, prepare_run_folder
from tusimple_duc.errors import CheckpointError, OutputError

PREFIX = "tiny_duc_hdc"
FAST = ("model.num_epochs=2", "data.use_val=False", "model.log_interval=100")


class NetworkBuilt(Exception):
    """Raised instead of building the network: everything before it passed."""


@pytest.fixture
def stop_before_network(monkeypatch):
    def refuse(config):
        raise NetworkBuilt()

    monkeypatch.setattr(run_module.network, "build_network", refuse)


@pytest.fixture(scope="module")
def finished_run(synthetic_root, tmp_path_factory):
    """A model_dir holding a complete 2-epoch run of the tiny config."""
    model_dir = str(tmp_path_factory.mktemp("finished") / "model")
    train(tiny_config(synthetic_root, model_dir, *FAST))
    return model_dir


@pytest.fixture
def old_run(finished_run, tmp_path):
    """A private copy of :func:`finished_run`'s folder."""
    model_dir = str(tmp_path / "model")
    shutil.copytree(finished_run, model_dir)
    return model_dir


def test_fresh_run_into_an_earlier_runs_checkpoints_stops(synthetic_root, old_run, stop_before_network):
    before = sorted(os.listdir(old_run))
    config = tiny_config(synthetic_root, old_run, *FAST, "model.lr=0.02")
    with pytest.raises(CheckpointError) as err:
        train(config)
    prefix = os.path.join(old_run, PREFIX)
    assert str(err.value) == (
        f"{prefix}-0002.*: {old_run} holds checkpoints of an earlier run of {PREFIX} (epochs 1..2); continue it "
        f"with --resume, or start again with --overwrite (moves its files into {old_run}/replaced-<time>/)")
    assert sorted(os.listdir(old_run)) == before


def test_overwrite_moves_the_earlier_run_aside(synthetic_root, old_run, stop_before_network):
    before = {name: open(os.path.join(old_run, name), "rb").read() for name in os.listdir(old_run)}
    assert f"{PREFIX}-0002.states" in before and f"{PREFIX}-metrics.jsonl" in before
    (open(os.path.join(old_run, "notes.txt"), "w")).write("mine")
    with pytest.raises(NetworkBuilt):
        train(tiny_config(synthetic_root, old_run, *FAST, "model.lr=0.02"), overwrite=True)
    replaced = [name for name in os.listdir(old_run) if name.startswith("replaced-")]
    assert len(replaced) == 1 and sorted(os.listdir(old_run)) == sorted(replaced + ["notes.txt"])
    aside = os.path.join(old_run, replaced[0])
    assert {name: open(os.path.join(aside, name), "rb").read() for name in os.listdir(aside)} == before


def test_fine_tuning_source_in_the_same_prefix_is_kept(synthetic_root, old_run):
    # The released example config loads <model_dir>/<prefix>-0020 and saves 0021.. next to it.
    own_source = ("model.load_model_dir=" + old_run, "model.load_model_prefix=" + PREFIX)
    prefix = os.path.join(old_run, PREFIX)
    config = tiny_config(synthetic_root, old_run, *FAST, *own_source, "model.load_epoch=2", "model.num_epochs=4")
    before = sorted(os.listdir(old_run))
    moved = prepare_run_folder(config, prefix, resume=False, overwrite=False)
    assert any("files (no checkpoint)" in note for note in moved)  # train.cfg, train.log, metrics.jsonl
    kept = sorted(os.listdir(old_run))
    assert [n for n in kept if not n.startswith("replaced-")] == [n for n in before if "0" in n or "symbol" in n]
    config = tiny_config(synthetic_root, old_run, *FAST, *own_source, "model.load_epoch=1", "model.num_epochs=4")
    with pytest.raises(CheckpointError, match=r"holds checkpoints of an earlier run of tiny_duc_hdc \(epochs 2..2\)"):
        prepare_run_folder(config, prefix, resume=False, overwrite=False)


def test_resume_refuses_another_config_and_allows_the_listed_keys(synthetic_root, old_run):
    prefix = os.path.join(old_run, PREFIX)
    changed = tiny_config(synthetic_root, old_run, *FAST, "model.lr=0.02", "data.batch_size=4")
    with pytest.raises(CheckpointError) as err:
        check_resume(changed, prefix, trust_pickled_states=False)
    message = str(err.value)
    assert message.startswith(f"{prefix}-0002.state.json: checkpoint 2 was written with another config: ")
    assert "[model] lr 0.01 -> 0.02" in message and "[data] batch_size 2 -> 4" in message and "\n" not in message
    allowed = tiny_config(synthetic_root, old_run, "model.num_epochs=5", "data.use_val=False", "model.log_interval=3",
                          "model.checkpoint_interval=2", "data.num_workers=1", "misc.draw_network=True")
    epoch, state = check_resume(allowed, prefix, trust_pickled_states=False)
    assert (epoch, state.epoch, state.updates) == (2, 2, 14)


def test_resume_compares_with_train_cfg_for_format_1_checkpoints(synthetic_root, old_run):
    prefix = os.path.join(old_run, PREFIX)
    with open(f"{prefix}-0002.state.json") as handle:
        raw = json.load(handle)
    del raw["config"], raw["optimizer"]
    raw["format"] = 1
    with open(f"{prefix}-0002.state.json", "w") as handle:
        json.dump(raw, handle)
    with pytest.raises(CheckpointError, match=r"\[model\] momentum 0.9 -> 0.5"):
        check_resume(tiny_config(synthetic_root, old_run, *FAST, "model.momentum=0.5"), prefix, False)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("legacy_state", [False, True], ids=["format 2 state", "format 1 state"])
def test_hostile_pickled_states_never_run(synthetic_root, old_run, tmp_path, legacy_state):
    prefix = os.path.join(old_run, PREFIX)
    marker = tmp_path / "pwned"
    with open(f"{prefix}-0002.states", "wb") as handle:
        pickle.dump(_WritesMarker(str(marker)), handle)
    if legacy_state:
        with open(f"{prefix}-0002.state.json") as handle:
            raw = json.load(handle)
        raw.update(format=1, optimizer=None, config=None)
        with open(f"{prefix}-0002.state.json", "w") as handle:
            json.dump(raw, handle)
    result = run_train(set_args(tiny_overrides(synthetic_root, old_run, *FAST)) + ["--resume"])
    assert result.returncode == 2
    assert result.stderr == (f"error: {prefix}-0002.states: optimizer state in the pickled format, which runs code "
                             f"when read; pass --trust-pickled-states only if you trust this file\n")
    assert not marker.exists()


def test_truncated_states_is_a_one_line_error(synthetic_root, old_run):
    prefix = os.path.join(old_run, PREFIX)
    size = os.path.getsize(f"{prefix}-0002.states")
    with open(f"{prefix}-0002.states", "r+b") as handle:
        handle.truncate(size - 100)
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(synthetic_root, old_run, *FAST, "model.num_epochs=3"), resume=True)
    assert str(err.value) == f"{prefix}-0002.states: optimizer state truncated or corrupt (mx.nd.load failed)"


def test_stale_temporaries_of_this_prefix_are_removed(synthetic_root, old_run, stop_before_network):
    stale = [f".{PREFIX}-0003.k2j4x_a9.tmp.params", f".{PREFIX}-0003.state.zz_00001.tmp.json",
             f".{PREFIX}-train.cfg.abcdefgh.tmp", f".{PREFIX}-0003.q1w2e3r4.tmp.states"]
    others = [".other-0001.k2j4x_a9.tmp.params", f".{PREFIX}-notes.k2j4x_a9.tmp.txt", f".{PREFIX}-0003.params.tmp"]
    for name in stale + others:
        open(os.path.join(old_run, name), "w").close()
    with pytest.raises(NetworkBuilt):
        train(tiny_config(synthetic_root, old_run, *FAST, "model.num_epochs=3"), resume=True)
    names = set(os.listdir(old_run))
    assert not names & set(stale) and set(others) <= names


@pytest.mark.parametrize("kind", ["file", "under a file", "immutable"])
def test_unwritable_model_dir_stops_before_any_work(synthetic_root, tmp_path, stop_before_network, kind):
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


def test_train_py_unwritable_model_dir_and_flags(synthetic_root, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    result = run_train(set_args(tiny_overrides(synthetic_root, str(blocker), *FAST)))
    assert (result.returncode, result.stderr) == (2, f"error: [model] model_dir {blocker}: is a file, not a folder\n")
    both = run_train(set_args(tiny_overrides(synthetic_root, str(tmp_path), *FAST)) + ["--resume", "--overwrite"])
    assert both.returncode == 2 and both.stderr.startswith("error: --resume and --overwrite: choose one")


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(synthetic_root, tmp_path, monkeypatch):
    import errno

    from tusimple_duc.engine.state import complete_checkpoints
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
    prefix = os.path.join(model_dir, PREFIX)
    assert str(err.value) == (f"{prefix}: checkpoint 2 not written (No space left on device); "
                              f"last complete checkpoint: {prefix}-0001.params")
    assert complete_checkpoints(prefix) == [1]
    assert not [name for name in os.listdir(model_dir) if name.startswith(".")]
