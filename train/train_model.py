#!/usr/bin/env python
"""The original's training entry point: ``cd train && python train_model.py ../configs/train/train_cityscapes.cfg``.

A thin wrapper that runs the repository's ``train.py`` (same arguments: ``--set``, ``--resume``);
relative paths in the config are resolved against the current directory, as in the original.
``train_end2end()`` is the original's function name for the same.
"""
import os
import runpy


def train_end2end() -> None:
    """Run ``train.py`` with this process's command line (``sys.argv[1]`` is the config)."""
    runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py"),
                   run_name="__main__")


if __name__ == "__main__":
    train_end2end()
