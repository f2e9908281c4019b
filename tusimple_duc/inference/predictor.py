"""Test-time inference: whole image or sliding window, any scales, optional flip and dense CRF.

The default :class:`InferenceSpec` is the released protocol: the whole image in one
pass (mean-subtracted RGB, padded bottom/right with the mean colour to a multiple
of the output stride), softmax, crop of the padding at prediction resolution,
bilinear resize of the probabilities to the result shape, average over the test
scales, argmax; confidence = mean over pixels of the max probability.

For every scale (and, with ``flip``, for the image and its mirror) one *pass*:

1. resize the image by the scale (bilinear), mirror it if this is the flip pass;
2. pad it (:mod:`.windows`), cut equal-size windows (whole mode: one window, the
   padded image), run them through :func:`forward_probabilities` ``batch_windows``
   at a time per context;
3. average overlapping windows at *prediction resolution*: per prediction pixel, the
   sum of the windows' softmax probabilities divided by the number of windows
   covering it (exact; the resize below is linear);
4. resize the valid part to the result shape and add it (mirrored back for the flip
   pass) to one result-resolution accumulator (:func:`.scales.add_resized`).

The sum, divided by the number of passes, is the probability map. It is assembled in
horizontal bands (:meth:`Predictor.predict`): per band, the resize of every pass's map,
the average, argmax and max; only the (H, W) labels and max probability live at full
resolution, plus the (L, H, W) map when asked for (19 x 1024 x 2048 float32 = 160 MB).
The prediction-resolution maps of all passes are kept until the image is done
(1/s^2 of the result each). A network output that is not finite (NaN, infinity) is an
error, not a map of one class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.config import PAPER_TEST_SCALES as PAPER_MULTI_SCALES
from tusimple_duc.config import RELEASED_RGB_MEAN, TestConfig
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.inference.crf import CRFParams, dense_crf
from tusimple_duc.inference.scales import add_resized, resize_image, scale_image, scaled_shape
from tusimple_duc.inference.windows import network_input, padded_shape, window_origins
from tusimple_duc.models.segnet import class_probabilities

MODES = ("whole", "sliding")

# (N, 3, h, w) float32 batch -> (N, L, h/s, w/s) float32 softmax probabilities.
ForwardFn = Callable[[np.ndarray], np.ndarray]


def _pair(value: Sequence[int] | None, name: str) -> Tuple[int, int] | None:
    if value is None:
        return None
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ConfigError(f"inference: {name} must be two positive integers (rows, cols), got {value!r}")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class InferenceSpec:
    """How to run inference (defaults: the released single-scale protocol).

    Attributes
    ----------
    mode : 'whole' (the padded image in one pass) or 'sliding' (equal-size windows).
    window : (rows, cols) of a sliding window, pixels; multiples of the pad multiple. Sliding only.
    stride : (rows, cols) between window starts, pixels; ``<= window``, multiples of the
        network's prediction stride. Sliding only.
    scales : test scales; probabilities are averaged over them (and over flips).
    flip : also predict the left-right mirrored image and average in the mirrored-back result.
    batch_windows : windows per forward pass on each context.
    rgb_mean : subtracted from the RGB image (no std division).
    pad_multiple : inputs are padded to a multiple of this; ``None`` = the network's output stride.
    crf : dense CRF parameters, or ``None`` for no CRF.
    result_shape : (rows, cols) of the output; ``None`` = the input image's size (its cropped size with ``crop``).
    crop : (rows, cols) at scale 1, or ``None``: the released script's ``test_shape`` crop. Each
        scaled image is cut to its top-left ``floor(crop * scale)`` pixels (an image larger than
        ``crop`` loses its bottom/right part; a smaller one is unchanged).
    """

    mode: str = "whole"
    window: Optional[Tuple[int, int]] = None
    stride: Optional[Tuple[int, int]] = None
    scales: Tuple[float, ...] = (1.0,)
    flip: bool = False
    batch_windows: int = 1
    rgb_mean: Tuple[float, float, float] = RELEASED_RGB_MEAN
    pad_multiple: Optional[int] = None
    crf: Optional[CRFParams] = None
    result_shape: Optional[Tuple[int, int]] = None
    crop: Optional[Tuple[int, int]] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"inference: mode must be one of {MODES}, got {self.mode!r}")
        self._set("window", _pair(self.window, "window"))
        self._set("stride", _pair(self.stride, "stride"))
        self._set("result_shape", _pair(self.result_shape, "result_shape"))
        self._set("crop", _pair(self.crop, "crop"))
        if self.mode == "sliding":
            if self.window is None or self.stride is None:
                raise ConfigError("inference: sliding mode needs both window and stride")
            if self.stride[0] > self.window[0] or self.stride[1] > self.window[1]:
                raise ConfigError(f"inference: stride {self.stride} larger than window {self.window} leaves gaps")
        elif self.window is not None or self.stride is not None:
            raise ConfigError("inference: window and stride are only used in sliding mode")
        scales = tuple(float(s) for s in self.scales)
        if not scales or not all(s > 0 for s in scales):
            raise ConfigError(f"inference: scales must be a non-empty list of positive numbers, got {self.scales!r}")
        self._set("scales", scales)
        if not (isinstance(self.batch_windows, int) and self.batch_windows >= 1):
            raise ConfigError(f"inference: batch_windows must be an integer >= 1, got {self.batch_windows!r}")
        mean = tuple(float(m) for m in self.rgb_mean)
        if len(mean) != 3:
            raise ConfigError(f"inference: rgb_mean must have 3 values, got {self.rgb_mean!r}")
        self._set("rgb_mean", mean)
        if self.pad_multiple is not None and not (isinstance(self.pad_multiple, int) and self.pad_multiple >= 1):
            raise ConfigError(f"inference: pad_multiple must be a positive integer, got {self.pad_multiple!r}")
        if self.crf is not None and not isinstance(self.crf, CRFParams):
            raise ConfigError(f"inference: crf must be CRFParams or None, got {type(self.crf).__name__}")


    def _set(self, name: str, value: object) -> None:
        """Store a normalised field value (the dataclass is frozen)."""
        object.__setattr__(self, name, value)


RELEASED_SPEC = InferenceSpec()
RELEASED_MULTI_SCALE_SPEC = InferenceSpec(scales=PAPER_MULTI_SCALES)


def spec_from_config(config: TestConfig) -> InferenceSpec:
    """The :class:`InferenceSpec` of a test config (``[data]`` scales/shapes, ``[inference]`` modes).

    ``[inference] window`` and ``stride`` are used in sliding mode only. ``[data] test_shape``
    is the crop of the released script when ``result_shape`` is set (an image larger than it is
    segmented on its top-left ``test_shape`` part, resized to ``result_shape``); with
    ``result_shape = None`` every image is segmented and written whole, at its own size.
    """
    section = config.inference
    sliding = section.mode == "sliding"
    crf = CRFParams(bilateral_weight=section.crf_w1, bilateral_position_sigma=section.crf_sigma_alpha,
                    bilateral_colour_sigma=section.crf_sigma_beta, gaussian_weight=section.crf_w2,
                    gaussian_position_sigma=section.crf_sigma_gamma, iterations=section.crf_iterations)
    return InferenceSpec(mode=section.mode, window=section.window if sliding else None,
                         stride=section.stride if sliding else None, scales=config.scales, flip=section.flip,
                         batch_windows=section.batch_windows, rgb_mean=config.data.rgb_mean,
                         crf=crf if section.crf else None, result_shape=config.data.result_shape,
                         crop=config.data.test_shape if config.data.result_shape is not None else None)


@dataclass
class Prediction:
    """The result for one image.

    Attributes
    ----------
    labels : (H, W) uint8 argmax class (trainIds for Cityscapes).
    confidence : mean over pixels of the max class probability.
    top_probability : (H, W) float32 max class probability of every pixel.
    probabilities : (L, H, W) float32 class probabilities at the result shape, or None when
        :meth:`Predictor.predict` was asked not to keep them (memory: L float planes).
    """

    labels: np.ndarray = field(repr=False)
    confidence: float
    top_probability: np.ndarray = field(repr=False)
    probabilities: Optional[np.ndarray] = field(default=None, repr=False)


@dataclass(frozen=True)
class ViewMap:
    """One pass's window-averaged probabilities at prediction resolution.

    probabilities : (L, rows/s, cols/s) float32 (padded). extent : (rows, cols) of it the image
    covers, prediction pixels. mirror : the pass saw the left-right mirrored image.
    """

    probabilities: np.ndarray
    extent: Tuple[float, float]
    mirror: bool


#: bytes of one (L, band, W) float32 band of the result (:meth:`Predictor.predict` works band
#: by band; a few such arrays are the only result-resolution float temporaries)
BAND_BYTES = 16 * 1024 * 1024


def band_rows(num_classes: int, width: int) -> int:
    """Rows of a result band: ``(L, rows, W)`` float32 within :data:`BAND_BYTES`, at least 1."""
    return max(1, BAND_BYTES // (4 * num_classes * width))


def forward_probabilities(net: mx.gluon.Block, batch: np.ndarray, contexts: Sequence[mx.Context]) -> np.ndarray:
    """The network call (:func:`~tusimple_duc.models.segnet.class_probabilities`) on a host
    batch, split over devices.

    Parameters
    ----------
    net : block mapping (n, 3, h, w) mean-subtracted RGB to (n, L, h/s, w/s) class scores,
        with parameters on every context in ``contexts``.
    batch : (N, 3, h, w) float32 on the host.
    contexts : the batch is split into consecutive, near-equal parts, one per context
        (fewer parts when N < len(contexts)); all parts are launched before any is read back.

    Returns
    -------
    (N, L, h/s, w/s) float32 NumPy probabilities (softmax over axis 1), in batch order.
    """
    parts = np.array_split(batch, min(len(contexts), len(batch)))
    outputs = [class_probabilities(net, mx.nd.array(part, ctx=ctx, dtype=np.float32))
               for part, ctx in zip(parts, contexts)]
    arrays = [output.asnumpy() for output in outputs]
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)


class Predictor:
    """Runs a segmentation network on RGB images according to an :class:`InferenceSpec`.

    Parameters
    ----------
    net : a ``SegmentationNet``-like block with ``num_classes``, ``prediction_stride`` and
        ``output_stride``; initialised on every context.
    spec : the inference protocol.
    contexts : devices; windows of a forward pass are split across them. Default ``[mx.cpu()]``.
    forward : replaces :func:`forward_probabilities` (e.g. an exported or bf16 variant);
        called as ``forward(batch)`` with a (N, 3, h, w) float32 array.
    """

    def __init__(self, net: mx.gluon.Block, spec: InferenceSpec = RELEASED_SPEC,
                 contexts: Optional[Sequence[mx.Context]] = None, forward: Optional[ForwardFn] = None) -> None:
        self.net = net
        self.spec = spec
        self.contexts: List[mx.Context] = list(contexts) if contexts else [mx.cpu()]
        self.num_classes = int(net.num_classes)
        self.prediction_stride = int(net.prediction_stride)
        self.pad_multiple = spec.pad_multiple or int(net.output_stride)
        self.forward: ForwardFn = forward or (lambda batch: forward_probabilities(net, batch, self.contexts))
        self._check_geometry(int(net.output_stride))

    def _check_geometry(self, output_stride: int) -> None:
        if self.pad_multiple % output_stride:
            raise ConfigError(f"inference: pad_multiple {self.pad_multiple} is not a multiple of the "
                              f"network's output stride {output_stride}")
        if self.pad_multiple % self.prediction_stride:
            raise ConfigError(f"inference: pad_multiple {self.pad_multiple} is not a multiple of the "
                              f"network's prediction stride {self.prediction_stride}")
        if self.spec.mode == "sliding":
            if any(side % self.pad_multiple for side in self.spec.window):
                raise ConfigError(f"inference: window {self.spec.window} is not a multiple of the "
                                  f"pad multiple {self.pad_multiple}")
            if any(step % self.prediction_stride for step in self.spec.stride):
                raise ConfigError(f"inference: stride {self.spec.stride} is not a multiple of the "
                                  f"network's prediction stride {self.prediction_stride}")

    def predict(self, image: np.ndarray, keep_probabilities: bool = True,
                rows_per_band: Optional[int] = None) -> Prediction:
        """Labels, confidence (and the probabilities unless not kept) of one (H, W, 3) uint8 RGB image.

        Without CRF the result is assembled in horizontal bands of ``rows_per_band`` rows
        (default :func:`band_rows`): resize, average over passes, argmax and max per band, so that
        with ``keep_probabilities=False`` memory grows with the network's activations and the
        prediction maps, not with L full-resolution float planes. The values do not depend on
        the band height.
        """
        if self.spec.crf is not None:
            probabilities = self.probabilities(image)
            top = probabilities.max(axis=0)
            return Prediction(labels=probabilities.argmax(axis=0).astype(np.uint8),
                              confidence=_mean_confidence(top), top_probability=top, probabilities=probabilities)
        views, result_shape = self._view_maps(image)
        height, width = result_shape
        labels = np.empty(result_shape, dtype=np.uint8)
        top = np.empty(result_shape, dtype=np.float32)
        kept = np.empty((self.num_classes, height, width), dtype=np.float32) if keep_probabilities else None
        step = rows_per_band or band_rows(self.num_classes, width)
        for first in range(0, height, step):
            rows = slice(first, min(first + step, height))
            band = self._average(views, result_shape, rows)
            labels[rows] = band.argmax(axis=0)
            band.max(axis=0, out=top[rows])
            if kept is not None:
                kept[:, rows] = band
        return Prediction(labels=labels, confidence=_mean_confidence(top), top_probability=top,
                          probabilities=kept)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(L, H_out, W_out) float32 class probabilities of one (H, W, 3) uint8 RGB image."""
        views, result_shape = self._view_maps(image)
        probabilities = self._average(views, result_shape, slice(0, result_shape[0]))
        if self.spec.crf is not None:
            cropped = image if self.spec.crop is None else image[:self.spec.crop[0], :self.spec.crop[1]]
            probabilities = dense_crf(probabilities, resize_image(cropped, result_shape), self.spec.crf)
        return probabilities

    def _view_maps(self, image: np.ndarray) -> Tuple[List[ViewMap], Tuple[int, int]]:
        """Every pass's prediction-resolution map (scales x flips) and the result shape."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0):
            raise DataError(f"inference: image must be a (H, W, 3) uint8 RGB array, got "
                            f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
        crop = self.spec.crop
        cropped = image if crop is None else image[:crop[0], :crop[1]]
        result_shape = tuple(self.spec.result_shape or cropped.shape[:2])
        views = []
        for scale in self.spec.scales:
            scaled = scale_image(image, scale)
            if crop is not None:
                rows, cols = scaled_shape(crop, scale)
                scaled = scaled[:rows, :cols]
            for mirror in (False, True) if self.spec.flip else (False,):
                view = scaled[:, ::-1] if mirror else scaled
                extent = (view.shape[0] / self.prediction_stride, view.shape[1] / self.prediction_stride)
                views.append(ViewMap(self._predict_view(view), extent, mirror))
        return views, result_shape

    def _average(self, views: Sequence[ViewMap], result_shape: Tuple[int, int], rows: slice) -> np.ndarray:
        """(L, rows, W) float32: result rows ``rows`` of the mean over passes of the resized maps."""
        band = np.zeros((self.num_classes, rows.stop - rows.start, result_shape[1]), dtype=np.float32)
        for view in views:
            add_resized(view.probabilities, view.extent, band, mirror=view.mirror,
                        first_row=rows.start, result_rows=result_shape[0])
        band /= np.float32(len(views))
        return band

    def _predict_view(self, view: np.ndarray) -> np.ndarray:
        """Window-averaged probabilities (L, rows/s, cols/s) of one scaled (and maybe mirrored) image.

        ``rows, cols`` is the padded size; the image covers the top-left ``h/s x w/s``.
        """
        stride = self.prediction_stride
        window = self.spec.window
        shape = padded_shape(view.shape[:2], self.pad_multiple, window)
        data = network_input(view, self.spec.rgb_mean, shape)
        if window is None:
            window, origins = shape, [(0, 0)]
        else:
            origins = window_origins(shape, window, self.spec.stride)
        out_window = (window[0] // stride, window[1] // stride)
        sums = np.zeros((self.num_classes, shape[0] // stride, shape[1] // stride), dtype=np.float32)
        counts = np.zeros(sums.shape[1:], dtype=np.float32)
        group = self.spec.batch_windows * len(self.contexts)
        for first in range(0, len(origins), group):
            batch_origins = origins[first:first + group]
            batch = _cut_windows(data, batch_origins, window)
            probabilities = self.forward(batch)
            expected = (len(batch_origins), self.num_classes) + out_window
            if probabilities.shape != expected:
                raise ValueError(f"network output {probabilities.shape} for input {batch.shape}, expected {expected} "
                                 f"(num_classes {self.num_classes}, prediction_stride {stride})")
            bad = probabilities.size - int(np.isfinite(probabilities).sum())
            if bad:
                raise DataError(f"inference: the network's output holds {bad} non-finite probabilities "
                                f"(NaN or infinite activations: the weights or the precision)")
            for (r, c), window_probabilities in zip(batch_origins, probabilities):
                rows = slice(r // stride, r // stride + out_window[0])
                cols = slice(c // stride, c // stride + out_window[1])
                sums[:, rows, cols] += window_probabilities
                counts[rows, cols] += 1
        sums /= counts
        return sums


def _mean_confidence(top_probability: np.ndarray) -> float:
    """The released script's confidence: NumPy's float32 mean of the (H, W) max probabilities."""
    return float(top_probability.mean())


def _cut_windows(data: np.ndarray, origins: Sequence[Tuple[int, int]], window: Tuple[int, int]) -> np.ndarray:
    """(N, 3, rows, cols) windows of a (3, H, W) input; a single window is a view, not a copy."""
    views = [data[:, r:r + window[0], c:c + window[1]] for r, c in origins]
    return views[0][None] if len(views) == 1 else np.stack(views)
