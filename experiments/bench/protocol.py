"""The line protocol between the benchmark suite and its worker processes (stdlib and NumPy only).

Imported by the project's worker (:mod:`experiments.bench.worker`) and by the peer worker
(``experiments/bench/peer_worker.py``, run by another interpreter that has neither MXNet nor this
project): both answer the suite the same way. Every reply is one stdout line ``@@bench <JSON>``
(other output is ignored); commands are JSON lines on stdin:

* ``{"op": "run", "save": path|null}`` -> ``{"seconds": s}``: one timed iteration; with ``save``,
  the variant's probabilities of that run are written to ``path`` (``.npy``).
* ``{"op": "probabilities", "input": path, "save": path}`` -> ``{}``: the probabilities of another
  input of the same shape (not timed).
* ``{"op": "exit"}`` -> ``{"peak_rss_mb": ..., "memory_source": ...}`` then the process exits.
"""
from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from typing import Any, Callable, Dict, Tuple

import numpy as np

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


def serve(variant: Any) -> None:
    """Answer commands until ``exit``; ``variant`` has ``run()``, ``probabilities()`` and
    ``probabilities_of(x)``."""
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


def work(build: Callable[[], Tuple[Any, Dict[str, Any]]]) -> int:
    """A worker's life: ``build()`` -> (variant, extra ready fields); the ready reply
    ``{"ready": true, "build_seconds": s, "built_rss_mb": peak so far, **extra}``, then
    :func:`serve`. An exception replies ``{"error": "<Type>: <message>"}``; returns the exit status."""
    try:
        start = time.perf_counter()
        variant, extra = build()
        reply({"ready": True, "build_seconds": time.perf_counter() - start,
               "built_rss_mb": peak_memory()["peak_rss_mb"], **extra})
        serve(variant)
    except Exception as err:  # reported to the suite, which raises with this message
        traceback.print_exc()
        reply({"error": f"{type(err).__name__}: {err}"})
        return 1
    return 0
