"""Write the training and test lists of a dataset folder.

    python tools/make_lists.py cityscapes ROOT --out data_lists/cityscapes [--coarse] [--patch 800]
    python tools/make_lists.py kitti ROOT --out data_lists/kitti [--patch 320] [--stride 100]
    python tools/make_lists.py voc ROOT --out data_lists/voc

Paths in the lists are relative to ROOT (use it as [data] data_dir and label_dir). Every
list is written atomically to OUT/<name>.lst; the formats and list names are described
in data_lists/README.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.data.datasets import write_lists
from tusimple_duc.datasets import dataset_lists


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="dataset", required=True)
    cityscapes = commands.add_parser("cityscapes", help="leftImg8bit/ + gtFine/ (+ gtCoarse/)")
    cityscapes.add_argument("--coarse", action="store_true", help="also the train_extra (gtCoarse) lists (default: off)")
    cityscapes.add_argument("--patch", type=int, default=800, help="12-fold patch size (default 800)")
    kitti = commands.add_parser("kitti", help="training/image_2 + training/gt_image_2")
    kitti.add_argument("--patch", type=int, default=320, help="patch size (default 320)")
    kitti.add_argument("--stride", type=int, default=100, help="patch stride (default 100)")
    commands.add_parser("voc", help="VOC2012 (JPEGImages, SegmentationClass[Aug], ImageSets/Segmentation)")
    for command in commands.choices.values():
        command.add_argument("root", help="dataset folder")
        command.add_argument("--out", required=True, help="output folder of the .lst files")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    options = {name: getattr(args, name) for name in ("coarse", "patch", "stride") if hasattr(args, name)}
    counts = write_lists(dataset_lists(args.dataset, args.root, **options), args.out)
    for name, count in counts.items():
        print(f"{os.path.join(args.out, name + '.lst')}: {count} lines")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
