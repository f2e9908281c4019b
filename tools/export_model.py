"""Export a checkpoint as a drop-in replacement of the released files (and optionally ONNX).

    python tools/export_model.py --prefix models/ResNet_DUC_HDC_CityScapes --epoch 20 \
        --out export/duc [--preset NAME | --config TRAIN_CFG] [--shape 1024,2048] [--onnx duc.onnx] \
        [--overwrite]

Reads ``PREFIX-%04d.params`` (and cross-checks ``PREFIX-symbol.json``); with ``--epoch``
omitted, ``--prefix`` is a params file (checkpoint or Gluon format). The architecture is
``--preset``, or the network of a training config (``--config``: the config trained with, or
the run's saved ``train_<time>.cfg`` next to the checkpoint, which records the network trained),
or by default the one ``PREFIX-symbol.json``
describes. Writes
``OUT-symbol.json`` + ``OUT-0000.params`` (the released graph ending in SoftmaxOutput
``seg_loss``: ``mx.mod.Module.load(OUT, 0)`` binds it with input ``data``) and, with
``--onnx``, an ONNX model for deployment (input ``data`` (N, 3, H, W) float32, RGB minus the
mean, dynamic N, H, W; output ``--onnx-output``: ``probabilities`` (N, L, H/s, W/s),
``resized`` (N, L, H, W) or ``labels`` (N, H, W); its metadata_props state the input contract,
the class names and the dataset's label ids; see docs/DEPLOYMENT.md). ``--shape`` is the H,W
the graph is traced with. Files are written atomically; an earlier export's files are
replaced only with ``--overwrite``.

A comparison system's preset (``fcn8s_vgg16``, ``pspnet_resnet101``, ...; or its training config)
exports its own graph the same way: ``OUT-symbol.json`` ends in the same ``SoftmaxOutput`` over
(N, L, h, w) scores; its ONNX has the same outputs and metadata.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence, Tuple

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.datasets import DATASETS
from tusimple_duc.io.export import RELEASED_TEST_SHAPE
from tusimple_duc.io.onnx_deploy import DEPLOY_OUTPUTS
from tusimple_duc.io.symbol import DEFAULT_IGNORE_LABEL
from tusimple_duc.pipelines.deploy import DEFAULT_DATASET, export_for_deployment


def parse_shape(text: str) -> Tuple[int, int]:
    """``"H,W"`` -> ``(H, W)``."""
    try:
        height, width = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W (two integers), got {text!r}") from None
    return height, width


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prefix", required=True,
                        help="checkpoint prefix (or a params file when --epoch is omitted)")
    parser.add_argument("--epoch", type=int, default=None,
                        help="checkpoint epoch (default: none, --prefix is a params file)")
    parser.add_argument("--out", required=True, help="output prefix: OUT-symbol.json, OUT-0000.params")
    architecture = parser.add_mutually_exclusive_group()
    architecture.add_argument("--preset", default=None,
                              help="architecture of the checkpoint: a preset name (DUC or comparison system; "
                                   "default: the one PREFIX-symbol.json describes)")
    architecture.add_argument("--config", default=None,
                              help="architecture of the checkpoint: a training config (e.g. the run's "
                                   "train_<time>.cfg; default: none)")
    parser.add_argument("--shape", type=parse_shape, default=RELEASED_TEST_SHAPE,
                        help="H,W the ONNX graph is traced with (default %d,%d)" % RELEASED_TEST_SHAPE)
    parser.add_argument("--onnx", default=None, help="also write an ONNX model to this file (default: none)")
    parser.add_argument("--onnx-output", choices=DEPLOY_OUTPUTS, default=DEPLOY_OUTPUTS[0],
                        help="the ONNX output: probabilities (N, L, H/s, W/s), resized (N, L, H, W) or "
                             "labels (N, H, W) (default %(default)s)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                        help="dataset whose class names and label ids the ONNX metadata states (default: the "
                             f"--config's [data] dataset, else {DEFAULT_DATASET})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier export into OUT (default: refused)")
    parser.add_argument("--ignore-label", type=int, default=DEFAULT_IGNORE_LABEL,
                        help=f"SoftmaxOutput ignore label (default {DEFAULT_IGNORE_LABEL})")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    result = export_for_deployment(args.prefix, args.epoch, args.out, args.preset, config=args.config,
                                   dataset=args.dataset, shape=args.shape, onnx_path=args.onnx,
                                   onnx_output=args.onnx_output, ignore_label=args.ignore_label,
                                   overwrite=args.overwrite)
    for path in (result.symbol, result.params, result.onnx):
        if path:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
