#!/usr/bin/env python
"""Decide the paper's claims in miniature and write a report with figures.

    python tools/reproduce_claims.py --budget full|quick [--out docs/claims] [--work work_dirs/claims]
                                     [--jobs 2] [--claims gridding,duc,hdc] [--report-only]

gridding: exact coverage counts (seconds). duc, hdc: train tiny variants on synthetic street scenes,
several seeds each, and test the paired differences. ``full``: the design of the report (about 80
minutes with 2 jobs on 2 CPU cores); ``quick``: a few minutes (smoke test). Each finished run
is saved under ``<work>/runs``: a killed call resumes where it stopped, a changed design retrains.
``--report-only`` rewrites ``<out>/REPORT.md`` and its figures from the saved runs.
"""
import argparse
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
from tusimple_duc.cli import run_cli
from tusimple_duc.errors import ConfigError
from experiments.claims import pipeline as claims


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=sorted(claims.BUDGETS), default="full",
                        help="design of claims 2-3 (default full)")
    parser.add_argument("--out", default=os.path.join("docs", "claims"), help="report folder (default docs/claims)")
    parser.add_argument("--work", default=os.path.join("work_dirs", "claims"),
                        help="folder of the saved runs and data (default work_dirs/claims)")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained in parallel, one thread each (default 2)")
    parser.add_argument("--claims", default=",".join(claims.CLAIMS),
                        help=f"comma-separated subset of {','.join(claims.CLAIMS)} (default all)")
    parser.add_argument("--report-only", action="store_true", help="no training: the report from the saved runs (default: off)")
    args = parser.parse_args(argv)
    names = claims.parse_claims(args.claims)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be >= 1")
    claims.reproduce_claims(os.path.abspath(args.out), os.path.abspath(args.work), claims.BUDGETS[args.budget],
                            names, args.jobs, args.report_only,
                            say=lambda message: print(message, file=sys.stderr, flush=True))
    print(f"wrote {os.path.join(args.out, claims.REPORT)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
