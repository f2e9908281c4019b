#!/usr/bin/env python
"""Train every segmentation system on the synthetic scenes under one budget and write the table.

    python tools/compare_systems.py [--out docs/systems] [--quick] [--systems fcn8s,pspnet,...]

Full budget: about an hour on 2 CPU cores (tiny networks, 128x256 scenes; costs of the full-size
networks at 512x1024, each in its own process). ``--quick``: a smoke-test budget for CI. Writes
``<out>/SYSTEMS.md``, ``systems.json`` and the PNG figures.
"""
import argparse
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
from tusimple_duc.cli import run_cli
from experiments.systems.entries import ENTRIES
from experiments.systems.pipeline import REPORT_NAME, compare_systems
from experiments.systems.run import FULL, QUICK


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("docs", "systems"), help="report folder (default docs/systems)")
    parser.add_argument("--quick", action="store_true", help="smoke-test budget (CI) (default: off)")
    parser.add_argument("--systems", default="",
                        help=f"comma-separated subset of {','.join(e.key for e in ENTRIES)} (default all)")
    args = parser.parse_args(argv)
    keys = [key.strip() for key in args.systems.split(",") if key.strip()]
    out = os.path.abspath(args.out)
    compare_systems(out, QUICK if args.quick else FULL, keys, progress=print)
    print(f"wrote {os.path.join(out, REPORT_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
