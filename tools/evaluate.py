"""Score a folder of predictions with the official metric of its dataset.

    python tools/evaluate.py RESULT_DIR GT_ROOT [--dataset cityscapes|kitti|voc] [--split val]
                             [--out metrics.json] [--figures DIR] [--subset] [--workers N]

RESULT_DIR holds, for cityscapes, labelIds PNGs named after the images (flat or in city
subfolders, e.g. ``result_dir/score/``); for kitti, road probability PNGs (uint8 = p * 255)
or ``.npz`` float maps (test.py's ``prob/``) named like the images (``um_000000.png``); for voc, index or palette
PNGs (``2007_000033.png``). GT_ROOT is the Cityscapes root (with ``gtFine``), the KITTI road
folder (with ``gt_image_2`` or ``training/gt_image_2``) or ``VOC2012``.
As the official evaluators: every ground truth of the split needs a prediction (``--subset``
scores only those that have one) and files matching no ground truth are ignored (counted in a
note). Prints the per-class table, writes the metrics JSON (default RESULT_DIR/metrics.json)
and, with --figures, the confusion-matrix and IoU figures. The output folders are checked
before any prediction is read. Files are decoded and counted in --workers processes (default:
one per physical core); the scores are the same for every worker count.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.datasets import DATASETS, evaluate_folder
from tusimple_duc.evaluation import EvaluationResult, format_tables, write_metrics_json
from tusimple_duc.errors import OutputError
from tusimple_duc.io.atomic import ensure_writable_dir


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result_dir", help="folder of predictions")
    parser.add_argument("gt_root", help="dataset root holding the ground truth")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="cityscapes",
                        help="the dataset's official protocol to score with (default %(default)s)")
    parser.add_argument("--split", default=None,
                        help="ground-truth split (default: val; kitti: gt_image_2 in GT_ROOT or GT_ROOT/training)")
    parser.add_argument("--out", default=None, help="metrics JSON path (default: RESULT_DIR/metrics.json)")
    parser.add_argument("--figures", default=None, metavar="DIR",
                        help="write confusion_matrix.png and class_iou.png into DIR (default: none)")
    parser.add_argument("--subset", action="store_true",
                        help="score only the ground truths that have a prediction (default: all need one)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes reading the files (default: the number of physical cores)")
    return parser.parse_args(argv)


def coverage_notes(result: EvaluationResult) -> List[str]:
    """The lines that say which files were left out of the scores, and the evaluator's warnings."""
    details = result.details
    lines = [f"warning: {text}" for text in details.get("warnings", [])]
    unmatched = details.get("ground_truth_without_prediction")
    if unmatched:
        lines.append(f"note: --subset: {unmatched} ground-truth image(s) have no prediction; the scores cover the "
                     f"{result.num_images} predicted images only")
    ignored = details.get("predictions_without_ground_truth")
    if ignored:
        lines.append(f"note: {ignored} file(s) match no ground truth and were ignored, "
                     f"e.g. {details['ignored_predictions'][0]}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join(args.result_dir, "metrics.json")
    if os.path.isdir(out):
        raise OutputError(f"--out {out}: is a folder; give the metrics JSON file name")
    if args.out or os.path.isdir(args.result_dir):
        ensure_writable_dir(os.path.dirname(out), "--out folder")
    if args.figures:
        ensure_writable_dir(args.figures, "--figures")
    result = evaluate_folder(args.dataset, args.result_dir, args.gt_root, args.split,
                             show_progress=sys.stderr.isatty(), subset=args.subset, workers=args.workers)
    print(format_tables(result))
    for line in coverage_notes(result):
        print(line)
    write_metrics_json(out, result)
    print(f"metrics: {out}")
    if args.figures:
        from tusimple_duc.viz.plots import write_result_figures  # matplotlib: imported only when drawing

        for path in write_result_figures(result, args.figures):
            print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
