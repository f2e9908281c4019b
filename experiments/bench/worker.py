"""Worker process of the benchmark: builds ONE variant, then runs it on the suite's command.

Usage (by :mod:`experiments.bench.suite`): ``python -m experiments.bench.worker '<VariantConfig JSON>'``.
The commands and replies are :mod:`experiments.bench.protocol`'s; the saved probabilities are in
the pixel layout (N, L, H/s, W/s) (image variants: (1, L, H, W)). The ready reply also carries
``"threads"``: ``OMP_NUM_THREADS`` and the thread counts of the libraries loaded.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict

import tusimple_duc  # noqa: F401  (before mxnet: OMP_NUM_THREADS)

from experiments.bench.machine import openmp_threads
from experiments.bench.protocol import work
from experiments.bench.variants import VariantConfig, build_variant


def thread_settings(variant: str) -> Dict[str, Any]:
    """``OMP_NUM_THREADS`` and the thread counts the libraries of this process will use."""
    threads: Dict[str, Any] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                               "openmp_max_threads": openmp_threads()}
    if variant.startswith("torch"):
        import torch

        threads["torch_threads"] = torch.get_num_threads()
    return threads


def main(argv) -> int:
    def build():
        config = VariantConfig.from_dict(json.loads(argv[1]))
        return build_variant(config), {"threads": thread_settings(config.variant)}

    return work(build)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
