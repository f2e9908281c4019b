"""Segment and score with a trained checkpoint: ``python test.py CONFIG [--set section.key=value ...]``.

    cd test && python ../test.py ../configs/test/test_full_image.cfg --set model.gpu=-1 --set data.test_scales=0.75,1,1.25
    cd test && python ../test.py ../configs/test/test_full_image.cfg --set model.gpu=-1 --images photos/ --out results/photos

Reads the original TuSimple-DUC test config unchanged (``configs/test/test_full_image.cfg``;
its paths, ``../models`` and ``../data``, are relative to test/, as in the original; without
``--set model.gpu=-1`` it runs on GPU 0)
plus the new ``[network]``, ``[inference]`` and ``[output]`` keys (every key: type, default and
meaning in tusimple_duc/config.py); without ``[network]`` the network is the one the
checkpoint's ``-symbol.json`` records.

A list run writes into ``[model] result_dir``: ``score/`` (the dataset's submission PNGs),
``visualization/`` (the released 2x2 mosaics), ``color/``, ``overlay/``,
``<model_prefix><model_epoch>.txt`` and ``confidence.txt`` (confidences), and with ground truth
``metrics.json`` and ``figures/``. ``--images`` segments any images or folders instead of the
list (no evaluation) into a folder of its own (``--out``; default a new
``<result_dir>-images-<time>`` beside the results), each at its own size unless
``--set data.result_shape=H,W`` is given on the command line (the config file's result_shape
applies to the list only). SIGTERM stops it with exit status 143, removing the file being
written; temporary files an earlier run left (``kill -9``) are removed at the start.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets threads before mxnet loads)
from tusimple_duc.cli import add_set_argument, exit_on_sigterm, run_cli
from tusimple_duc.config import load_test_config, parse_overrides


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("``", ""),
                                     epilog=__doc__.split("\n\n", 1)[1].replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="test config (INI)")
    add_set_argument(parser, example="model.gpu=-1")
    parser.add_argument("--images", nargs="+", metavar="PATH",
                        help="images or folders to segment instead of the config's list (default: the list)")
    parser.add_argument("--out", default=None, metavar="FOLDER",
                        help="with --images: the output folder, new or empty (default: a new "
                             "<result_dir>-images-<time> folder beside the config's result_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (default: shown)")
    args = parser.parse_args(argv)
    if args.out and not args.images:
        parser.error("--out goes with --images (a list run writes into [model] result_dir)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_test_config(args.config, args.overrides)

    from tusimple_duc.pipelines.segment import run_test, summary_text

    explicit_shape = "result_shape" in parse_overrides(args.overrides).get("data", {})
    run = run_test(config, images=args.images, show_progress=not args.quiet,
                   images_result_shape=config.data.result_shape if explicit_shape else None, out=args.out)
    print(summary_text(run, config))
    return 0


if __name__ == "__main__":
    exit_on_sigterm()  # a kill mid-write leaves no hidden temporary file behind
    sys.exit(run_cli(main))
