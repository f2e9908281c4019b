"""Process set-up that must happen before ``import mxnet``.

Two things are settled here, once, when :mod:`tusimple_duc` is imported:

* **CPU threads.** MXNet's OpenMP pool defaults to half the logical CPUs, which
  on machines without hyper-threading halves convolution speed. Unless the user
  set ``OMP_NUM_THREADS`` we set it to the number of physical cores available to
  this process.
* **CUDA 11 libraries for ``mxnet-cu112``.** The ``gpu`` extra installs the CUDA
  runtime as ``nvidia-*-cu11`` wheels (``site-packages/nvidia/<name>/lib``), which
  are not on the loader path. :func:`preload_cuda_libraries` loads them with
  ``RTLD_GLOBAL`` in dependency order so that ``libmxnet.so`` resolves its
  ``libcudart.so.11.0``, ``libcublas.so.11``, ``libcudnn.so.8`` ... against them.
  It does nothing when the wheels are absent (CPU installs) or when
  ``TUSIMPLE_DUC_NO_CUDA_PRELOAD=1``.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
import sysconfig
from typing import Iterable, List, Sequence

# Load order: each library only depends on libraries earlier in the list.
CUDA_LIBRARY_ORDER: Sequence[str] = (
    "libnvToolsExt.so",
    "libcudart.so",
    "libnvrtc.so",
    "libnvrtc-builtins.so",
    "libcublasLt.so",
    "libcublas.so",
    "libcufft.so",
    "libcurand.so",
    "libcusparse.so",
    "libcusolver.so",
    "libcudnn_ops_infer.so",
    "libcudnn_ops_train.so",
    "libcudnn_cnn_infer.so",
    "libcudnn_cnn_train.so",
    "libcudnn_adv_infer.so",
    "libcudnn_adv_train.so",
    "libcudnn.so",
    "libnccl.so",
)


def physical_core_count() -> int:
    """Number of physical cores among the CPUs this process may run on."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(os.path.join(topology, "physical_package_id")) as f:
                package = f.read().strip()
            with open(os.path.join(topology, "core_id")) as f:
                core = f.read().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores))


def configure_threads(environ: "os._Environ[str] | dict" = os.environ) -> int:
    """Set ``OMP_NUM_THREADS`` to the physical core count unless already set.

    Returns the thread count in effect. Has no effect on an MXNet already imported.
    """
    if not environ.get("OMP_NUM_THREADS"):
        environ["OMP_NUM_THREADS"] = str(physical_core_count())
    return int(environ["OMP_NUM_THREADS"])


def find_cuda_library_dirs(site_dirs: Iterable[str]) -> List[str]:
    """The ``nvidia/<name>/lib`` folders of the ``nvidia-*-cu11`` wheels under ``site_dirs``."""
    found: List[str] = []
    for site in site_dirs:
        for lib_dir in sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))):
            if os.path.isdir(lib_dir) and lib_dir not in found:
                found.append(lib_dir)
    return found


def cuda_libraries_to_preload(lib_dirs: Iterable[str]) -> List[str]:
    """Full paths of the CUDA libraries in ``lib_dirs``, in :data:`CUDA_LIBRARY_ORDER`.

    A library is matched by its stem with any version suffix (``libcudart.so.11.0``
    matches ``libcudart.so``). For each stem the shortest file name wins.
    """
    candidates: List[str] = []
    for lib_dir in lib_dirs:
        candidates.extend(sorted(glob.glob(os.path.join(lib_dir, "lib*.so*"))))
    ordered: List[str] = []
    for stem in CUDA_LIBRARY_ORDER:
        matches = [p for p in candidates if os.path.basename(p) == stem or os.path.basename(p).startswith(stem + ".")]
        if matches:
            ordered.append(min(matches, key=lambda p: (len(os.path.basename(p)), p)))
    return ordered


def site_package_dirs() -> List[str]:
    """The site-packages folders of this interpreter (venv first)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += [p for p in sys.path if p.endswith("site-packages")]
    return list(dict.fromkeys(dirs))


def preload_cuda_libraries(environ: "os._Environ[str] | dict" = os.environ) -> List[str]:
    """Load the CUDA 11 wheels' libraries globally; returns the paths loaded.

    Must run before ``import mxnet``. A library that fails to load is skipped:
    MXNet then reports the missing symbol itself.
    """
    if environ.get("TUSIMPLE_DUC_NO_CUDA_PRELOAD") == "1" or "mxnet" in sys.modules:
        return []
    loaded: List[str] = []
    for path in cuda_libraries_to_preload(find_cuda_library_dirs(site_package_dirs())):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            loaded.append(path)
        except OSError:
            continue
    return loaded
