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
