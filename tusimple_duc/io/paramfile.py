"""Read and write MXNet ``.params`` files (``mx.nd.save`` dictionaries) with clear errors.

A missing, empty, truncated or corrupt file, one holding an unnamed list of arrays, or one
holding a NaN or infinite value (a diverged training: oneDNN's fused ReLU would even turn NaN
into 0 in inner layers, so the output could look plausible) raises one
:class:`~tusimple_duc.errors.CheckpointError` naming the file and the problem.
Writes are atomic (:func:`tusimple_duc.io.atomic.atomic_write_with`); a failed write (a full
disk) is an ``OSError`` like any other file write, not MXNet's ``MXNetError``
(:func:`save_arrays`).
"""
from __future__ import annotations

import errno
import os
from typing import Dict, Mapping, Union

import mxnet as mx
import numpy as np

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.atomic import atomic_write_with


def read_params(path: str) -> Dict[str, mx.nd.NDArray]:
    """Load a ``.params`` file saved from a dict: ``{key: NDArray}`` on the CPU.

    Raises
    ------
    CheckpointError
        the file does not exist, is not a readable params file (truncated, corrupt, empty),
        holds an unnamed list, holds no arrays, or holds a non-finite value
        (:func:`check_finite`).
    """
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such params file")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: not a file")
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise CheckpointError(f"{path}: not a readable MXNet params file, truncated or corrupt "
                              f"({mxnet_error_reason(err)})") from None
    if isinstance(arrays, list):
        raise CheckpointError(f"{path}: holds an unnamed list of {len(arrays)} arrays, "
                              f"not named parameters")
    if not arrays:
        raise CheckpointError(f"{path}: holds no arrays")
    check_finite(arrays, path)
    return dict(arrays)


def check_finite(arrays: Mapping[str, mx.nd.NDArray], path: str) -> None:
    """Raise ``CheckpointError`` naming ``path`` and the first array (in file order) holding a
    NaN or an infinite value, with its counts."""
    for key, value in arrays.items():
        values = value.asnumpy()
        if np.isfinite(values).all():
            continue
        nans = int(np.isnan(values).sum())
        infinite = int(np.isinf(values).sum())
        raise CheckpointError(f"{path}: array {key} holds {nans} NaN and {infinite} infinite of "
                              f"{values.size} values (a diverged training?); refusing non-finite weights")


def write_params(path: str, arrays: Mapping[str, mx.nd.NDArray]) -> None:
    """Save ``{key: NDArray}`` to ``path`` atomically (``mx.nd.save``), keys in the given order."""
    data = {key: value.as_in_context(mx.cpu()) for key, value in arrays.items()}
    atomic_write_with(path, lambda tmp: save_arrays(tmp, data))


def save_arrays(path: str, data: Union[Mapping[str, mx.nd.NDArray], list]) -> None:
    """``mx.nd.save(path, data)``, raising ``OSError`` when the write fails.

    MXNet reports a failed write (``FileStream.Write incomplete`` on a full disk) as
    ``MXNetError``; this raises ``OSError(ENOSPC)`` when the file system has less free space
    than the arrays need, else ``OSError(EIO)`` with MXNet's reason.
    """
    try:
        mx.nd.save(path, data)
    except mx.base.MXNetError as err:
        arrays = data.values() if isinstance(data, Mapping) else data
        needed = sum(value.size * value.dtype(0).itemsize for value in arrays)
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
        if stats.f_bavail * stats.f_frsize < needed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from None
        raise OSError(errno.EIO, f"mx.nd.save failed ({mxnet_error_reason(err)})", path) from None


def mxnet_error_reason(err: Exception) -> str:
    """The message line of an MXNet error (without the C++ traceback and argument docs)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    tagged = [line for line in lines if "MXNetError:" in line]
    reason = tagged[0].split("MXNetError:", 1)[1].strip() if tagged else (lines or [""])[-1]
    return reason.rstrip(",:") or type(err).__name__
