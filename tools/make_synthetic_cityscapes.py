"""Write a small synthetic Cityscapes (procedural street scenes) in the exact release layout.

    python tools/make_synthetic_cityscapes.py ROOT [--train N] [--val N] [--test N]
                                              [--height H --width W] [--seed S]
                                              [--coarse [--train-extra N]]

Writes leftImg8bit/ and gtFine/ (labelIds, instanceIds, color, polygons) per split, and with
--coarse gtCoarse/ for train, val and train_extra (default: as many train_extra images as train).
Same arguments, byte-identical files. Prints the files per split and the class pixel shares.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.data.labels import CITYSCAPES_CLASS_NAMES
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="output folder (the Cityscapes root)")
    parser.add_argument("--train", type=int, default=4, help="train images (default 4)")
    parser.add_argument("--val", type=int, default=2, help="val images (default 2)")
    parser.add_argument("--test", type=int, default=0, help="test images (default 0)")
    parser.add_argument("--train-extra", type=int, default=None,
                        help="train_extra images, with --coarse (default: as many as --train)")
    parser.add_argument("--height", type=int, default=256, help="image height in px (default 256)")
    parser.add_argument("--width", type=int, default=512, help="image width in px (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--coarse", action="store_true", help="also write gtCoarse (train, val, train_extra) (default: off)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    splits = {"train": args.train, "val": args.val, "test": args.test}
    if args.train_extra is not None:
        splits["train_extra"] = args.train_extra
    summary = write_synthetic_cityscapes(args.root, {split: n for split, n in splits.items() if n != 0},
                                         (args.height, args.width), args.seed, coarse=args.coarse)
    print(f"root: {summary.root}")
    for split, frames in summary.frames.items():
        cities = sorted({frame.city for frame in frames})
        print(f"{split}: {len(frames)} images, {len(summary.files(split))} files, cities {', '.join(cities) or '-'}")
    for split in ("train", "val"):
        if split in summary.frames and summary.frames[split]:
            counts = summary.train_id_pixel_counts(split)
            shares = counts / max(int(summary.label_id_pixel_counts[split].sum()), 1)
            table = ", ".join(f"{name} {share:.1%}" for name, share in zip(CITYSCAPES_CLASS_NAMES, shares))
            print(f"{split} class pixels: {table}; ignored {1.0 - float(np.sum(shares)):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
