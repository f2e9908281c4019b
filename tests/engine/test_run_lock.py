"""A run folder belongs to one live process: two runs at once, a second process on a held folder, kill -9."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from engine_helpers import (FAST, PREFIX, TINY_CFG, TRAIN_PY, run_train, set_args, single_thread_env, tiny_config,
                            tiny_overrides)
from tusimple_duc.engine import run as run_module
from tusimple_duc.engine.logs import read_metrics
from tusimple_duc.engine.run import train
from tusimple_duc.engine.run_dirs import newest_run_dir, run_dirs, run_prefix
from tusimple_duc.engine.run_lock import LOCK_NAME, RunFolderInUseError, acquire_run_lock
from tusimple_duc.engine.state import complete_checkpoints


class DataRead(Exception):
    """Raised instead of reading the training data: the run folder was opened and locked."""


def _hold_lock(run_dir: str) -> subprocess.Popen:
    """Another process that locks ``run_dir`` as train.py does and sleeps; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\n"
                               "from tusimple_duc.engine.run_lock import acquire_run_lock\n"
                               "acquire_run_lock(sys.argv[1]); print('locked', flush=True); time.sleep(120)\n",
                               run_dir], stdout=subprocess.PIPE, text=True, env=single_thread_env(),
                              cwd=os.path.dirname(TRAIN_PY))
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_held_run_folder_is_refused_and_kill_9_frees_it(synthetic_root, old_run, monkeypatch):
    run_dir = newest_run_dir(old_run, PREFIX)
    holder = _hold_lock(run_dir)
    try:
        with open(os.path.join(run_dir, LOCK_NAME)) as handle:
            record = json.load(handle)
        assert (record["pid"], record["host"]) == (holder.pid, socket.gethostname())
        refused = run_train(set_args(tiny_overrides(synthetic_root, old_run, *FAST)) + ["--resume"])
        assert refused.returncode == 2
        assert refused.stderr == (f"error: {run_dir}: in use by process {holder.pid} on {socket.gethostname()} "
                                  f"(started {record['started']}), which is training in it; wait for it to end or "
                                  f"stop it (a run folder belongs to one run at a time)\n")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The kernel released the lock of the killed process: --resume opens the folder.
    monkeypatch.setattr(run_module.batch_setup, "train_iterator", lambda *a, **k: (_ for _ in ()).throw(DataRead()))
    with pytest.raises(DataRead):
        train(tiny_config(synthetic_root, old_run, *FAST), resume=True)
    assert run_dirs(old_run, PREFIX) == [run_dir]


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    lock = acquire_run_lock(str(tmp_path))
    with pytest.raises(RunFolderInUseError, match=rf"^{tmp_path}: in use by process {os.getpid()} on "):
        acquire_run_lock(str(tmp_path))
    lock.release()
    acquire_run_lock(str(tmp_path)).release()


def test_two_runs_of_one_config_at_once_each_write_their_own_folder(synthetic_root, tmp_path):
    model_dir = str(tmp_path / "model")
    args = set_args(tiny_overrides(synthetic_root, model_dir, "model.num_epochs=1", "data.use_val=False",
                                   "data.batch_size=1", "model.log_interval=100",
                                   f"data.train_list={os.path.join(synthetic_root, 'lists', 'val.lst')}"))
    runs = [subprocess.Popen([sys.executable, TRAIN_PY, TINY_CFG, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=single_thread_env()) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    folders = run_dirs(model_dir, PREFIX)
    assert len(folders) == 2
    printed = sorted(out.split("run folder ", 1)[1].split(",", 1)[0] for out, _ in outputs)
    assert printed == sorted(folders)
    for folder in folders:
        prefix = run_prefix(folder, PREFIX)
        assert complete_checkpoints(prefix) == [1]
        records = read_metrics(prefix + "-metrics.jsonl")
        assert [r["kind"] for r in records] == ["epoch", "checkpoint"]  # its own run only
        assert records[1]["path"] == prefix + "-0001.params"
        stamp = os.path.basename(folder)
        assert sorted(n for n in os.listdir(folder) if n.endswith((".cfg", ".log"))) == \
            [f"{PREFIX}_{stamp}.log", f"train_{stamp}.cfg"]
