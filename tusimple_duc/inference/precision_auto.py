"""``[inference] precision = auto``: the fastest precision that holds, measured once per machine.

:func:`choose_precision` builds the backend's forward at every precision it offers, measures

* agreement: the fraction of calibration pixels whose argmax equals fp32's (the same measure and
  the same calibration images as the int8 path, ``pipelines/segment.calibration_batch``), and
* time: seconds per forward of the actual network input (``runs`` rounds, the precisions
  interleaved within each round so that a machine that slows down hurts all alike; median),

and keeps the fastest precision whose agreement is at least :data:`AGREEMENT_TARGET` and which is
faster than fp32 (fp32 itself otherwise: a precision slower than fp32 on this CPU is never
chosen). The decision is cached in ``<cache_dir>/precision.json`` (written atomically) under a key
of CPU model + CPU flags + backend (with the dilated convolution forms considered) + network
digest + input shape, so later runs on the same machine skip the measurement; it is logged in one
line either way.

On the ONNX backends a candidate is a precision in a dilated convolution form
(``[inference] dilated_conv_form``, ``inference/backends.py``): ``bf16`` runs the export as it
is, ``bf16+taps`` with the DUC head's dilated convolutions as shifted 1x1 convolutions,
``bf16+phases`` as dense convolutions on their phases; with ``dilated_conv_form = auto`` every
form of every precision is a candidate. ``fp32`` in the direct
form is always one: the reference of the agreement and of the speed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tusimple_duc.config import CALIBRATION_TILE_DEFAULT
from tusimple_duc.errors import ConfigError
from tusimple_duc.inference.backends import (BACKEND_PRECISIONS, CONV_FORMS, TRACE_SHAPE, check_backend, is_int8,
                                            make_forward)
from tusimple_duc.inference.fast import INT8_FP32_DEFAULT, bf16_unavailable_reason
from tusimple_duc.io.atomic import atomic_write_json
from tusimple_duc.io.export import onnx_model

AGREEMENT_TARGET = 0.99
TIMING_RUNS = 3
CACHE_FILE = "precision.json"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "tusimple_duc")

ForwardFn = Callable[[np.ndarray], np.ndarray]
#: seconds one call of ``forward(batch)`` takes (injectable for tests)
TimerFn = Callable[[ForwardFn, np.ndarray], float]

log = logging.getLogger(__name__)


@dataclass
class PrecisionChoice:
    """What :func:`choose_precision` decided (``seconds`` and ``agreement`` empty on a cache hit)."""

    precision: str
    cached: bool
    seconds: Dict[str, float] = field(default_factory=dict)
    agreement: Dict[str, float] = field(default_factory=dict)


def wall_seconds(forward: ForwardFn, batch: np.ndarray) -> float:
    """Wall-clock seconds of one ``forward(batch)``."""
    start = time.perf_counter()
    forward(batch)
    return time.perf_counter() - start


def cpu_identity(cpuinfo: str = "/proc/cpuinfo") -> str:
    """``<model name> flags:<sha256 of the sorted flags, 12 hex>`` of this machine's CPU."""
    model, flags = "unknown CPU", ""
    if os.path.isfile(cpuinfo):
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif name.strip() == "flags" and not flags:
                    flags = " ".join(sorted(value.split()))
    return f"{model} flags:{hashlib.sha256(flags.encode()).hexdigest()[:12]}"


def network_digest(net) -> str:
    """sha256 (16 hex) of the network's parameter names, shapes and values."""
    digest = hashlib.sha256()
    for name, param in sorted(net.collect_params().items()):
        value = param.data().asnumpy()
        digest.update(f"{name}{value.shape}{value.dtype}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]


def cache_key(cpu: str, backend: str, digest: str, shape: Sequence[int], forms: Sequence[str] = ("direct",)) -> str:
    """The cache entry's key: CPU identity, backend (and the conv forms considered beyond
    ``direct``), network digest and input shape."""
    where = backend + "".join(f"+{form}" for form in forms if form != "direct")
    return f"{cpu} | {where} | {digest} | {'x'.join(str(int(v)) for v in shape)}"


def candidate_label(precision: str, conv_form: str) -> str:
    """``bf16`` (direct form) or ``bf16+taps``."""
    return precision if conv_form == "direct" else f"{precision}+{conv_form}"


def parse_candidate(label: str) -> Tuple[str, str]:
    """:func:`candidate_label`'s inverse: ``bf16+taps`` -> ``("bf16", "taps")``."""
    precision, _, conv_form = label.partition("+")
    return precision, conv_form or "direct"


def candidates(backend: str, conv_form: str) -> List[str]:
    """The labels ``precision = auto`` measures for ``backend`` with ``[inference] dilated_conv_form``
    ``conv_form`` (``auto``: every form): fp32 direct first, then every precision in every form."""
    forms = CONV_FORMS if conv_form == "auto" else (conv_form,)
    labels = ["fp32"] + [candidate_label(p, f) for f in forms for p in BACKEND_PRECISIONS[backend]]
    return list(dict.fromkeys(labels))


def cache_path(cache_dir: str) -> str:
    """``<cache_dir>/precision.json`` (``cache_dir`` empty: :data:`DEFAULT_CACHE_DIR`)."""
    return os.path.join(os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR), CACHE_FILE)


def read_cache(path: str) -> Dict[str, dict]:
    """The cache's entries; a missing or unreadable file is an empty cache (it is re-measured)."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError) as err:
        log.info("precision cache %s unreadable (%s): measuring again", path, err)
        return {}
    return entries if isinstance(entries, dict) else {}


def argmax_agreement(probabilities: np.ndarray, reference: np.ndarray) -> float:
    """Fraction of pixels whose argmax over axis 1 equals ``reference``'s; (N, L, h, w) each."""
    return float(np.mean(probabilities.argmax(axis=1) == reference.argmax(axis=1)))


def choose_precision(build: Callable[[str], ForwardFn], precisions: Sequence[str], calibration: np.ndarray,
                     timing_input: np.ndarray, key: str, path: str, timer: TimerFn = wall_seconds,
                     runs: int = TIMING_RUNS, target: float = AGREEMENT_TARGET) -> Tuple[PrecisionChoice, ForwardFn]:
    """The fastest precision that holds (module docstring) and its forward.

    Parameters
    ----------
    build : ``precision -> forward``; a :class:`ConfigError` leaves that precision out.
    precisions : candidates, ``fp32`` among them.
    calibration : (K, 3, H, W) float32 network inputs for the agreement.
    timing_input : (N, 3, H, W) float32: the input the predictor will feed the network.
    key : :func:`cache_key`; path : the cache file.
    timer : seconds of one forward call; runs : timing rounds; target : agreement needed.
    """
    if "fp32" not in precisions:
        raise ValueError("precision = auto compares with fp32, which must be a candidate")
    entries = read_cache(path)
    cached = entries.get(key, {}).get("precision")
    if cached in precisions:
        log.info("precision = auto: %s (cached for %s in %s)", cached, key, path)
        return PrecisionChoice(cached, True), build(cached)
    forwards: Dict[str, ForwardFn] = {}
    for precision in precisions:
        try:
            forwards[precision] = build(precision)
        except ConfigError as err:
            log.info("precision = auto: %s left out: %s", precision, err)
    reference = forwards["fp32"](calibration)
    agreement = {p: 1.0 if p == "fp32" else argmax_agreement(f(calibration), reference) for p, f in forwards.items()}
    samples: Dict[str, List[float]] = {p: [] for p in forwards}
    for _ in range(runs):
        for precision, forward in forwards.items():
            samples[precision].append(timer(forward, timing_input))
    seconds = {p: float(np.median(s)) for p, s in samples.items()}
    eligible = [p for p in forwards if p == "fp32" or (agreement[p] >= target and seconds[p] < seconds["fp32"])]
    chosen = min(eligible, key=lambda p: seconds[p])
    entries[key] = {"precision": chosen, "seconds": seconds, "agreement": agreement}
    atomic_write_json(path, entries)
    log.info("precision = auto: %s (%s; argmax = fp32: %s; cached in %s)", chosen,
             ", ".join(f"{p} {s:.3f} s" for p, s in seconds.items()),
             ", ".join(f"{p} {a:.2%}" for p, a in agreement.items()), path)
    return PrecisionChoice(chosen, False, seconds, agreement), forwards[chosen]


def timing_batch(calibration: np.ndarray, window: Optional[Tuple[int, int]], batch_windows: int) -> np.ndarray:
    """The input the predictor feeds the network: the first calibration image whole (whole
    mode), or ``batch_windows`` windows of size ``window`` cut from it (edge-padded if smaller)."""
    first = calibration[:1]
    if window is None:
        return first
    rows, cols = window
    padded = np.pad(first, ((0, 0), (0, 0), (0, max(0, rows - first.shape[2])), (0, max(0, cols - first.shape[3]))),
                    mode="edge")
    return np.ascontiguousarray(np.repeat(padded[:, :, :rows, :cols], batch_windows, axis=0))


def auto_forward(net, backend: str, calibration: np.ndarray, window: Optional[Tuple[int, int]],
                 batch_windows: int, cache_dir: str, int8_fp32: Sequence[str] = INT8_FP32_DEFAULT,
                 timer: TimerFn = wall_seconds, conv_form: str = "direct",
                 calibration_tile: Tuple[int, int] = CALIBRATION_TILE_DEFAULT,
                 int8_cache: Optional[str] = None) -> Tuple[PrecisionChoice, ForwardFn]:
    """:func:`choose_precision` over ``backend``'s precisions (in ``conv_form``, :func:`candidates`)
    for ``net`` on this machine.

    Parameters
    ----------
    net : the initialised network; backend : one of ``backends.BACKENDS``.
    calibration : (K, 3, H, W) float32 inputs (agreement; int8 calibration; timing input).
    window, batch_windows : sliding mode's window (None: whole image) and windows per call.
    cache_dir : folder of ``precision.json`` (empty: :data:`DEFAULT_CACHE_DIR`).
    int8_fp32 : int8 (every backend): layer groups kept fp32.
    conv_form : ``[inference] dilated_conv_form``: direct, taps, phases or auto (all).
    calibration_tile, int8_cache : int8 with the ONNX backends, as in ``backends.make_forward``.
    """
    if conv_form == "auto" and backend == "mxnet":
        raise ConfigError("[inference] dilated_conv_form = auto compares forms of the ONNX export: it needs backend "
                          "openvino or onnxruntime, not mxnet")
    for form in (CONV_FORMS if conv_form == "auto" else (conv_form,)):
        check_backend(backend, "fp32", form)
    labels = candidates(backend, conv_form)
    if backend == "mxnet" and bf16_unavailable_reason():  # not a candidate where MXNet cannot run it
        labels = tuple(label for label in labels if parse_candidate(label)[0] != "bf16")
    model_bytes = None if backend == "mxnet" else onnx_model(net, TRACE_SHAPE).SerializeToString()
    batch = timing_batch(calibration, window, batch_windows)
    forms = sorted({parse_candidate(label)[1] for label in labels})
    key = cache_key(cpu_identity(), backend, network_digest(net), batch.shape, forms)

    def build(label: str) -> ForwardFn:
        precision, form = parse_candidate(label)
        forward = make_forward(net, backend, precision, calibration=calibration if is_int8(precision) else None,
                               int8_fp32=int8_fp32, model_bytes=model_bytes, conv_form=form,
                               calibration_tile=calibration_tile, int8_cache=int8_cache)
        forward.precision = label
        return forward

    return choose_precision(build, labels, calibration, batch, key, cache_path(cache_dir), timer=timer)
