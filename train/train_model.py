#!/usr/bin/env python
"""The original's training entry point: ``cd train && python train_model.py ../configs/train/train_cityscapes.cfg``.

A thin wrapper that runs the repository's ``train.py`` (same arguments: ``--set``, ``--resume``);
relative paths in the config are resolved against the current directory, as in the original.
``train_end2end()`` is the original's function name for the same.
A config written for the repository root (``configs/train/*.cfg`` except the original's
``train_cityscapes.cfg``) is refused in one line before anything is written, saying so.
"""
import os
import runpy
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tusimple_duc  # noqa: E402,F401  (before mxnet)
from tusimple_duc.cli import run_cli  # noqa: E402
from tusimple_duc.config import load_train_config  # noqa: E402
from tusimple_duc.errors import DataError  # noqa: E402


def check_paths_from_here(argv):
    """DataError when the config's training list is missing from here but present from the repository root."""
    configs = [a for a in argv if a.endswith(".cfg")]
    overrides = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--set"]
    if not configs:
        return 0
    train_list = load_train_config(configs[0], overrides).data.train_list
    if not os.path.isabs(train_list) and not os.path.exists(train_list) \
            and os.path.exists(os.path.join(REPO, train_list)):
        raise DataError(f"{train_list}: list file not found from {os.getcwd()}; {configs[0]} is written for the "
                        f"repository root: run python train.py {os.path.relpath(configs[0], REPO)} from {REPO}")
    return 0


def train_end2end() -> None:
    """Run ``train.py`` with this process's command line (``sys.argv[1]`` is the config)."""
    if run_cli(check_paths_from_here, sys.argv[1:]) != 0:
        sys.exit(2)
    runpy.run_path(os.path.join(REPO, "train.py"), run_name="__main__")


if __name__ == "__main__":
    train_end2end()
