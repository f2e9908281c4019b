"""Evaluation speed: ``tools/evaluate.py`` against cityscapesscripts' ``evaluateImgLists``.

The case, the timing and the comparison of ``tools/bench_eval.py`` (its docstring has the
method); the command itself only parses arguments and prints the result.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Sequence, Tuple

import cv2
import numpy as np

from experiments.bench.machine import cpu_model
from tusimple_duc.errors import EvaluationError
from tusimple_duc.io.atomic import atomic_write_image, atomic_write_json, atomic_write_text
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes

#: Largest allowed difference between our scores and the official ones.
TOLERANCE = 1e-9
#: Runs the official evaluator: argv = prediction list file, ground-truth list file, JSON export path.
OFFICIAL_SCRIPT = """
import sys
from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
predictions = open(sys.argv[1]).read().split()
ground_truths = open(sys.argv[2]).read().split()
args = official.args
args.evalInstLevelScore = True
args.quiet = True
args.colorized = False
args.JSONOutput = True
args.exportFile = sys.argv[3]
official.evaluateImgLists(predictions, ground_truths, args)
"""
#: (official result key, our table, our column) of the per-row scores compared.
ROW_SCORES = [("classScores", "classes", "IoU"), ("classInstScores", "classes", "iIoU"),
              ("categoryScores", "categories", "IoU"), ("categoryInstScores", "categories", "iIoU")]
#: (official result key, our summary key) of the averages compared.
AVERAGES = [("averageScoreClasses", "mIoU"), ("averageScoreInstClasses", "iIoU"),
            ("averageScoreCategories", "mIoU_category"), ("averageScoreInstCategories", "iIoU_category")]


def noisy_prediction(label_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint8 labelIds: ``label_ids`` shifted 3 px right, 5 % of 16x16 blocks random ids 0..33."""
    pred = np.roll(label_ids, 3, axis=1)
    rows, cols = -(-pred.shape[0] // 16), -(-pred.shape[1] // 16)
    blocks = rng.random((rows, cols)) < 0.05
    random_ids = rng.integers(0, 34, size=(rows, cols))
    mask = np.kron(blocks, np.ones((16, 16), dtype=bool))[:pred.shape[0], :pred.shape[1]]
    noise = np.kron(random_ids, np.ones((16, 16), dtype=np.int64))[:pred.shape[0], :pred.shape[1]]
    return np.where(mask, noise, pred).astype(np.uint8)


def _read_json(path: str) -> Any:
    with open(path) as handle:
        return json.load(handle)


def write_case(root: str, images: int, size: Tuple[int, int]) -> Tuple[str, List[str], List[str]]:
    """Ground truth under ``root`` and predictions in ``root/pred``: (prediction folder, predictions,
    ground-truth labelIds), the lists in the same order. Existing files of the same count are reused."""
    pred_dir = os.path.join(root, "pred")
    stamp = os.path.join(root, "bench_case.json")
    wanted = {"images": images, "size": list(size)}
    if not (os.path.isfile(stamp) and _read_json(stamp) == wanted):
        summary = write_synthetic_cityscapes(root, {"val": images}, image_size=size, seed=0)
        rng = np.random.default_rng(0)
        for frame in summary.frames["val"]:
            label_ids = cv2.imread(frame.files["gtFine_labelIds"], cv2.IMREAD_UNCHANGED)
            atomic_write_image(os.path.join(pred_dir, frame.name + "_leftImg8bit.png"),
                               noisy_prediction(label_ids, rng))
        atomic_write_json(stamp, wanted)
    gt_dir = os.path.join(root, "gtFine", "val")
    ground_truths = sorted(os.path.join(gt_dir, city, name) for city in os.listdir(gt_dir)
                           for name in os.listdir(os.path.join(gt_dir, city)) if name.endswith("_gtFine_labelIds.png"))
    predictions = [os.path.join(pred_dir, os.path.basename(p).replace("_gtFine_labelIds", "_leftImg8bit"))
                   for p in ground_truths]
    return pred_dir, predictions, ground_truths


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: Sequence[str]) -> Tuple[float, float]:
    """(wall-clock, CPU) seconds of a subprocess and its workers; output discarded, a failure is an error."""
    cpu_start, start = _children_cpu_seconds(), time.perf_counter()
    done = subprocess.run(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds, cpu_seconds = time.perf_counter() - start, _children_cpu_seconds() - cpu_start
    if done.returncode != 0:
        raise EvaluationError(f"{' '.join(command[:3])}: failed ({done.stderr.strip().splitlines()[-1:]})")
    return seconds, cpu_seconds


def compare_scores(ours: Dict[str, Any], theirs: Dict[str, Any]) -> float:
    """The largest |ours - official| over the compared scores; EvaluationError when one is NaN and the other not.

    The official lists also score every non-evaluated class (always NaN): ours has no row for them.
    """
    pairs = [(f"{table} {column} {name}", ours["tables"][table].get(name, {}).get(column), value)
             for key, table, column in ROW_SCORES for name, value in theirs[key].items()]
    pairs += [(summary_key, ours["summary"][summary_key], theirs[key]) for key, summary_key in AVERAGES]
    largest = 0.0
    for what, mine, official in pairs:
        mine = math.nan if mine is None else float(mine)
        official = float(official)
        if math.isnan(mine) != math.isnan(official):
            raise EvaluationError(f"{what}: ours {mine}, official {official}")
        if not math.isnan(mine):
            largest = max(largest, abs(mine - official))
    return largest


def run(args: argparse.Namespace, root: str, evaluate_tool: str) -> Dict[str, Any]:
    """Write or reuse the case under ``root``, time both evaluators (ours is the command
    ``evaluate_tool``, i.e. ``tools/evaluate.py``), compare their numbers."""
    pred_dir, predictions, ground_truths = write_case(root, args.images, tuple(args.size))
    pred_list, gt_list = os.path.join(root, "predictions.txt"), os.path.join(root, "ground_truths.txt")
    atomic_write_text(pred_list, "\n".join(predictions) + "\n")
    atomic_write_text(gt_list, "\n".join(ground_truths) + "\n")
    ours_json, official_json = os.path.join(root, "ours.json"), os.path.join(root, "official.json")
    ours_command = [sys.executable, evaluate_tool, pred_dir, root, "--out", ours_json]
    if args.workers is not None:
        ours_command += ["--workers", str(args.workers)]
    official_command = [sys.executable, "-c", OFFICIAL_SCRIPT, pred_list, gt_list, official_json]
    load_before = os.getloadavg()
    ours, official = [], []
    for _ in range(args.repeats):
        ours.append(timed(ours_command))
        official.append(timed(official_command))
    load_after = os.getloadavg()
    difference = compare_scores(_read_json(ours_json), _read_json(official_json))
    if difference > TOLERANCE:
        raise EvaluationError(f"{ours_json}: scores differ from the official ones by {difference:.3g} > {TOLERANCE}")
    ours_median, official_median = (statistics.median(wall for wall, _ in runs) for runs in (ours, official))
    ours_cpu, official_cpu = (statistics.median(cpu for _, cpu in runs) for runs in (ours, official))
    return {
        "images": args.images, "size": list(args.size), "repeats": args.repeats, "workers": args.workers,
        "ours_seconds": [wall for wall, _ in ours], "official_seconds": [wall for wall, _ in official],
        "ours_cpu_seconds": [cpu for _, cpu in ours], "official_cpu_seconds": [cpu for _, cpu in official],
        "ours_seconds_per_image": ours_median / args.images,
        "official_seconds_per_image": official_median / args.images,
        "speedup": official_median / ours_median, "cpu_time_ratio": official_cpu / ours_cpu,
        "largest_score_difference": difference,
        "cpu_model": cpu_model(), "cpus": os.cpu_count(),
        "load_average_before": list(load_before), "load_average_after": list(load_after),
    }
