#!/usr/bin/env python
"""Train with kvstore dist_sync on this machine: scheduler + servers + N workers on 127.0.0.1.

    python tools/launch_local.py -n 2 configs/train/tiny_synthetic.cfg --set env.kv_store=dist_sync

Everything after CONFIG is passed to every worker's ``train.py``. Output lines are
prefixed with the node (``[worker 1] ...``); if one worker fails, or on Ctrl-C, every
process is killed. Multi-machine jobs: docs/TRAINING.md.
"""
import argparse
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
from tusimple_duc.cli import run_cli
from tusimple_duc.engine.launcher import launch_local

TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--workers", type=int, default=2, help="number of workers (default 2)")
    parser.add_argument("-s", "--servers", type=int, default=1, help="number of servers (default 1)")
    parser.add_argument("--port", type=int, default=None, help="scheduler port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address of every node (default 127.0.0.1)")
    parser.add_argument("config", help="training config (INI)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="further train.py arguments, e.g. --set env.kv_store=dist_sync --resume")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.servers < 1:
        parser.error("--workers and --servers must be >= 1")
    command = [sys.executable, TRAIN_PY, args.config, *args.train_args]
    return launch_local(command, args.workers, args.servers, port=args.port, host=args.host)


if __name__ == "__main__":
    sys.exit(run_cli(main))
