#!/usr/bin/env python
"""The demo: synthetic Cityscapes -> lists -> train a small DUC-HDC -> official evaluation -> mosaics.

    python tools/demo.py [--out demo_output] [--released PREFIX [--released-epoch 20]] [--quick] [--seed 0]

About 5 minutes on 2 CPU cores (``--quick``: seconds, for tests). Steps and outputs:
``experiments/demo/pipeline.py``; configs: ``configs/train/demo_synthetic.cfg`` and
``configs/test/demo_synthetic.cfg``. ``--released PREFIX`` also segments the val images with the
released ``PREFIX-symbol.json`` + ``PREFIX-0020.params`` and adds its predictions to the mosaics.
"""
import argparse
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
from tusimple_duc.cli import run_cli
from experiments.demo import pipeline as demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_CONFIG = os.path.join(ROOT, "configs", "train", "demo_synthetic.cfg")
TEST_CONFIG = os.path.join(ROOT, "configs", "test", "demo_synthetic.cfg")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    parser.add_argument("--released", metavar="PREFIX",
                        help="also run the released checkpoint PREFIX-symbol.json + PREFIX-%%04d.params (default: none)")
    parser.add_argument("--released-epoch", type=int, default=demo.RELEASED_EPOCH,
                        help=f"epoch of the released checkpoint (default {demo.RELEASED_EPOCH})")
    parser.add_argument("--quick", action="store_true", help="tiny data and one short epoch (seconds; for tests) (default: off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, sampling and initialisation (default %(default)s)")
    args = parser.parse_args(argv)
    data = demo.QUICK_DATA if args.quick else demo.DemoData()
    data = demo.DemoData(data.train_images, data.val_images, data.image_size, args.seed)
    result = demo.run_demo(
        demo.DemoPaths(os.path.abspath(args.out)), TRAIN_CONFIG, TEST_CONFIG, data,
        train_overrides=demo.QUICK_TRAIN_OVERRIDES if args.quick else (),
        released=(os.path.abspath(args.released), args.released_epoch) if args.released else None, say=say)
    print(demo.summary_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
