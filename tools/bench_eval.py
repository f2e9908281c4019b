"""Benchmark ``tools/evaluate.py`` against cityscapesscripts' ``evaluateImgLists`` on the same files.

    python tools/bench_eval.py [--images 40] [--size 1024 2048] [--repeats 3] [--workers N]
                               [--data DIR] [--out bench_eval.json]

Writes ``--images`` synthetic Cityscapes val images (labelIds + 16-bit instanceIds, by
``write_synthetic_cityscapes``) and predictions (the ground truth shifted by 3 px with 5 % of
its 16x16 blocks replaced by random labelIds, 8-bit labelIds PNGs), then times, interleaved,
``--repeats`` times each: (a) the whole command ``python tools/evaluate.py`` (start-up, imports,
decoding, scoring, metrics JSON) and (b) the official evaluator in its own Python process
(``evaluateImgLists`` with instance scores, quiet, its JSON export). Both are wall-clock times
of a subprocess (their CPU times, workers included, are reported too). Checks that every class / category IoU and iIoU and the four averages agree to
1e-9, prints the median seconds per image and the speed-up, and writes the JSON report
atomically. ``--data`` keeps (and reuses) the files; otherwise they go to a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from experiments.bench.evaluation_speed import run
from tusimple_duc.cli import run_cli
from tusimple_duc.io.atomic import atomic_write_json

EVALUATE_TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate.py")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40, help="val images (default 40)")
    parser.add_argument("--size", type=int, nargs=2, default=[1024, 2048], metavar=("ROWS", "COLS"),
                        help="image size, pixels (default 1024 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each evaluator (default 3)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--workers of tools/evaluate.py (default: its default, the physical cores)")
    parser.add_argument("--data", default=None, help="keep the files in this folder (reused when present) (default: none)")
    parser.add_argument("--out", default="bench_eval.json", help="JSON report (default bench_eval.json)")
    args = parser.parse_args(argv)
    if args.images < 1 or args.repeats < 1:
        parser.error("--images and --repeats must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.data:
        os.makedirs(args.data, exist_ok=True)
        report = run(args, os.path.abspath(args.data), EVALUATE_TOOL)
    else:
        with tempfile.TemporaryDirectory(prefix="duc-bench-eval-") as scratch:
            report = run(args, scratch, EVALUATE_TOOL)
    print(f"{report['images']} images {report['size'][0]}x{report['size'][1]}, median of {report['repeats']}, "
          f"{report['cpu_model']}, load {report['load_average_before'][0]:.2f}")
    print(f"tools/evaluate.py      {report['ours_seconds_per_image'] * 1000:8.1f} ms/image (wall clock)")
    print(f"evaluateImgLists       {report['official_seconds_per_image'] * 1000:8.1f} ms/image (wall clock)")
    print(f"speed-up               {report['speedup']:8.2f}x   (CPU time ratio {report['cpu_time_ratio']:.2f}x, "
          f"largest score difference {report['largest_score_difference']:.2g})")
    atomic_write_json(args.out, report)
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
