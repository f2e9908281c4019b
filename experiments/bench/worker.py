"""Worker process of the benchmark: builds ONE variant, then runs it on the suite's command.

Usage (by :mod:`experiments.bench.suite`): ``python -m experiments.bench.worker '<VariantConfig JSON>'``.
Every reply is one stdout line ``@@bench <JSON>`` (other output is ignored); commands are JSON
lines on stdin:

* ``{"op": "run", "save": path|null}`` -> ``{"seconds": s}``: one timed iteration; with ``save``,
  the pixel-layout probabilities of that run are written to ``path`` (``.npy``).
* ``{"op": "probabilities", "input": path, "save": path}`` -> ``{}``: forward variants only,
  the probabilities of another input of the same shape (not timed).
* ``{"op": "exit"}`` -> ``{"peak_rss_mb": ..., "memory_source": ...}`` then the process exits.

The first reply, after the build, is ``{"ready": true, "build_seconds": s, "threads": {...},
"built_rss_mb": peak memory so far}``.
An exception replies ``{"error": "..."}`` and exits with status 1.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from typing import Any, Dict

import tusimple_duc  # noqa: F401  (before mxnet: OMP_NUM_THREADS)
import numpy as np

from experiments.bench.machine import openmp_threads
from experiments.bench.variants import VariantConfig, build_variant

REPLY_PREFIX = "@@bench "


def reply(message: Dict[str, Any]) -> None:
    """Write one protocol line."""
    sys.stdout.write(REPLY_PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def peak_memory() -> Dict[str, object]:
    """Peak resident memory of this process in MiB.

    ``VmHWM`` of /proc/self/status: reset by ``exec``, so it is this worker's own peak.
    ``ru_maxrss`` is NOT used where VmHWM exists: Linux carries it over ``exec`` from the
    parent, so a worker would report at least the suite's own peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return {"peak_rss_mb": int(line.split()[1]) / 1024.0, "memory_source": "VmHWM"}
    except OSError:
        pass
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "memory_source": "ru_maxrss"}


def thread_settings(variant: str) -> Dict[str, Any]:
    """``OMP_NUM_THREADS`` and the thread counts the libraries of this process will use."""
    threads: Dict[str, Any] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                               "openmp_max_threads": openmp_threads()}
    if variant.startswith("torch"):
        import torch

        threads["torch_threads"] = torch.get_num_threads()
    return threads


def serve(variant: Any) -> None:
    """Answer commands until ``exit``."""
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "run":
            start = time.perf_counter()
            variant.run()
            seconds = time.perf_counter() - start
            if command.get("save"):
                np.save(command["save"], variant.probabilities())
            reply({"seconds": seconds})
        elif op == "probabilities":
            np.save(command["save"], variant.probabilities_of(np.load(command["input"])))
            reply({})
        elif op == "exit":
            reply(peak_memory())
            return
        else:
            raise ValueError(f"unknown command {op!r}")


def main(argv) -> int:
    try:
        config = VariantConfig.from_dict(json.loads(argv[1]))
        start = time.perf_counter()
        variant = build_variant(config)
        reply({"ready": True, "build_seconds": time.perf_counter() - start,
               "threads": thread_settings(config.variant), "built_rss_mb": peak_memory()["peak_rss_mb"]})
        serve(variant)
    except Exception as err:  # reported to the suite, which raises with this message
        traceback.print_exc()
        reply({"error": f"{type(err).__name__}: {err}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
