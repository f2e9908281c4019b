"""Check everything a paper experiment needs before any work; make the lists the dataset gives.

    python tools/preflight.py table1_row1_baseline_ds8 ... --data-root data/cityscapes \
        --lists data_lists/cityscapes --gpus 0,1,2,3 [--rehearse rehearsal]

One line per missing item, with the command that makes it: the dataset folders, the training,
validation and test lists (made from the dataset folder when it holds what they come from, with
a line saying so), the ImageNet weights or earlier checkpoints, the GPUs, the disk space for
the checkpoints. Exit 0 when nothing is missing, 2 otherwise. tools/paper/*.sh run it first.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.pipelines.preflight import preflight


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                        help="training configs the script runs, by name (CONFIGS/<name>.cfg), in order")
    parser.add_argument("--data-root", required=True, help="the dataset folder (DATA_ROOT)")
    parser.add_argument("--lists", required=True, help="folder of the test list val.lst (LISTS)")
    parser.add_argument("--gpus", default="-1", help="devices asked for, e.g. 0,1,2,3; -1 = the CPU (default -1)")
    parser.add_argument("--configs", default="configs/train", help="folder of the configs (default configs/train)")
    parser.add_argument("--rehearse", default=None, metavar="FOLDER",
                        help="also write the rehearsal configs and short lists there (default: no rehearsal)")
    args = parser.parse_args(argv)
    result = preflight(args.experiments, args.data_root, args.lists, args.gpus, args.configs, args.rehearse)
    for line in result.notes:
        print(f"preflight: {line}")
    for line in result.problems:
        print(f"preflight: missing: {line}")
    if result.problems:
        print(f"preflight: {len(result.problems)} missing item(s); nothing was started", file=sys.stderr)
        return 2
    print("preflight: everything needed is present")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
