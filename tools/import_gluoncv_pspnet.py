"""Save GluonCV's trained PSPNet (a model-zoo file such as psp_resnet101_citys) as a project checkpoint.

    python tools/import_gluoncv_pspnet.py FILE --out PREFIX [--epoch 0]

Writes ``PREFIX-%04d.params`` (atomically): every parameter of the ``pspnet_resnet101`` network
with ``dilation_schedule = gluoncv``, the depth and class count read from FILE. test.py runs it
with ``[network] preset = pspnet_resnet101``, ``dilation_schedule = gluoncv``, ``[model] model_dir``,
``model_prefix`` and ``model_epoch`` naming PREFIX and the epoch (any backend);
tools/export_model.py exports it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import tusimple_duc  # noqa: F401  (sets up threads before any heavy import)
from tusimple_duc.cli import run_cli
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.io.pretrained_pspnet import gluoncv_pspnet_network


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", help="GluonCV PSPNet .params file (save_parameters format)")
    parser.add_argument("--out", required=True, help="checkpoint prefix to write: OUT-%%04d.params")
    parser.add_argument("--epoch", type=int, default=0, help="checkpoint epoch number (default 0)")
    args = parser.parse_args(argv)
    net = gluoncv_pspnet_network(args.file)
    _, params_file = save_checkpoint(net, args.out, args.epoch)
    spec = net.spec
    print(f"wrote {params_file}: pspnet_resnet101, depth {spec.depth}, {spec.num_classes} classes, "
          f"dilation_schedule {spec.dilation_schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
