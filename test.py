"""Segment and score with a trained checkpoint: ``python test.py CONFIG [--set section.key=value ...]``.

Reads the original TuSimple-DUC test config unchanged (``configs/test/test_full_image.cfg``)
plus the new ``[network]``, ``[inference]`` and ``[output]`` keys; without ``[network]`` the
network is the one the checkpoint's ``-symbol.json`` records. ``--images`` segments any images
or folders instead of the config's list (no evaluation), each at its own size unless
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="test config (INI)")
    add_set_argument(parser)
    parser.add_argument("--images", nargs="+", metavar="PATH", help="images or folders to segment instead of the list")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    exit_on_sigterm()  # a kill mid-write leaves no hidden temporary file behind
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_test_config(args.config, args.overrides)

    from tusimple_duc.pipelines.segment import run_test, summary_text

    explicit_shape = "result_shape" in parse_overrides(args.overrides).get("data", {})
    run = run_test(config, images=args.images, show_progress=not args.quiet,
                   images_result_shape=config.data.result_shape if explicit_shape else None)
    print(summary_text(run, config))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
