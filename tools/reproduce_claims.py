#!/usr/bin/env python
"""Measure the paper's claims in miniature and write a report with figures.

    python tools/reproduce_claims.py [--out docs/claims] [--seeds 3] [--claims gridding,duc,hdc] [--quick]

gridding: exact coverage counts (seconds). duc, hdc: train tiny variants on the synthetic data,
``--seeds`` seeds each (about 30-40 minutes on 2 CPU cores for 3 seeds; ``--quick``: a smoke-test
budget). Runs go to ``--work``; ``<out>/REPORT.md`` and its PNG figures are rewritten.
"""
import argparse
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
from tusimple_duc.cli import run_cli
from tusimple_duc.errors import ConfigError
from experiments.claims import pipeline as claims
from experiments.claims.training import FULL_BUDGET, QUICK_BUDGET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_CONFIG = os.path.join(ROOT, "configs", "train", "demo_synthetic.cfg")
TEST_CONFIG = os.path.join(ROOT, "configs", "test", "demo_synthetic.cfg")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join("docs", "claims"), help="report folder (default docs/claims)")
    parser.add_argument("--work", default=os.path.join("work_dirs", "claims"),
                        help="folder of the training runs (default work_dirs/claims)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    parser.add_argument("--claims", default=",".join(claims.CLAIMS),
                        help=f"comma-separated subset of {','.join(claims.CLAIMS)} (default all)")
    parser.add_argument("--quick", action="store_true", help="smoke-test training budget (tests)")
    args = parser.parse_args(argv)
    names = claims.parse_claims(args.claims)
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: must be >= 1")
    report = claims.reproduce_claims(
        os.path.abspath(args.out), os.path.abspath(args.work), list(range(args.seeds)), names,
        QUICK_BUDGET if args.quick else FULL_BUDGET, TRAIN_CONFIG, TEST_CONFIG,
        say=lambda message: print(message, file=sys.stderr, flush=True))
    print(f"wrote {os.path.join(args.out, claims.REPORT)} ({report.seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
