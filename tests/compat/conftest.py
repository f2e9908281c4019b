"""Tiny synthetic Cityscapes and a tiny released-format checkpoint shared by the compat tests."""
import os
import sys

import mxnet as mx
import pytest

from tusimple_duc.data.datasets import write_lists
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.presets import get_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compat_helpers import IMAGE_SIZE  # noqa: E402


@pytest.fixture(scope="session")
def cityscapes_root(tmp_path_factory) -> str:
    """2 train images (14 7-fold lines) and 1 val image of 64x128 px, with lists in ``lists/``."""
    root = str(tmp_path_factory.mktemp("compat_cityscapes"))
    write_synthetic_cityscapes(root, splits={"train": 2, "val": 1}, image_size=IMAGE_SIZE, seed=0)
    write_lists(cityscapes_lists(root), os.path.join(root, "lists"))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """``(model_dir, prefix, epoch, net)``: a random tiny_duc_hdc network saved in the released format."""
    model_dir = str(tmp_path_factory.mktemp("compat_model"))
    mx.random.seed(11)
    net = get_model("tiny_duc_hdc")
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3) + IMAGE_SIZE))
    save_checkpoint(net, os.path.join(model_dir, "tiny"), 3)
    return model_dir, "tiny", 3, net
