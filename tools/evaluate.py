"""Score a folder of predictions with the official metric of its dataset.

    python tools/evaluate.py RESULT_DIR GT_ROOT [--dataset cityscapes|kitti|voc] [--split val]
                             [--out metrics.json] [--figures DIR]

RESULT_DIR holds, for cityscapes, labelIds PNGs named after the images (flat or in city
subfolders, e.g. ``result_dir/score/``); for kitti, road probability PNGs (uint8 = p * 255)
or ``.npz`` float maps (test.py's ``prob/``) named like the images (``um_000000.png``); for voc, index or palette
PNGs (``2007_000033.png``). GT_ROOT is the Cityscapes root (with ``gtFine``), the KITTI road
folder (with ``gt_image_2`` or ``training/gt_image_2``) or ``VOC2012``.
Prints the per-class table, writes the metrics JSON (default RESULT_DIR/metrics.json) and,
with --figures, the confusion-matrix and IoU figures.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.evaluation import DEFAULT_SPLITS, evaluate_folder, format_tables, write_metrics_json
from tusimple_duc.viz.plots import write_result_figures


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result_dir", help="folder of predictions")
    parser.add_argument("gt_root", help="dataset root holding the ground truth")
    parser.add_argument("--dataset", choices=sorted(DEFAULT_SPLITS), default="cityscapes")
    parser.add_argument("--split", default=None,
                        help="ground-truth split (default: val; kitti: gt_image_2 in GT_ROOT or GT_ROOT/training)")
    parser.add_argument("--out", default=None, help="metrics JSON path (default: RESULT_DIR/metrics.json)")
    parser.add_argument("--figures", default=None, metavar="DIR",
                        help="write confusion_matrix.png and class_iou.png into DIR")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    result = evaluate_folder(args.dataset, args.result_dir, args.gt_root, args.split, show_progress=sys.stderr.isatty())
    print(format_tables(result))
    unmatched = result.details.get("ground_truth_without_prediction")
    if unmatched:
        print(f"note: {unmatched} ground-truth images have no prediction; "
              f"the scores cover the {result.num_images} predicted images only")
    out = args.out or os.path.join(args.result_dir, "metrics.json")
    write_metrics_json(out, result)
    print(f"metrics: {out}")
    if args.figures:
        for path in write_result_figures(result, args.figures):
            print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
