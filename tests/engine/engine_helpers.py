"""Helpers of the engine tests: tiny-network configs on the synthetic set, train.py runs."""
import os
import subprocess
import sys
from typing import List

from tusimple_duc.config import load_train_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_CFG = os.path.join(ROOT, "configs", "train", "tiny_synthetic.cfg")
TRAIN_PY = os.path.join(ROOT, "train.py")
PREFIX = "tiny_duc_hdc"
#: a short run: 2 epochs of 7 batches, no validation
FAST = ("model.num_epochs=2", "data.use_val=False", "model.log_interval=100")


def tiny_overrides(root: str, model_dir: str, *extra: str) -> List[str]:
    """``--set`` values running configs/train/tiny_synthetic.cfg on ``root`` into ``model_dir``."""
    return [f"data.data_dir={root}", f"data.label_dir={root}",
            f"data.train_list={os.path.join(root, 'lists', 'train_7fold.lst')}",
            f"data.val_list={os.path.join(root, 'lists', 'val_7fold.lst')}",
            "data.crop_shape=64,64", "data.random_bound=8,8", f"model.model_dir={model_dir}",
            "data.num_workers=0", *extra]


def tiny_config(root: str, model_dir: str, *extra: str):
    return load_train_config(TINY_CFG, tiny_overrides(root, model_dir, *extra))


def single_thread_env() -> dict:
    """Environment of training subprocesses: one OpenMP thread. Runs to be compared must
    use the same thread count (oneDNN's reductions depend on it), and one thread keeps the
    tiny runs fast on a shared, busy machine."""
    return dict(os.environ, OMP_NUM_THREADS="1")


def run_train(args: List[str], python: str = sys.executable) -> subprocess.CompletedProcess:
    """``python train.py TINY_CFG args`` in a subprocess (output captured); ``python``: the
    interpreter, e.g. the ``warm_python`` fixture's launcher."""
    return subprocess.run([python, TRAIN_PY, TINY_CFG, *args], capture_output=True, text=True,
                          timeout=300, env=single_thread_env())


def set_args(overrides: List[str]) -> List[str]:
    """``--set`` arguments of a list of overrides."""
    out: List[str] = []
    for item in overrides:
        out += ["--set", item]
    return out


def newest_prefix(model_dir: str, name: str = PREFIX) -> str:
    """``<newest run folder of model_dir/name>/name``: the checkpoint prefix of the latest run."""
    from tusimple_duc.engine.run_dirs import newest_run_dir, run_prefix

    return run_prefix(newest_run_dir(model_dir, name), name)
