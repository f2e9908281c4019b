#!/usr/bin/env python
"""The paper's tables next to this project's numbers, and the test.py arguments of a trained experiment.

    python tools/paper_table.py table --results results/paper table1_row1_baseline_ds8 ...
    python tools/paper_table.py test-args configs/train/table1_row1_baseline_ds8.cfg ... [--set ...]
    python tools/paper_table.py run-dir configs/train/table1_row1_baseline_ds8.cfg [--set ...]

``table`` reads ``<results>/<experiment>/metrics.json`` (written by test.py) and prints one
row per experiment: the paper's row and number (``tusimple_duc.models.presets.PAPER_ROWS``),
the measured score (Cityscapes / VOC mIoU, KITTI road MaxF, in %) and the difference; an
experiment without metrics shows ``-``. ``test-args`` prints, per training config, a line
``<config name><TAB><argument><TAB><argument>...``: the ``--set`` arguments that point test.py at the last checkpoint of a training config and at its network (every
architecture key of the resolved spec, so the test config's own ``[network]`` keys cannot differ).
``run-dir`` prints the newest run folder of a training config (``<model_dir>/<save_model_prefix>/
<YYYY_MM_DD_HH:MM:SS>/``), test.py's ``model_dir`` and a next phase's ``load_model_dir``.
"""
import argparse
import json
import math
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import tusimple_duc  # noqa: F401  (before mxnet)
from tusimple_duc.cli import add_set_argument, run_cli
from tusimple_duc.config import format_value, load_train_config
from tusimple_duc.engine.run_dirs import newest_run_dir
from tusimple_duc.errors import EvaluationError
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.models.presets import paper_miou

#: experiment (configs/train/<name>.cfg) -> (table, row) of PAPER_ROWS and the summary key scored.
EXPERIMENTS: Dict[str, Tuple[str, str, str]] = {
    "table1_row1_baseline_ds8": ("1", "Baseline DS8 ASPP4 aug", "mIoU"),
    "table1_row2_baseline_ds4": ("1", "Baseline DS4 ASPP4 aug", "mIoU"),
    "table1_row3_duc_ds8_noaspp_noaug_cell1": ("1", "DUC DS8 no ASPP no aug cell1", "mIoU"),
    "table1_row4_duc_ds8_aspp4_noaug_cell1": ("1", "DUC DS8 ASPP4 no aug cell1", "mIoU"),
    "table1_row5_duc_ds8_aspp4_cell1": ("1", "DUC DS8 ASPP4 aug cell1", "mIoU"),
    "table1_row6_duc_ds4_aspp4_cell1": ("1", "DUC DS4 ASPP4 aug cell1", "mIoU"),
    "table1_row7_duc_ds8_aspp6_cell1": ("1", "DUC DS8 ASPP6 aug cell1", "mIoU"),
    "table1_row8_duc_ds8_aspp6_cell2": ("1", "DUC DS8 ASPP6 aug cell2", "mIoU"),
    "sec412_bigger_patch_duc": ("4.1.2", "bigger patch 880x880", "mIoU"),
    "sec412_deconv_one_step": ("4.1.2", "deconv x8", "mIoU"),
    "sec412_deconv_two_step": ("4.1.2", "deconv x2 then x4", "mIoU"),
    "table2_no_dilation": ("2", "No dilation", "mIoU"),
    "table2_dilation_conv": ("2", "Dilation-conv", "mIoU"),
    "table2_dilation_rf": ("2", "Dilation-RF", "mIoU"),
    "table2_dilation_bigger": ("2", "Dilation-bigger", "mIoU"),
    "table3_r101_duc_hdc_fine_coarse": ("3", "ResNet-101 DUC+HDC fine+coarse", "mIoU"),
    "table3_r152_deconv_phase2": ("3", "ResNet-152 Deconv fine", "mIoU"),
    "table3_r152_duc_hdc_phase2": ("3", "ResNet-152 DUC+HDC fine", "mIoU"),
    "table3_r152_duc_hdc_fine_coarse_phase2": ("3", "ResNet-152 DUC+HDC fine+coarse", "mIoU"),
    "kitti_road": ("5", "KITTI road URBAN_ROAD MaxF", "MaxF"),
    "voc_finetune_trainval_aug": ("6", "VOC 2012 ResNet-152-DUC", "mIoU"),
}
#: [network] keys of a test config that fix the architecture (set from the training config's spec).
ARCHITECTURE_KEYS = ("aspp", "aspp_stride", "depth", "stem", "head", "dilation_schedule", "width", "blocks_per_stage")


def paper_number(experiment: str) -> float:
    """The paper's number (%) of an experiment of :data:`EXPERIMENTS`."""
    table, row, _ = EXPERIMENTS[experiment]
    return paper_miou(table, row)


def measured(results: str, experiment: str) -> Optional[float]:
    """The experiment's score in % from ``<results>/<experiment>/metrics.json``, None when absent."""
    path = os.path.join(results, experiment, "metrics.json")
    if not os.path.isfile(path):
        return None
    key = EXPERIMENTS[experiment][2]
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)["summary"][key]
    except (ValueError, KeyError, TypeError) as err:
        raise EvaluationError(f"{path}: no summary {key!r} ({type(err).__name__}: {err})") from None
    return None if value is None else 100.0 * float(value)


def table_text(results: str, experiments: Sequence[str]) -> str:
    """The comparison table (aligned text) of ``experiments``."""
    header = ("experiment", "paper row", "paper", "this run", "diff")
    rows: List[Tuple[str, ...]] = []
    for name in experiments:
        table, row, key = EXPERIMENTS[name]
        paper, ours = paper_number(name), measured(results, name)
        shown = "-" if ours is None or math.isnan(ours) else f"{ours:.1f}"
        diff = "-" if shown == "-" else f"{ours - paper:+.1f}"
        rows.append((name, f"Table {table}: {row} ({key})", f"{paper:g}", shown, diff))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def test_arguments(train_config: str, overrides: Sequence[str]) -> List[str]:
    """``--set`` arguments of test.py for the last checkpoint of ``train_config`` and its network
    (the run folder, ``model.model_dir``, is known after training: :func:`run_dir`)."""
    config = load_train_config(train_config, overrides)
    spec = spec_from_train_config(config)
    values = {"model.model_prefix": config.model.save_model_prefix,
              "model.model_epoch": config.model.num_epochs, "model.label_num": spec.num_classes,
              "data.ds_rate": spec.output_stride, "data.cell_width": spec.cell_width,
              "network.preset": config.network.preset}
    for key in ARCHITECTURE_KEYS:
        values[f"network.{key}"] = getattr(spec, key)
    arguments = []
    for key, value in values.items():
        if value is not None:
            arguments += ["--set", f"{key}={format_value(value)}"]
    return arguments


test_arguments.__test__ = False  # not a pytest test


def run_dir(train_config: str, overrides: Sequence[str]) -> str:
    """The newest run folder ``<model_dir>/<save_model_prefix>/<time>/`` of ``train_config``."""
    model = load_train_config(train_config, overrides).model
    return newest_run_dir(model.model_dir, model.save_model_prefix)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    table = commands.add_parser("table", help="print the paper's numbers next to the measured ones")
    table.add_argument("--results", required=True, help="folder of <experiment>/metrics.json")
    table.add_argument("experiments", nargs="+", choices=sorted(EXPERIMENTS), metavar="EXPERIMENT")
    args_parser = commands.add_parser("test-args", help="test.py --set arguments of a training config")
    args_parser.add_argument("configs", nargs="+", metavar="CONFIG", help="training configs (INI)")
    add_set_argument(args_parser)
    dir_parser = commands.add_parser("run-dir", help="the newest run folder of a training config")
    dir_parser.add_argument("config", metavar="CONFIG", help="training config (INI)")
    add_set_argument(dir_parser)
    args = parser.parse_args(argv)
    if args.command == "table":
        print(table_text(args.results, args.experiments))
    elif args.command == "run-dir":
        print(run_dir(args.config, args.overrides))
    else:
        for path in args.configs:
            name = os.path.splitext(os.path.basename(path))[0]
            print("\t".join([name] + test_arguments(path, args.overrides)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
