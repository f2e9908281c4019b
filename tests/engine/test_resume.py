"""--resume after kill -9 ends with the parameters of an uninterrupted run."""
import signal
import subprocess
import sys
import time

import numpy as np

from engine_helpers import TINY_CFG, TRAIN_PY, newest_prefix, run_train, set_args, single_thread_env, tiny_overrides
from tusimple_duc.engine.logs import read_metrics
from tusimple_duc.engine.run_dirs import run_dirs
from tusimple_duc.engine.state import complete_checkpoints, load_training_state
from tusimple_duc.io.paramfile import read_params

PREFIX = "tiny_duc_hdc"
EPOCHS = 4


def settings(root, model_dir):
    # Full released augmentation (scales, jitter, mirror), poly schedule, validation.
    return set_args(tiny_overrides(root, model_dir, f"model.num_epochs={EPOCHS}", "model.log_interval=1"))


def test_resume_after_kill_matches_uninterrupted_run(synthetic_root, tmp_path):
    straight_dir, killed_dir = str(tmp_path / "straight"), str(tmp_path / "killed")
    killed = subprocess.Popen([sys.executable, TRAIN_PY, TINY_CFG, *settings(synthetic_root, killed_dir)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=single_thread_env())
    try:
        deadline = time.monotonic() + 90
        while not (run_dirs(killed_dir, PREFIX) and complete_checkpoints(newest_prefix(killed_dir))) \
                and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    prefix = newest_prefix(killed_dir)
    interrupted_at = complete_checkpoints(prefix)[-1]
    assert 1 <= interrupted_at < EPOCHS

    straight = run_train(settings(synthetic_root, straight_dir))
    assert straight.returncode == 0, straight.stderr
    # kill -9 leaves the run folder locked by no one: --resume continues it in place.
    resumed = run_train(settings(synthetic_root, killed_dir) + ["--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed from checkpoint {interrupted_at}" in resumed.stderr
    assert len(run_dirs(killed_dir, PREFIX)) == 1

    final = f"{EPOCHS:04d}"
    a = read_params(f"{newest_prefix(straight_dir)}-{final}.params")
    b = read_params(f"{prefix}-{final}.params")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key].asnumpy(), a[key].asnumpy(), rtol=0, atol=1e-6, err_msg=key)
    state = load_training_state(prefix, EPOCHS)
    assert state.updates == load_training_state(newest_prefix(straight_dir), EPOCHS).updates == 28

    # The metrics log tells one history: every epoch once, no torn line.
    epochs = [r["epoch"] for r in read_metrics(prefix + "-metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs == list(range(EPOCHS))
    with open(prefix + "-metrics.jsonl") as handle:
        assert all(line.endswith("}\n") for line in handle)
