#!/usr/bin/env python
"""Plot loss / mIoU / learning-rate curves of a training run to a PNG.

    python tools/plot_log.py models/ResNet_DUC_HDC_CityScapes-metrics.jsonl curves.png

The mIoU panel draws ``mean_iou`` (this project's mean IoU over the classes present), not the
original's ``IoU`` (all classes, the epoch so far), which the log holds too.
"""
import argparse
import sys

from tusimple_duc.cli import run_cli
from tusimple_duc.engine.metrics import METRIC_MEANINGS
from tusimple_duc.viz.curves import plot_training_log


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", help="<run folder>/<prefix>-metrics.jsonl written by train.py")
    parser.add_argument("png", help="output image (PNG)")
    parser.add_argument("--title", default="", help="figure title (default: the log's file name)")
    args = parser.parse_args(argv)
    counts = plot_training_log(args.log, args.png, args.title)
    print(f"wrote {args.png} ({counts['train:loss']} training points, {counts['val:mean_iou']} validations); "
          f"mIoU panel: mean_iou = {METRIC_MEANINGS['mean_iou']} (the log's IoU is the original's)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
