"""Tiny synthetic Cityscapes shared by the engine tests."""
import os

import pytest

from tusimple_duc.data.datasets import write_lists
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> str:
    """2 train images (14 7-fold lines) and 1 val image of 64x128 px, with lists."""
    root = str(tmp_path_factory.mktemp("synthetic"))
    write_synthetic_cityscapes(root, splits={"train": 2, "val": 1}, image_size=(64, 128), seed=0)
    write_lists(cityscapes_lists(root), os.path.join(root, "lists"))
    return root


@pytest.fixture(scope="session")
def finished_run(synthetic_root, tmp_path_factory) -> str:
    """A model_dir holding one complete 2-epoch run of the tiny config (no validation)."""
    from engine_helpers import FAST, tiny_config

    from tusimple_duc.engine.run import train

    model_dir = str(tmp_path_factory.mktemp("finished") / "model")
    train(tiny_config(synthetic_root, model_dir, *FAST))
    return model_dir


@pytest.fixture
def old_run(finished_run, tmp_path) -> str:
    """A private copy of :func:`finished_run`'s model_dir."""
    import shutil

    model_dir = str(tmp_path / "model")
    shutil.copytree(finished_run, model_dir)
    return model_dir
