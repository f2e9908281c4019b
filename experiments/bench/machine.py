"""The machine a benchmark ran on, and its measured single-precision GEMM peak.

Import ``tusimple_duc`` before this module (it sets ``OMP_NUM_THREADS`` before MXNet loads).
"""
from __future__ import annotations

import ctypes
import os
import platform
import time
from typing import Callable, Dict, List

import mxnet as mx
import numpy as np

from tusimple_duc.runtime import physical_core_count

FLAG_PREFIXES = ("avx2", "fma", "avx512", "amx", "avx_vnni")


def cpu_flags() -> List[str]:
    """The vector-ISA flags of CPU 0 (AVX2, FMA, AVX-512*, AMX*, AVX-VNNI), sorted."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return sorted(flag for flag in line.split(":", 1)[1].split()
                                  if flag.startswith(FLAG_PREFIXES))
    except OSError:
        pass
    return []


def cpu_identity() -> str:
    """``<model name> (family F model M)`` from /proc/cpuinfo: generic names such as
    ``Intel(R) Xeon(R) Processor`` say which CPU only with the family and model numbers."""
    fields: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip():
                    break
    except OSError:
        pass
    if "cpu family" in fields and "model" in fields:
        return f"{cpu_model()} (family {fields['cpu family']} model {fields['model']})"
    return cpu_model()


def cpu_model() -> str:
    """``model name`` of /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def openmp_threads() -> Dict[str, int]:
    """``omp_get_max_threads()`` of every OpenMP runtime mapped into this process, by path."""
    found: Dict[str, int] = {}
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "omp" in line.rsplit("/", 1)[-1]})
    except OSError:
        return found
    for path in paths:
        try:
            found[path] = int(ctypes.CDLL(path).omp_get_max_threads())
        except (OSError, AttributeError):
            continue
    return found


def available_memory_mb() -> float:
    """``MemAvailable`` of /proc/meminfo in MiB (infinite where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("inf")


def load_average() -> List[float]:
    """1-, 5- and 15-minute load averages (empty where unknown): other work on the CPUs."""
    try:
        return [float(v) for v in os.getloadavg()]
    except OSError:
        return []


def describe_machine() -> Dict[str, object]:
    """CPU model, logical CPUs, physical cores, ISA flags, MXNet version and oneDNN support,
    ``OMP_NUM_THREADS``, Python version, load averages."""
    flags = cpu_flags()
    features = mx.runtime.Features()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "physical_cores": physical_core_count(),
        "flags": flags,
        "avx512": any(flag.startswith("avx512") for flag in flags),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": any(flag.startswith("amx") for flag in flags),
        "mxnet": mx.__version__,
        "mxnet_onednn": features.is_enabled("MKLDNN"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "available_memory_mb": available_memory_mb(),
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def _best_gflops(multiply: Callable[[], object], flops: float, repeats: int) -> float:
    multiply()  # warm-up (thread pool, allocation)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        multiply()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def gemm_peak(size: int = 4096, repeats: int = 5) -> Dict[str, float]:
    """Best-of-``repeats`` GFLOP/s of a ``size x size`` fp32 matrix product, all threads.

    Three implementations: ``mx.nd.dot`` (MXNet's BLAS), NumPy ``matmul`` (its BLAS) and
    ``mx.nd.FullyConnected`` (oneDNN, the library that runs the convolutions). ``peak`` is the
    best of the three: the throughput the convolutions are compared with.
    """
    rng = np.random.RandomState(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    a_nd, b_nd = mx.nd.array(a), mx.nd.array(b)
    flops = 2.0 * size ** 3
    results = {
        "mxnet_dot": _best_gflops(lambda: mx.nd.dot(a_nd, b_nd).wait_to_read(), flops, repeats),
        "numpy_matmul": _best_gflops(lambda: np.matmul(a, b), flops, repeats),
        "onednn_fully_connected": _best_gflops(
            lambda: mx.nd.FullyConnected(a_nd, b_nd, no_bias=True, num_hidden=size).wait_to_read(),
            flops, repeats),
    }
    results["peak"] = max(results.values())
    results["size"] = size
    return results
