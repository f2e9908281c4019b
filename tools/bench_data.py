"""Benchmark the training data iterator against the PNG decode floor.

    python tools/bench_data.py [--images 4] [--samples 40] [--workers 0 1 2] [--crop 880 880]
                               [--root CITYSCAPES_ROOT]

Without --root, writes --images synthetic 1024x2048 Cityscapes images into a temporary
folder. Samples use the released augmentation (scales 0.5..1.5, jitter 120, mirror) on
the 7-fold list. Prints samples/s per worker count and each worker's per-sample time as
a multiple of the time to just decode the image and label PNG.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from experiments.bench.data_pipeline import format_table, run_benchmark, write_cityscapes_like
from tusimple_duc.datasets.cityscapes import cityscapes_lists
from tusimple_duc.data.sample import SamplingSpec


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=4, help="synthetic images to write (default 4)")
    parser.add_argument("--samples", type=int, default=40, help="samples timed per configuration (default 40)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="worker counts (default 0 1 2)")
    parser.add_argument("--crop", type=int, nargs=2, default=[880, 880], metavar=("ROWS", "COLS"),
                        help="training crop, pixels (default 880 880)")
    parser.add_argument("--root", default=None, help="an existing Cityscapes folder instead of synthetic images (default: none)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    spec = SamplingSpec(crop_shape=tuple(args.crop))
    with tempfile.TemporaryDirectory(prefix="duc-bench-") as scratch:
        root = args.root or scratch
        entries = cityscapes_lists(root)["train_7fold"] if args.root else write_cityscapes_like(root, args.images)
        floor, rows = run_benchmark(entries, root, root, spec, args.workers, args.samples)
    print(format_table(floor, rows, args.crop))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
