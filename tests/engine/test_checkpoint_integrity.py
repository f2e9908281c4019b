"""Checkpoint integrity: a flipped bit is caught (file digest, values digest), a full disk (a real
tmpfs) is one line and leaves no half checkpoint, an incomplete checkpoint is passed over with a note."""
import contextlib
import hashlib
import json
import os
import shutil
import subprocess

import mxnet as mx
import pytest

from engine_helpers import FAST, PREFIX, newest_prefix, run_train, set_args, tiny_config, tiny_overrides
from tusimple_duc.engine import network
from tusimple_duc.engine import run as run_module
from tusimple_duc.engine.run import train
from tusimple_duc.engine.state import complete_checkpoints
from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.checkpoint import load_checkpoint
from tusimple_duc.io.checksum import ChecksumError


def _flip_middle_byte(path: str) -> str:
    """Invert one byte in the middle of ``path`` (inside the array data); returns the new SHA-1."""
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        value = handle.read(1)[0]
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([value ^ 0xFF]))
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


def _recorded(prefix: str, epoch: int) -> dict:
    with open(f"{prefix}-{epoch:04d}.state.json") as handle:
        return json.load(handle)


def test_flipped_bit_stops_resume_naming_the_newest_intact_checkpoint(synthetic_root, old_run, warm_python):
    prefix = newest_prefix(old_run)
    expected = _recorded(prefix, 2)["params_file_sha1"]
    with open(f"{prefix}-0002.params", "rb") as handle:
        assert hashlib.sha1(handle.read()).hexdigest() == expected
    found = _flip_middle_byte(f"{prefix}-0002.params")
    result = run_train(set_args(tiny_overrides(synthetic_root, old_run, *FAST, "model.num_epochs=3")) + ["--resume"],
                       warm_python)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {prefix}-0002.params: checksum mismatch (expected sha1 {expected}, found {found}): the file changed "
        f"after it was written (a flipped bit, a partial copy); newest intact checkpoint: {prefix}-0001.params "
        f"(move the newer checkpoint files away to resume from it)\n")


def test_every_load_of_a_written_checkpoint_checks_its_digest(synthetic_root, old_run):
    # test.py, export and fine-tuning load through io.checkpoint.load_checkpoint.
    prefix = newest_prefix(old_run)
    config = tiny_config(synthetic_root, old_run, *FAST)
    net = network.build_network(config)
    network.initialise(net, [mx.cpu()], 0, (1, 3, 64, 64))
    load_checkpoint(net, prefix, 2)
    found = _flip_middle_byte(f"{prefix}-0002.params")
    with pytest.raises(ChecksumError) as err:
        load_checkpoint(net, prefix, 2)
    expected = _recorded(prefix, 2)["params_file_sha1"]
    assert str(err.value).startswith(f"{prefix}-0002.params: checksum mismatch (expected sha1 {expected}, "
                                     f"found {found})")


def test_checkpoint_of_an_earlier_version_is_checked_by_its_values_digest(synthetic_root, old_run):
    prefix = newest_prefix(old_run)
    state = _recorded(prefix, 2)
    del state["params_file_sha1"]  # written before file digests were recorded
    with open(f"{prefix}-0002.state.json", "w") as handle:
        json.dump(state, handle)
    _flip_middle_byte(f"{prefix}-0002.params")
    with pytest.raises(CheckpointError) as err:
        train(tiny_config(synthetic_root, old_run, *FAST, "model.num_epochs=3"), resume=True)
    assert str(err.value).startswith(f"{prefix}-0002.params: parameters differ from the digest of checkpoint 2 "
                                     f"(expected sha1 {state['params_sha1']}, found ")


class DataRead(Exception):
    """Raised instead of reading the training data."""


def test_resume_passes_over_an_incomplete_checkpoint_with_a_note(synthetic_root, old_run, monkeypatch):
    prefix = newest_prefix(old_run)
    shutil.copy(f"{prefix}-0002.params", f"{prefix}-0003.params")  # a checkpoint whose state was never written
    monkeypatch.setattr(run_module.batch_setup, "train_iterator", lambda *a, **k: (_ for _ in ()).throw(DataRead()))
    with pytest.raises(DataRead):
        train(tiny_config(synthetic_root, old_run, *FAST, "model.num_epochs=4"), resume=True)
    run_dir = os.path.dirname(prefix)
    with open(os.path.join(run_dir, f"{PREFIX}_{os.path.basename(run_dir)}.log")) as handle:
        log = handle.read()
    assert (f"WARNING ignoring incomplete checkpoint 3 ({prefix}-0003.params without its "
            f"{PREFIX}-0003.state.json)") in log


@contextlib.contextmanager
def _tmpfs(mount_point: str, size: int):
    """A tmpfs of ``size`` bytes at ``mount_point`` (unmounted afterwards). Mounting must work here: no skip."""
    os.makedirs(mount_point)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount_point],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs for the full-disk test: {mounted.stderr}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", mount_point], check=True)


def test_full_disk_is_one_line_and_leaves_no_half_checkpoint(synthetic_root, finished_run, tmp_path, warm_python):
    # A real ENOSPC inside mx.nd.save (MXNetError "FileStream.Write incomplete"), not a faked OSError.
    run_size = sum(os.path.getsize(os.path.join(folder, name))
                   for folder, _, names in os.walk(finished_run) for name in names)
    with _tmpfs(str(tmp_path / "disk"), 2 * run_size + (1 << 20)) as disk:
        model_dir = os.path.join(disk, "model")
        shutil.copytree(finished_run, model_dir)
        prefix = newest_prefix(model_dir)
        stats = os.statvfs(disk)
        room = os.path.getsize(prefix + "-symbol.json") + 64 * 1024  # the symbol and log lines fit, not the params
        assert os.path.getsize(prefix + "-0002.params") > room
        with open(os.path.join(disk, "filler"), "wb") as handle:
            handle.write(b"\0" * (stats.f_bavail * stats.f_frsize - room))
        args = set_args(tiny_overrides(synthetic_root, model_dir, *FAST, "model.num_epochs=3")) + ["--resume"]
        full = run_train(args, warm_python)
        assert full.returncode == 2 and "Traceback" not in full.stderr and "MXNetError" not in full.stderr
        assert full.stderr.splitlines()[-1] == (f"error: {prefix}: checkpoint 3 not written (No space left on "
                                                f"device); last complete checkpoint: {prefix}-0002.params")
        names = os.listdir(os.path.dirname(prefix))
        assert not [name for name in names if name.startswith(".") or "0003" in name], names
        os.remove(os.path.join(disk, "filler"))
        again = run_train(args, warm_python)
        assert again.returncode == 0, again.stderr
        assert complete_checkpoints(prefix) == [1, 2, 3]
