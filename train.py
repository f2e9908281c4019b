#!/usr/bin/env python
"""Train a DUC/HDC segmentation network from an INI config (original TuSimple-DUC keys or new ones).

    python train.py configs/train/tiny_synthetic.cfg [--set section.key=value ...]
                    [--resume [RUN_DIR] [--trust-pickled-states]]
    cd train && python train_model.py ../configs/train/train_cityscapes.cfg

Config keys: every key with its type, default and meaning in tusimple_duc/config.py; paths in
the config are relative to the current folder: configs/train/*.cfg are written for the repository
root, train_cityscapes.cfg (the original's) for train/, as the second line runs it.

Each run writes into its own folder, as the original solver: ``<model_dir>/<save_model_prefix>/
<YYYY_MM_DD_HH:MM:SS>/`` holds the checkpoints ``<prefix>-NNNN.params`` / ``.states`` /
``.state.json`` and ``<prefix>-symbol.json``, the config copy ``train_<time>.cfg``, the log
``<prefix>_<time>.log``, the metrics ``<prefix>-metrics.jsonl`` (tools/plot_log.py draws them),
``<prefix>-summary.txt`` and ``run.lock`` (held while the run lives). ``--resume`` continues the
newest complete checkpoint of the newest such folder (or of RUN_DIR). docs/TRAINING.md has the
details (devices, several machines, the paper's experiments, resume rules).
"""
import argparse
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings, CUDA preload)
from tusimple_duc.cli import add_set_argument, run_cli
from tusimple_duc.config import load_train_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("``", ""),
                                     epilog=__doc__.split("\n\n", 1)[1].replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="training config (INI)")
    add_set_argument(parser)
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                        help="continue from the newest complete checkpoint of the newest run folder "
                             "<model_dir>/<save_model_prefix>/<time>/, or of RUN_DIR (written with the same "
                             "config, except num_epochs and other output-only keys) (default: off)")
    parser.add_argument("--trust-pickled-states", action="store_true",
                        help="with --resume: read an optimizer state in the old pickled format (earlier versions "
                             "of this project, Gluon's Trainer.save_states); unpickling runs code, so only for "
                             "files you trust (default: off)")
    args = parser.parse_args(argv)
    config = load_train_config(args.config, args.overrides)
    from tusimple_duc.engine.run import train

    result = train(config, resume=args.resume, trust_pickled_states=args.trust_pickled_states)
    written = result.checkpoint or "none written by this worker"
    folder = result.run_dir or "the chief worker's"
    print(f"done: epoch {result.epoch}, {result.updates} updates, run folder {folder}, last checkpoint {written}, "
          f"parameters sha1 {result.params_sha1}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
