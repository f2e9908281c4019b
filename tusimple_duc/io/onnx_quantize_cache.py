"""The int8 (QDQ) ONNX of a checkpoint, quantized once and kept on disk next to it.

Quantizing (:func:`tusimple_duc.io.onnx_quantize.quantize_qdq`) runs a calibration session of
the fp32 model in ONNX Runtime: at 512x1024 it holds several times the memory of the inference
itself. With a cache the process that quantizes writes the QDQ model once, and every later
process (test.py, the benchmark's workers, ``precision = auto``) only reads and compiles it.

The cache file is ``<stem>.int8-<key>.onnx`` (``stem``: the checkpoint's
``<model_dir>/<prefix>-<epoch>``); ``key`` (16 hex) is the SHA-256 of everything the quantized
model depends on (:func:`quantization_key`): the clean fp32 export's bytes (the checkpoint's
values and the export), the convolutions kept fp32, the calibration inputs' bytes and shape,
the calibration tile and :data:`QUANTIZER_VERSION`. Another checkpoint or setting is another
file (a miss, quantized and written); the same ones are a hit. A cache file that does not load
as a valid ONNX model is reported in one log line and quantized again (replaced atomically).
A folder that cannot be written is one log line; the model is used without being kept.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable, Collection, Tuple

import numpy as np
import onnx

from tusimple_duc.io.atomic import atomic_open

log = logging.getLogger(__name__)

#: bump when quantize_qdq's output for the same inputs changes: older cache files become misses
QUANTIZER_VERSION = 1


def quantization_key(model_bytes: bytes, fp32_weights: Collection[str], calibration: np.ndarray,
                     tile: Tuple[int, int]) -> str:
    """16 hex of the SHA-256 of what :func:`quantize_qdq` reads: the serialized clean model,
    the fp32 weight names, the (K, 3, H, W) float32 calibration inputs and the tile (rows, cols)."""
    digest = hashlib.sha256()
    digest.update(f"quantizer {QUANTIZER_VERSION}\n".encode())
    digest.update(hashlib.sha256(model_bytes).digest())
    digest.update(("fp32 " + ",".join(sorted(fp32_weights)) + "\n").encode())
    images = np.ascontiguousarray(calibration, dtype=np.float32)
    digest.update(f"calibration {images.shape} tile {tuple(int(v) for v in tile)}\n".encode())
    digest.update(images.tobytes())
    return digest.hexdigest()[:16]


def cache_file(stem: str, key: str) -> str:
    """``<stem>.int8-<key>.onnx``."""
    return f"{stem}.int8-{key}.onnx"


def cached_quantized(path: str, quantize: Callable[[], onnx.ModelProto]) -> onnx.ModelProto:
    """The QDQ model kept in ``path``, or ``quantize()``'s, written to ``path`` atomically.

    A ``path`` that does not load as a valid ONNX model is quantized again (one warning line
    naming it and the problem); a write that fails is one warning line (the model is returned
    unkept)."""
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
        log.info("int8: quantized model %s read (cache)", path)
        return model
    except FileNotFoundError:
        pass
    except Exception as err:  # protobuf DecodeError, ValidationError, OSError: any unreadable file
        log.warning("int8: cache file %s unreadable (%s: %s): quantizing again", path, type(err).__name__,
                    str(err).splitlines()[0] if str(err) else "")
    model = quantize()
    try:
        with atomic_open(path, "wb") as f:
            f.write(model.SerializeToString())
        log.info("int8: quantized model written to %s (cache)", path)
    except OSError as err:
        log.warning("int8: quantized model not kept (%s)", err)
    return model
