"""Fixtures of the data tests (the tiny datasets live in data_toys.py)."""
from data_toys import (  # noqa: F401  (fixtures)
    cityscapes_coarse_root, cityscapes_root, kitti_root, toys, voc_root, write_list_file)
